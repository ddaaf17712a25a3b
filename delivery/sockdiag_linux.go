//go:build linux

package delivery

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// Sizes of struct inet_diag_req_v2 and struct inet_diag_msg
// (include/uapi/linux/inet_diag.h).
const (
	inetDiagReqV2Len = 56
	inetDiagMsgLen   = 72
)

// errNoNetlink: no NETLINK_SOCK_DIAG socket could be opened.
var errNoNetlink = errors.New("cannot open a NETLINK_SOCK_DIAG socket")

// netlinkDiag sends one inet_diag request over a NETLINK_SOCK_DIAG socket
// and collects the sockets it reports.
func netlinkDiag(r diagRequest) ([]diagSocket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoNetlink, err)
	}
	defer unix.Close(fd)
	// The kernel answers at once; the bound only guards against a hang.
	tv := unix.Timeval{Sec: 5}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, fmt.Errorf("set netlink timeout: %w", err)
	}
	if err := unix.Sendto(fd, encodeDiagRequest(r), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("send netlink request: %w", err)
	}
	buf := make([]byte, 32<<10)
	var out []diagSocket
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, fmt.Errorf("read netlink answer: %w", err)
		}
		socks, done, err := decodeDiagAnswer(buf[:n])
		out = append(out, socks...)
		if done || !r.Dump {
			return out, err
		}
	}
}

// diagSeq is the sequence number of our requests; answers must carry it.
const diagSeq = 1

// encodeDiagRequest is a netlink header followed by struct inet_diag_req_v2.
func encodeDiagRequest(r diagRequest) []byte {
	b := make([]byte, unix.SizeofNlMsghdr+inetDiagReqV2Len)
	ne := binary.NativeEndian
	flags := uint16(unix.NLM_F_REQUEST)
	if r.Dump {
		flags |= unix.NLM_F_DUMP
	}
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(b[6:], flags)
	ne.PutUint32(b[8:], diagSeq)
	req := b[unix.SizeofNlMsghdr:]
	req[0] = unix.AF_INET
	if r.IPv6 {
		req[0] = unix.AF_INET6
	}
	req[1] = unix.IPPROTO_TCP
	states := r.States
	if !r.Dump {
		states = ^uint32(0)
	}
	ne.PutUint32(req[4:], states)
	id := req[8:]
	binary.BigEndian.PutUint16(id[0:], r.Src.Port())
	binary.BigEndian.PutUint16(id[2:], r.Dst.Port())
	putDiagAddr(id[4:20], r.Src.Addr())
	putDiagAddr(id[20:36], r.Dst.Addr())
	// id[36:40] is the interface (0: any); the cookie is INET_DIAG_NOCOOKIE.
	ne.PutUint32(id[40:], ^uint32(0))
	ne.PutUint32(id[44:], ^uint32(0))
	return b
}

// putDiagAddr writes an address the way inet_diag_sockid holds it: IPv4 in
// the first 4 bytes, IPv6 in all 16.
func putDiagAddr(dst []byte, a netip.Addr) {
	if a.Is4() {
		v4 := a.As4()
		copy(dst, v4[:])
		return
	}
	if a.Is6() {
		v6 := a.As16()
		copy(dst, v6[:])
	}
}

// decodeDiagAnswer reads one datagram of netlink messages. done is true at
// the end of a dump (NLMSG_DONE) and on any error.
func decodeDiagAnswer(b []byte) (socks []diagSocket, done bool, err error) {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return nil, true, fmt.Errorf("parse netlink answer: %w", err)
	}
	ne := binary.NativeEndian
	for _, m := range msgs {
		if m.Header.Seq != diagSeq {
			continue
		}
		switch m.Header.Type {
		case unix.NLMSG_DONE:
			return socks, true, nil
		case unix.NLMSG_ERROR:
			if len(m.Data) < 4 {
				return socks, true, errors.New("short netlink error")
			}
			if errno := -int32(ne.Uint32(m.Data)); errno != 0 {
				return socks, true, syscall.Errno(errno)
			}
			return socks, true, nil
		case unix.SOCK_DIAG_BY_FAMILY:
			if len(m.Data) < inetDiagMsgLen {
				return socks, true, errors.New("short inet_diag message")
			}
			socks = append(socks, decodeDiagMsg(m.Data))
		}
	}
	return socks, false, nil
}

// decodeDiagMsg reads struct inet_diag_msg.
func decodeDiagMsg(d []byte) diagSocket {
	ne := binary.NativeEndian
	var addr netip.Addr
	if d[0] == unix.AF_INET6 {
		addr = netip.AddrFrom16([16]byte(d[8:24])).Unmap()
	} else {
		addr = netip.AddrFrom4([4]byte(d[8:12]))
	}
	return diagSocket{
		State: d[1],
		Src:   netip.AddrPortFrom(addr, binary.BigEndian.Uint16(d[4:])),
		UID:   ne.Uint32(d[64:]),
		Inode: ne.Uint32(d[68:]),
	}
}
