//go:build linux

package delivery

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
)

// fakeDiag answers inet_diag requests from a table and records them.
type fakeDiag struct {
	exact    []diagSocket // answer to the exact query
	exactErr error
	v4, v6   []diagSocket // listeners per family
	dumpErr  error
	requests []diagRequest
}

func (f *fakeDiag) query(r diagRequest) ([]diagSocket, error) {
	f.requests = append(f.requests, r)
	if !r.Dump {
		return f.exact, f.exactErr
	}
	if f.dumpErr != nil {
		return nil, f.dumpErr
	}
	if r.IPv6 {
		return f.v6, nil
	}
	return f.v4, nil
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func listener(addr string, uid uint32) diagSocket {
	return diagSocket{State: tcpListen, Src: ap(addr), UID: uid, Inode: 99}
}

func TestTCPOwner(t *testing.T) {
	local, remote := ap("127.0.0.1:40000"), ap("127.0.0.1:9999")
	local6, remote6 := ap("[::1]:40000"), ap("[::1]:9999")
	const established = 1
	tests := []struct {
		name          string
		local, remote netip.AddrPort
		diag          fakeDiag
		want          int
		wantErr       string
		wantDumps     int // listener dumps expected
	}{
		{name: "accepted socket", diag: fakeDiag{exact: []diagSocket{{State: established, Src: remote, UID: 1001, Inode: 7}}}, want: 1001},
		{name: "accepted by root", diag: fakeDiag{exact: []diagSocket{{State: established, Src: remote, UID: 0, Inode: 7}}}, want: 0},
		{name: "not accepted yet: uid from the listener, no inode", diag: fakeDiag{exact: []diagSocket{{State: established, Src: remote, UID: 65534}}}, want: 65534},
		{name: "request socket reports uid 0: ask the listener",
			diag: fakeDiag{exact: []diagSocket{{State: 3, Src: remote}}, v4: []diagSocket{listener("127.0.0.1:9999", 65534)}},
			want: 65534, wantDumps: 2},
		{name: "exact socket gone: ask the listener",
			diag: fakeDiag{exactErr: fmt.Errorf("wrapped: %w", syscall.ENOENT), v4: []diagSocket{listener("0.0.0.0:9999", 1001)}},
			want: 1001, wantDumps: 2},
		{name: "answer for another socket is ignored",
			diag: fakeDiag{exact: []diagSocket{{State: established, Src: ap("127.0.0.1:8888"), UID: 0, Inode: 7}}, v4: []diagSocket{listener("127.0.0.1:9999", 65534)}},
			want: 65534, wantDumps: 2},
		{name: "exact query fails", diag: fakeDiag{exactErr: syscall.EPROTONOSUPPORT}, wantErr: "sock_diag: protocol not supported"},
		{name: "IPv6 wildcard listener takes IPv4",
			diag: fakeDiag{exactErr: syscall.ENOENT, v6: []diagSocket{listener("[::]:9999", 1001)}}, want: 1001, wantDumps: 2},
		{name: "IPv4-mapped listener",
			diag: fakeDiag{exactErr: syscall.ENOENT, v6: []diagSocket{listener("[::ffff:127.0.0.1]:9999", 1001)}}, want: 1001, wantDumps: 2},
		{name: "listeners elsewhere do not count",
			diag: fakeDiag{exactErr: syscall.ENOENT,
				v4: []diagSocket{listener("127.0.0.1:9998", 1), listener("127.0.0.2:9999", 2), {State: established, Src: remote, UID: 3, Inode: 1}},
				v6: []diagSocket{listener("[::1]:9999", 4)}},
			wantErr: "no socket listens on 127.0.0.1:9999 any more", wantDumps: 2},
		{name: "several users listen",
			diag:    fakeDiag{exactErr: syscall.ENOENT, v4: []diagSocket{listener("127.0.0.1:9999", 1001)}, v6: []diagSocket{listener("[::]:9999", 65534)}},
			wantErr: "sockets of several users (uids [1001 65534]) listen on 127.0.0.1:9999", wantDumps: 2},
		{name: "one user, several listeners (SO_REUSEPORT)",
			diag: fakeDiag{exactErr: syscall.ENOENT, v4: []diagSocket{listener("127.0.0.1:9999", 1001), listener("127.0.0.1:9999", 1001)}},
			want: 1001, wantDumps: 2},
		{name: "dump fails", diag: fakeDiag{exactErr: syscall.ENOENT, dumpErr: syscall.EACCES}, wantErr: "sock_diag: permission denied", wantDumps: 1},
		{name: "IPv6 connection: only IPv6 listeners",
			local: local6, remote: remote6,
			diag: fakeDiag{exactErr: syscall.ENOENT, v4: []diagSocket{listener("0.0.0.0:9999", 1)}, v6: []diagSocket{listener("[::1]:9999", 65534)}},
			want: 65534, wantDumps: 1},
		{name: "IPv6 accepted socket", local: local6, remote: remote6,
			diag: fakeDiag{exact: []diagSocket{{State: established, Src: remote6, UID: 1001, Inode: 7}}}, want: 1001},
		{name: "no addresses", local: netip.AddrPort{}, remote: remote, wantErr: "the connection has no TCP addresses"},
		{name: "no remote address", local: local, remote: netip.AddrPort{}, wantErr: "the connection has no TCP addresses"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, r := tt.local, tt.remote
			if !strings.HasPrefix(tt.name, "no ") && !l.IsValid() {
				l, r = local, remote
			}
			got, err := tcpOwner(tt.diag.query, l, r)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("tcpOwner = %d, %v; want error %q", got, err, tt.wantErr)
				}
			} else if err != nil || got != tt.want {
				t.Fatalf("tcpOwner = %d, %v; want %d", got, err, tt.want)
			}
			if !l.IsValid() || !r.IsValid() {
				if len(tt.diag.requests) != 0 {
					t.Errorf("asked the kernel %v without addresses", tt.diag.requests)
				}
				return
			}
			reqs := tt.diag.requests
			wantExact := diagRequest{IPv6: r.Addr().Is6(), Src: r, Dst: l}
			if len(reqs) == 0 || reqs[0] != wantExact {
				t.Fatalf("first request %+v, want the exact socket %+v", reqs, wantExact)
			}
			dumps := reqs[1:]
			if len(dumps) != tt.wantDumps {
				t.Fatalf("listener dumps %+v, want %d", dumps, tt.wantDumps)
			}
			for i, d := range dumps {
				want := diagRequest{IPv6: r.Addr().Is6() || i == 1, Dump: true, States: 1 << tcpListen}
				if d != want {
					t.Errorf("dump %d = %+v, want %+v", i, d, want)
				}
			}
		})
	}
}

