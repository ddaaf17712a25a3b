package delivery

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestTCPOwnerUID_kernel asks the real kernel about real loopback
// connections, before and after the listener accepts them.
func TestTCPOwnerUID_kernel(t *testing.T) {
	for _, network := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(network, func(t *testing.T) {
			ln, err := net.Listen("tcp", network)
			if err != nil {
				if network == "[::1]:0" {
					t.Skipf("no IPv6 loopback here: %v", err)
				}
				t.Fatal(err)
			}
			defer ln.Close()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			conn := c.(*net.TCPConn)
			if uid, err := tcpOwnerUID(conn); err != nil || uid != os.Getuid() {
				t.Errorf("before accept: tcpOwnerUID = %d, %v; want %d", uid, err, os.Getuid())
			}
			sc, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			if uid, err := tcpOwnerUID(conn); err != nil || uid != os.Getuid() {
				t.Errorf("after accept: tcpOwnerUID = %d, %v; want %d", uid, err, os.Getuid())
			}
			local, remote := addrPortOf(conn.LocalAddr()), addrPortOf(conn.RemoteAddr())
			socks, err := netlinkDiag(diagRequest{IPv6: remote.Addr().Is6(), Src: remote, Dst: local})
			if err != nil || len(socks) != 1 {
				t.Fatalf("exact query: %+v, %v", socks, err)
			}
			if s := socks[0]; s.Src != remote || s.Inode == 0 || s.UID != uint32(os.Getuid()) || s.State != 1 {
				t.Errorf("accepted socket = %+v, want established at %v with an inode", s, remote)
			}
			if uid, err := listenerOwner(netlinkDiag, remote); err != nil || uid != os.Getuid() {
				t.Errorf("listenerOwner = %d, %v", uid, err)
			}
			// A 4-tuple no connection uses: the kernel answers with the
			// socket that would take it, the listener.
			other := netip.AddrPortFrom(local.Addr(), 1)
			if socks, err := netlinkDiag(diagRequest{IPv6: remote.Addr().Is6(), Src: remote, Dst: other}); err != nil || len(socks) != 1 || socks[0].State != tcpListen || socks[0].Src != remote {
				t.Errorf("query for an unused 4-tuple = %+v, %v; want the listener", socks, err)
			}
			// Nothing listening on that port: ENOENT, which tcpOwner treats
			// as "ask the listener".
			closed := netip.AddrPortFrom(remote.Addr(), closedPort(t, network))
			if socks, err := netlinkDiag(diagRequest{IPv6: remote.Addr().Is6(), Src: closed, Dst: other}); !isNotFound(err) || len(socks) != 0 {
				t.Errorf("query for a closed port = %+v, %v; want ENOENT", socks, err)
			}
			if uid, err := tcpOwner(netlinkDiag, other, closed); err == nil {
				t.Errorf("tcpOwner for a closed port = %d, want an error", uid)
			}
		})
	}
}

// closedPort is a port nothing listens on.
func closedPort(t *testing.T, network string) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", network)
	if err != nil {
		t.Fatal(err)
	}
	port := addrPortOf(ln.Addr()).Port()
	ln.Close()
	return port
}

func TestEncodeDiagRequest(t *testing.T) {
	ne := binary.NativeEndian
	b := encodeDiagRequest(diagRequest{Src: ap("127.0.0.1:9999"), Dst: ap("127.0.0.2:40000")})
	if len(b) != 16+56 || ne.Uint32(b) != 72 || ne.Uint16(b[4:]) != unix.SOCK_DIAG_BY_FAMILY || ne.Uint16(b[6:]) != unix.NLM_F_REQUEST || ne.Uint32(b[8:]) != diagSeq {
		t.Fatalf("header % x", b[:16])
	}
	r := b[16:]
	if r[0] != unix.AF_INET || r[1] != unix.IPPROTO_TCP || ne.Uint32(r[4:]) != ^uint32(0) {
		t.Errorf("exact request: family %d proto %d states %#x", r[0], r[1], ne.Uint32(r[4:]))
	}
	if binary.BigEndian.Uint16(r[8:]) != 9999 || binary.BigEndian.Uint16(r[10:]) != 40000 {
		t.Errorf("ports % x", r[8:12])
	}
	if string(r[12:16]) != "\x7f\x00\x00\x01" || string(r[28:32]) != "\x7f\x00\x00\x02" || ne.Uint32(r[48:]) != ^uint32(0) || ne.Uint32(r[52:]) != ^uint32(0) {
		t.Errorf("addresses or cookie % x", r[8:])
	}
	b = encodeDiagRequest(diagRequest{IPv6: true, Dump: true, States: 1 << tcpListen})
	r = b[16:]
	if ne.Uint16(b[6:]) != unix.NLM_F_REQUEST|unix.NLM_F_DUMP || r[0] != unix.AF_INET6 || ne.Uint32(r[4:]) != 1<<tcpListen {
		t.Errorf("dump request % x", b)
	}
	b = encodeDiagRequest(diagRequest{IPv6: true, Src: ap("[::1]:1"), Dst: ap("[fe80::2]:2")})
	if a := netip.AddrFrom16([16]byte(b[16+12 : 16+28])); a != netip.MustParseAddr("::1") {
		t.Errorf("IPv6 source %v", a)
	}
	if a := netip.AddrFrom16([16]byte(b[16+28 : 16+44])); a != netip.MustParseAddr("fe80::2") {
		t.Errorf("IPv6 destination %v", a)
	}
}

