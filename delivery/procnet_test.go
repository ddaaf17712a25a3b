//go:build linux

package delivery

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
)

// A /proc/net/tcp excerpt (little-endian host): a listener on
// 127.0.0.1:9999 (uid 1001), a connection to it from port 40000 accepted
// (uid 1001), one not accepted yet (inode 0), and a listener on 0.0.0.0:22.
const procNetTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:270F 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 171331 1 0000000000e35c6a 100 0 0 10 0
   1: 0100007F:270F 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1001        0 171400 1 0000000000e35c6b 20 4 30 10 -1
   2: 0100007F:270F 0100007F:9C41 01 00000000:00000000 00:00000000 00000000  1001        0 0 1 0000000000e35c6c 20 4 30 10 -1
   3: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0000000000e35c6d 100 0 0 10 0
`

const procNetTCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:270F 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 65534        0 5 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1002        0 6 1 0000000000000000 100 0 0 10 0
`

func TestFilterProcNet(t *testing.T) {
	tests := []struct {
		name    string
		table   string
		r       diagRequest
		want    []diagSocket
		wantErr error
	}{
		{name: "accepted connection", table: procNetTCP, r: diagRequest{Src: ap("127.0.0.1:9999"), Dst: ap("127.0.0.1:40000")},
			want: []diagSocket{{State: 1, Src: ap("127.0.0.1:9999"), UID: 1001, Inode: 171400}}},
		{name: "not accepted yet", table: procNetTCP, r: diagRequest{Src: ap("127.0.0.1:9999"), Dst: ap("127.0.0.1:40001")},
			want: []diagSocket{{State: 1, Src: ap("127.0.0.1:9999"), UID: 1001}}},
		{name: "no such connection", table: procNetTCP, r: diagRequest{Src: ap("127.0.0.1:9999"), Dst: ap("127.0.0.1:40002")}, wantErr: syscall.ENOENT},
		{name: "listeners", table: procNetTCP, r: diagRequest{Dump: true, States: 1 << tcpListen},
			want: []diagSocket{{State: tcpListen, Src: ap("127.0.0.1:9999"), UID: 1001, Inode: 171331}, {State: tcpListen, Src: ap("0.0.0.0:22"), UID: 0, Inode: 1234}}},
		{name: "established", table: procNetTCP, r: diagRequest{Dump: true, States: 1 << 1},
			want: []diagSocket{{State: 1, Src: ap("127.0.0.1:9999"), UID: 1001, Inode: 171400}, {State: 1, Src: ap("127.0.0.1:9999"), UID: 1001}}},
		{name: "IPv6 listeners", table: procNetTCP6, r: diagRequest{IPv6: true, Dump: true, States: 1 << tcpListen},
			want: []diagSocket{{State: tcpListen, Src: ap("[::1]:9999"), UID: 65534, Inode: 5}, {State: tcpListen, Src: ap("127.0.0.1:8080"), UID: 1002, Inode: 6}}},
		{name: "empty table, dump", table: "header\n", r: diagRequest{Dump: true, States: ^uint32(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := filterProcNet(strings.NewReader(tt.table), "/proc/net/tcp", tt.r)
			if !errors.Is(err, tt.wantErr) || tt.wantErr == nil && err != nil {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestFilterProcNet_badLines(t *testing.T) {
	const ok = "   0: 0100007F:270F 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 171331 1"
	for _, tt := range []struct{ line, want string }{
		{"   0: 0100007F:270F 00000000:0000 0A", "/proc/net/tcp line 2: 4 fields, want at least 10"},
		{strings.Replace(ok, "0100007F:270F", "0100007F", 1), `/proc/net/tcp line 2: address "0100007F": bad port`},
		{strings.Replace(ok, "0100007F:270F", "0100007F:XYZ", 1), `/proc/net/tcp line 2: address "0100007F:XYZ": bad port`},
		{strings.Replace(ok, "0100007F:270F", "010000:270F", 1), `/proc/net/tcp line 2: address "010000:270F": want 8 or 32 hex digits`},
		{strings.Replace(ok, "0100007F:270F", "0100007G:270F", 1), `/proc/net/tcp line 2: address "0100007G:270F": want 8 or 32 hex digits`},
		{strings.Replace(ok, "00000000:0000", "0000:0000", 1), `/proc/net/tcp line 2: address "0000:0000": want 8 or 32 hex digits`},
		{strings.Replace(ok, " 0A ", " 0X ", 1), `/proc/net/tcp line 2: state "0X": strconv.ParseUint: parsing "0X": invalid syntax`},
		{strings.Replace(ok, " 1001 ", " -1 ", 1), `/proc/net/tcp line 2: uid "-1": strconv.ParseUint: parsing "-1": invalid syntax`},
		{strings.Replace(ok, " 171331 ", " x ", 1), `/proc/net/tcp line 2: inode "x": strconv.ParseUint: parsing "x": invalid syntax`},
	} {
		_, err := filterProcNet(strings.NewReader("header\n"+tt.line+"\n"), "/proc/net/tcp", diagRequest{Dump: true})
		if err == nil || err.Error() != tt.want {
			t.Errorf("line %q: err = %v, want %q", tt.line, err, tt.want)
		}
	}
	// The line number counts from the header; exactly 10 fields are enough.
	ten := strings.Join(strings.Fields(ok)[:10], " ")
	_, err := filterProcNet(strings.NewReader("header\n"+ten+"\n"+ok+"\n"+ok[:20]+"\n"), "/proc/net/tcp", diagRequest{Dump: true})
	if want := "/proc/net/tcp line 4: 2 fields, want at least 10"; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}

// The /proc fallback agrees with the kernel's view of a real connection.
func TestProcNetDiag_kernel(t *testing.T) {
	for _, network := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(network, func(t *testing.T) {
			ln, err := net.Listen("tcp", network)
			if err != nil {
				t.Skipf("cannot listen on %s: %v", network, err)
			}
			defer ln.Close()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			local, remote := addrPortOf(c.LocalAddr()), addrPortOf(c.RemoteAddr())
			if _, err := os.Stat("/proc/net/tcp"); err != nil {
				t.Skipf("no /proc/net/tcp: %v", err)
			}
			if uid, err := tcpOwner(procNetDiag, local, remote); err != nil || uid != os.Getuid() {
				t.Errorf("tcpOwner from /proc = %d, %v; want %d", uid, err, os.Getuid())
			}
			if uid, err := listenerOwner(procNetDiag, remote); err != nil || uid != os.Getuid() {
				t.Errorf("listenerOwner from /proc = %d, %v", uid, err)
			}
		})
	}
}

func TestOrProcNet(t *testing.T) {
	procCalls := 0
	proc := func(diagRequest) ([]diagSocket, error) {
		procCalls++
		return []diagSocket{listener("127.0.0.1:1", 5)}, nil
	}
	for _, tt := range []struct {
		name       string
		netlinkErr error
		wantProc   bool
	}{
		{"netlink answers", nil, false},
		{"netlink query fails", syscall.ENOENT, false},
		{"no netlink socket", fmt.Errorf("%w: %w", errNoNetlink, syscall.EPROTONOSUPPORT), true},
	} {
		procCalls = 0
		nl := func(diagRequest) ([]diagSocket, error) {
			return []diagSocket{listener("127.0.0.1:1", 7)}, tt.netlinkErr
		}
		socks, err := orProcNet(nl, proc)(diagRequest{})
		if tt.wantProc {
			if procCalls != 1 || err != nil || socks[0].UID != 5 {
				t.Errorf("%s: got %+v, %v after %d /proc reads; want the /proc answer", tt.name, socks, err, procCalls)
			}
		} else if procCalls != 0 || socks[0].UID != 7 || !errors.Is(err, tt.netlinkErr) {
			t.Errorf("%s: got %+v, %v after %d /proc reads; want netlink's answer", tt.name, socks, err, procCalls)
		}
	}
}