func TestListensOn(t *testing.T) {
	for _, tt := range []struct {
		bound, addr string
		want        bool
	}{
		{"127.0.0.1:1", "127.0.0.1:1", true},
		{"0.0.0.0:1", "127.0.0.1:1", true},
		{"[::]:1", "127.0.0.1:1", true},
		{"[::]:1", "[::1]:1", true},
		{"[::ffff:127.0.0.1]:1", "127.0.0.1:1", true},
		{"127.0.0.1:2", "127.0.0.1:1", false},
		{"127.0.0.2:1", "127.0.0.1:1", false},
		{"[::1]:1", "127.0.0.1:1", false},
	} {
		if got := listensOn(ap(tt.bound), ap(tt.addr)); got != tt.want {
			t.Errorf("listensOn(%s, %s) = %v, want %v", tt.bound, tt.addr, got, tt.want)
		}
	}
}

func TestAddrPortOf(t *testing.T) {
	if got := addrPortOf(&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 5}); got != ap("127.0.0.1:5") {
		t.Errorf("IPv4 (16-byte form) = %v, want unmapped 127.0.0.1:5", got)
	}
	if got := addrPortOf(&net.TCPAddr{IP: net.IPv6loopback, Port: 6}); got != ap("[::1]:6") {
		t.Errorf("IPv6 = %v", got)
	}
	if got := addrPortOf(&net.UnixAddr{Name: "/x", Net: "unix"}); got.IsValid() {
		t.Errorf("Unix address gave %v", got)
	}
}

func TestIsNotFound(t *testing.T) {
	if !isNotFound(fmt.Errorf("x: %w", syscall.ENOENT)) || isNotFound(syscall.EACCES) || isNotFound(errors.New("no such file or directory")) {
		t.Error("isNotFound must match ENOENT only")
	}
}
