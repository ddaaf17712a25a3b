package sockaddr_test

import (
	"strings"
	"testing"

	"github.com/schwabtools/token-refresh-sender/internal/sockaddr"
)

func TestParse(t *testing.T) {
	long := "/tmp/" + strings.Repeat("x", 102) // 107 bytes
	type mode int
	const (
		dial mode = iota
		listen
		both
	)
	for _, tc := range []struct {
		in      string
		mode    mode
		network string
		addr    string
		wantErr string // exact error text; empty: accepted
	}{
		{in: "/tmp/bigbrother_token.sock", mode: both, network: "unix", addr: "/tmp/bigbrother_token.sock"},
		{in: "bot.sock", mode: both, network: "unix", addr: "bot.sock"},
		{in: long, mode: both, network: "unix", addr: long},
		{in: "tcp://127.0.0.1:9999", mode: both, network: "tcp", addr: "127.0.0.1:9999"},
		{in: "tcp://127.10.0.1:1", mode: both, network: "tcp", addr: "127.10.0.1:1"},
		{in: "TCP://LocalHost:65535", mode: both, network: "tcp", addr: "127.0.0.1:65535"},
		{in: "tcp://[::1]:9999", mode: both, network: "tcp", addr: "[::1]:9999"},
		{in: "tcp://127.0.0.1:09999", mode: both, network: "tcp", addr: "127.0.0.1:9999"},
		{in: "tcp://127.0.0.1:0", mode: listen, network: "tcp", addr: "127.0.0.1:0"},
		{in: "tcp://localhost:0", mode: listen, network: "tcp", addr: "127.0.0.1:0"},

		{in: "tcp://127.0.0.1:0", mode: dial, wantErr: `port "0" must be a number from 1 to 65535`},
		{in: "tcp://127.0.0.1:65536", mode: dial, wantErr: `port "65536" must be a number from 1 to 65535`},
		{in: "tcp://127.0.0.1:65536", mode: listen, wantErr: `port "65536" must be a number from 0 to 65535`},
		{in: "tcp://127.0.0.1:+80", mode: listen, wantErr: `port "+80" must be a number from 0 to 65535`},
		{in: "tcp://127.0.0.1:http", mode: dial, wantErr: `port "http" must be a number from 1 to 65535`},
		{in: "", mode: both, wantErr: "empty; give a Unix socket path such as /tmp/bigbrother_token.sock, or tcp://127.0.0.1:PORT"},
		{in: long + "y", mode: both, wantErr: "Unix socket paths are limited to 107 bytes, this one has 108; use a shorter path"},
		{in: "tcp://10.0.0.5:9999", mode: both, wantErr: "only loopback addresses are allowed (127.0.0.1, [::1] or localhost): tokens must not leave this machine"},
		{in: "tcp://0.0.0.0:9999", mode: both, wantErr: "only loopback addresses are allowed (127.0.0.1, [::1] or localhost): tokens must not leave this machine"},
		{in: "tcp://:9999", mode: both, wantErr: "only loopback addresses are allowed (127.0.0.1, [::1] or localhost): tokens must not leave this machine"},
		{in: "tcp://example.com:9999", mode: both, wantErr: "only loopback addresses are allowed (127.0.0.1, [::1] or localhost): tokens must not leave this machine"},
		{in: "tcp://[::1%lo]:9999", mode: both, wantErr: "only loopback addresses are allowed (127.0.0.1, [::1] or localhost): tokens must not leave this machine"},
		{in: "tcp://127.0.0.1", mode: both, wantErr: "expected tcp://HOST:PORT, for example tcp://127.0.0.1:9999 (IPv6 in brackets: tcp://[::1]:9999)"},
		{in: "tcp://127.0.0.1:9999/path", mode: both, wantErr: "expected tcp://HOST:PORT with nothing after the port"},
		{in: "tcp://user@127.0.0.1:9999", mode: both, wantErr: "expected tcp://HOST:PORT with nothing after the port"},
		{in: "http://127.0.0.1:9999", mode: both, wantErr: `unsupported scheme "http"; use a Unix socket path, or tcp://127.0.0.1:PORT`},
		{in: "unix:///tmp/bot.sock", mode: both, wantErr: "write a Unix socket as a plain path, without unix:// (for example /tmp/bot.sock)"},
		{in: "127.0.0.1:9999", mode: both, wantErr: "looks like a TCP address; write tcp://127.0.0.1:9999 to use TCP, or ./127.0.0.1:9999 for a socket file of that name"},
		{in: "@bot", mode: both, wantErr: "abstract Unix sockets (@name) are not supported; use a filesystem path"},
		{in: "/tmp/a\x00b", mode: both, wantErr: "a socket path cannot contain a NUL byte"},
		{in: "\x00/tmp/a.sock", mode: both, wantErr: "a socket path cannot contain a NUL byte"},
	} {
		modes := map[mode][]bool{dial: {false}, listen: {true}, both: {false, true}}[tc.mode]
		for _, l := range modes {
			t.Run(tc.in, func(t *testing.T) {
				network, addr, err := sockaddr.Parse(tc.in, l)
				if tc.wantErr != "" {
					if err == nil || err.Error() != tc.wantErr {
						t.Errorf("Parse(%q, %v) = %q, %q, %v; want error %q", tc.in, l, network, addr, err, tc.wantErr)
					}
					return
				}
				if err != nil || network != tc.network || addr != tc.addr {
					t.Errorf("Parse(%q, %v) = %q, %q, %v; want %q, %q", tc.in, l, network, addr, err, tc.network, tc.addr)
				}
			})
		}
	}
}
