//go:build linux

package delivery

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// procNetDiag answers inet_diag requests from /proc/net/tcp or
// /proc/net/tcp6, for kernels or sandboxes without NETLINK_SOCK_DIAG. An
// exact query that matches no connection gives ENOENT (tcpOwner then asks
// for the listeners). Request sockets carry the listener's uid there.
func procNetDiag(r diagRequest) ([]diagSocket, error) {
	name := "/proc/net/tcp"
	if r.IPv6 {
		name = "/proc/net/tcp6"
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return filterProcNet(f, name, r)
}

// filterProcNet reads a /proc/net/tcp table and keeps the sockets r asks
// for.
func filterProcNet(rd io.Reader, name string, r diagRequest) ([]diagSocket, error) {
	var out []diagSocket
	sc := bufio.NewScanner(rd)
	sc.Scan() // header
	for line := 2; sc.Scan(); line++ {
		s, peer, err := parseProcNetLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", name, line, err)
		}
		if r.Dump && r.States&(1<<s.State) != 0 || !r.Dump && s.Src == r.Src && peer == r.Dst {
			out = append(out, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if !r.Dump && len(out) == 0 {
		return nil, syscall.ENOENT
	}
	return out, nil
}

// parseProcNetLine reads one socket: "sl local rem st tx:rx tr:when
// retrnsmt uid timeout inode ...".
func parseProcNetLine(line string) (s diagSocket, peer netip.AddrPort, err error) {
	f := strings.Fields(line)
	if len(f) < 10 {
		return s, peer, fmt.Errorf("%d fields, want at least 10", len(f))
	}
	if s.Src, err = parseProcNetAddr(f[1]); err != nil {
		return s, peer, err
	}
	if peer, err = parseProcNetAddr(f[2]); err != nil {
		return s, peer, err
	}
	st, err := strconv.ParseUint(f[3], 16, 8)
	if err != nil {
		return s, peer, fmt.Errorf("state %q: %w", f[3], err)
	}
	uid, err := strconv.ParseUint(f[7], 10, 32)
	if err != nil {
		return s, peer, fmt.Errorf("uid %q: %w", f[7], err)
	}
	inode, err := strconv.ParseUint(f[9], 10, 32)
	if err != nil {
		return s, peer, fmt.Errorf("inode %q: %w", f[9], err)
	}
	s.State, s.UID, s.Inode = uint8(st), uint32(uid), uint32(inode)
	return s, peer, nil
}

// parseProcNetAddr reads "0100007F:0277": the address as the kernel's
// 32-bit words in hex, host byte order, then the port in hex.
func parseProcNetAddr(s string) (netip.AddrPort, error) {
	h, p, ok := strings.Cut(s, ":")
	port, err := strconv.ParseUint(p, 16, 16)
	if !ok || err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q: bad port", s)
	}
	raw, err := hex.DecodeString(h)
	if err != nil || len(raw) != 4 && len(raw) != 16 {
		return netip.AddrPort{}, fmt.Errorf("address %q: want 8 or 32 hex digits", s)
	}
	var b [16]byte
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	addr := netip.AddrFrom16(b).Unmap()
	if len(raw) == 4 {
		addr = netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.AddrPortFrom(addr, uint16(port)), nil
}