// nlmsg builds one netlink message.
func nlmsg(typ uint16, seq uint32, data []byte) []byte {
	b := make([]byte, 16, 16+len(data)+3)
	binary.NativeEndian.PutUint32(b, uint32(16+len(data)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	binary.NativeEndian.PutUint32(b[8:], seq)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func diagMsg(family, state uint8, src netip.AddrPort, uid, inode uint32) []byte {
	d := make([]byte, inetDiagMsgLen)
	d[0], d[1] = family, state
	binary.BigEndian.PutUint16(d[4:], src.Port())
	putDiagAddr(d[8:24], src.Addr())
	binary.NativeEndian.PutUint32(d[64:], uid)
	binary.NativeEndian.PutUint32(d[68:], inode)
	return d
}

func TestDecodeDiagAnswer(t *testing.T) {
	errno := func(e int32) []byte { b := make([]byte, 20); binary.NativeEndian.PutUint32(b, uint32(-e)); return b }
	s4 := diagSocket{State: tcpListen, Src: ap("127.0.0.1:9999"), UID: 1001, Inode: 42}
	s6 := diagSocket{State: 1, Src: ap("[::1]:8"), UID: 7, Inode: 3}
	mapped := diagSocket{State: tcpListen, Src: ap("127.0.0.1:5"), UID: 2}
	tests := []struct {
		name    string
		in      []byte
		want    []diagSocket
		done    bool
		wantErr error
		errText string
	}{
		{name: "two sockets, more to come",
			in:   append(nlmsg(unix.SOCK_DIAG_BY_FAMILY, diagSeq, diagMsg(unix.AF_INET, tcpListen, s4.Src, 1001, 42)), nlmsg(unix.SOCK_DIAG_BY_FAMILY, diagSeq, diagMsg(unix.AF_INET6, 1, s6.Src, 7, 3))...),
			want: []diagSocket{s4, s6}},
		{name: "IPv4-mapped IPv6 is unmapped",
			in:   nlmsg(unix.SOCK_DIAG_BY_FAMILY, diagSeq, diagMsg(unix.AF_INET6, tcpListen, ap("[::ffff:127.0.0.1]:5"), 2, 0)),
			want: []diagSocket{mapped}},
		{name: "end of dump", in: append(nlmsg(unix.SOCK_DIAG_BY_FAMILY, diagSeq, diagMsg(unix.AF_INET, tcpListen, s4.Src, 1001, 42)), nlmsg(unix.NLMSG_DONE, diagSeq, make([]byte, 4))...),
			want: []diagSocket{s4}, done: true},
		{name: "other sequence ignored", in: nlmsg(unix.SOCK_DIAG_BY_FAMILY, diagSeq+1, diagMsg(unix.AF_INET, tcpListen, s4.Src, 1001, 42))},
		{name: "not found", in: nlmsg(unix.NLMSG_ERROR, diagSeq, errno(int32(syscall.ENOENT))), done: true, wantErr: syscall.ENOENT},
		{name: "ack", in: nlmsg(unix.NLMSG_ERROR, diagSeq, errno(0)), done: true},
		{name: "ack, errno only", in: nlmsg(unix.NLMSG_ERROR, diagSeq, errno(0)[:4]), done: true},
		{name: "error, errno only", in: nlmsg(unix.NLMSG_ERROR, diagSeq, errno(int32(syscall.EACCES))[:4]), done: true, wantErr: syscall.EACCES},
		{name: "short error", in: nlmsg(unix.NLMSG_ERROR, diagSeq, []byte{1, 0, 0}), done: true, errText: "short netlink error"},
		{name: "short message", in: nlmsg(unix.SOCK_DIAG_BY_FAMILY, diagSeq, make([]byte, inetDiagMsgLen-1)), done: true, errText: "short inet_diag message"},
		{name: "garbage", in: nlmsg(unix.SOCK_DIAG_BY_FAMILY, diagSeq, nil)[:12], errText: ""},
		{name: "truncated", in: func() []byte { b := nlmsg(unix.SOCK_DIAG_BY_FAMILY, diagSeq, nil); b[0] = 100; return b }(), done: true, errText: "parse netlink answer: invalid argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, done, err := decodeDiagAnswer(tt.in)
			switch {
			case tt.wantErr != nil:
				if err != tt.wantErr {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
			case tt.errText != "":
				if err == nil || err.Error() != tt.errText {
					t.Errorf("err = %v, want %q", err, tt.errText)
				}
			case err != nil:
				t.Errorf("err = %v", err)
			}
			if done != tt.done || len(got) != len(tt.want) {
				t.Fatalf("got %+v done %v, want %+v done %v", got, done, tt.want, tt.done)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("socket %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}
