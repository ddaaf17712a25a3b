package delivery

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseAddress(t *testing.T) {
	long := "/tmp/" + strings.Repeat("x", 102) // 107 bytes
	tests := []struct {
		in      string
		want    Address
		wantStr string
		wantErr string // full error text, or a substring when it starts with "~"
	}{
		{in: "/tmp/bigbrother_token.sock", want: Address{"unix", "/tmp/bigbrother_token.sock"}, wantStr: "/tmp/bigbrother_token.sock"},
		{in: "bot.sock", want: Address{"unix", "bot.sock"}, wantStr: "bot.sock"},
		{in: "./run/bot.sock", want: Address{"unix", "./run/bot.sock"}, wantStr: "./run/bot.sock"},
		{in: long, want: Address{"unix", long}, wantStr: long},
		{in: "tcp://127.0.0.1:9999", want: Address{"tcp", "127.0.0.1:9999"}, wantStr: "tcp://127.0.0.1:9999"},
		{in: "tcp://127.10.0.1:1", want: Address{"tcp", "127.10.0.1:1"}, wantStr: "tcp://127.10.0.1:1"},
		// localhost means 127.0.0.1 only, never ::1 (another user could bind that port).
		{in: "TCP://localhost:65535", want: Address{"tcp", "127.0.0.1:65535"}, wantStr: "tcp://127.0.0.1:65535"},
		{in: "tcp://LocalHost:80", want: Address{"tcp", "127.0.0.1:80"}, wantStr: "tcp://127.0.0.1:80"},
		{in: "tcp://[::1]:9999", want: Address{"tcp", "[::1]:9999"}, wantStr: "tcp://[::1]:9999"},
		{in: "tcp://127.0.0.1:09999", want: Address{"tcp", "127.0.0.1:9999"}, wantStr: "tcp://127.0.0.1:9999"},

		{in: "", wantErr: `--socket "": empty; give a Unix socket path such as /tmp/bigbrother_token.sock, or tcp://127.0.0.1:PORT`},
		{in: long + "y", wantErr: `~Unix socket paths are limited to 107 bytes, this one has 108; use a shorter path`},
		{in: "tcp://10.0.0.5:9999", wantErr: `--socket "tcp://10.0.0.5:9999": only loopback addresses are allowed (127.0.0.1, [::1] or localhost): tokens must not leave this machine`},
		{in: "tcp://0.0.0.0:9999", wantErr: "~only loopback addresses are allowed"},
		{in: "tcp://:9999", wantErr: "~only loopback addresses are allowed"},
		{in: "tcp://example.com:9999", wantErr: "~only loopback addresses are allowed"},
		{in: "tcp://[::1%lo]:9999", wantErr: "~only loopback addresses are allowed"},
		{in: "tcp://[fe80::1]:9999", wantErr: "~only loopback addresses are allowed"},
		{in: "tcp://127.0.0.1", wantErr: "~expected tcp://HOST:PORT"},
		{in: "tcp://::1:9999", wantErr: "~expected tcp://HOST:PORT"},
		{in: "tcp://127.0.0.1:0", wantErr: `--socket "tcp://127.0.0.1:0": port "0" must be a number from 1 to 65535`},
		{in: "tcp://127.0.0.1:65536", wantErr: `~port "65536" must be a number from 1 to 65535`},
		{in: "tcp://127.0.0.1:http", wantErr: `~port "http" must be`},
		{in: "tcp://127.0.0.1:+80", wantErr: `~port "+80" must be`},
		{in: "tcp://127.0.0.1:9999/path", wantErr: "~nothing after the port"},
		{in: "tcp://user@127.0.0.1:9999", wantErr: "~nothing after the port"},
		{in: "http://127.0.0.1:9999", wantErr: `--socket "http://127.0.0.1:9999": unsupported scheme "http"; use a Unix socket path, or tcp://127.0.0.1:PORT`},
		{in: "udp://127.0.0.1:9999", wantErr: `~unsupported scheme "udp"`},
		{in: "unix:///tmp/bot.sock", wantErr: "~without unix:// (for example /tmp/bot.sock)"},
		{in: "127.0.0.1:9999", wantErr: "~looks like a TCP address; write tcp://127.0.0.1:9999"},
		{in: "localhost:9999", wantErr: "~looks like a TCP address"},
		{in: "@bot", wantErr: "~abstract Unix sockets"},
		{in: "/tmp/a\x00b", wantErr: "~NUL byte"},
		{in: "\x00/tmp/a.sock", wantErr: "~NUL byte"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseAddress(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseAddress(%q) = %v, want error", tt.in, got)
				}
				if sub, ok := strings.CutPrefix(tt.wantErr, "~"); ok {
					if !strings.Contains(err.Error(), sub) {
						t.Errorf("error %q does not contain %q", err, sub)
					}
				} else if err.Error() != tt.wantErr {
					t.Errorf("error = %q\nwant    %q", err, tt.wantErr)
				}
				var ae *AddressError
				if !errors.As(err, &ae) || ae.Input != tt.in {
					t.Errorf("error is not an *AddressError for the input: %#v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAddress(%q): %v", tt.in, err)
			}
			if got != tt.want || got.String() != tt.wantStr {
				t.Errorf("ParseAddress(%q) = %#v (%s), want %#v (%s)", tt.in, got, got, tt.want, tt.wantStr)
			}
		})
	}
}

func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"/tmp/bigbrother_token.sock", "tcp://127.0.0.1:9999", "tcp://[::1]:1",
		"tcp://localhost:65535", "tcp://10.0.0.5:9999", "http://x", "127.0.0.1:9", "tcp://[::ffff:127.0.0.1]:5", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "--socket ") {
				t.Fatalf("error without --socket prefix: %v", err)
			}
			return
		}
		switch a.Network {
		case "unix":
			if a.Addr != s || s == "" || len(s) > MaxUnixPathLen || strings.Contains(s, "://") {
				t.Fatalf("bad unix address %#v from %q", a, s)
			}
		case "tcp":
			ap, err := netip.ParseAddrPort(a.Addr)
			if err != nil {
				t.Fatalf("tcp address %q is not IP:port", a.Addr)
			} else if !ap.Addr().IsLoopback() || ap.Port() == 0 {
				t.Fatalf("tcp address %q is not loopback with a port", a.Addr)
			}
		default:
			t.Fatalf("unknown network in %#v", a)
		}
		again, err := ParseAddress(a.String())
		if err != nil || again != a {
			t.Fatalf("String() %q does not parse back: %#v, %v", a.String(), again, err)
		}
	})
}
