//go:build linux

package delivery

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"syscall"
)

// TCP states as inet_diag reports them (include/net/tcp_states.h).
const tcpListen = 10

// diagRequest is one inet_diag question about TCP sockets of one address
// family: the socket with exactly this 4-tuple (Dump false), or every
// socket in the given states (Dump true).
type diagRequest struct {
	IPv6     bool
	Dump     bool
	States   uint32         // bit per TCP state; dumps only
	Src, Dst netip.AddrPort // the socket's own and its peer's address; exact queries only
}

// diagSocket is what inet_diag reports about one socket.
type diagSocket struct {
	State uint8
	Src   netip.AddrPort // the socket's own address
	UID   uint32
	Inode uint32
}

// diagQuery asks the kernel. It returns an error wrapping ENOENT when an
// exact query finds no socket.
type diagQuery func(diagRequest) ([]diagSocket, error)

// tcpOwner finds the uid owning the socket that our connection from local
// to remote reached. It asks for that exact socket first: the accepted
// connection, owned by the listener's user even before accept(). A
// connection the listener has not taken yet may still be a request
// socket, and one closed early a time-wait socket; the kernel reports both
// with uid 0 and no inode, which must not pass for root. For those, and
// when the exact socket is gone, the answer is the owner of the listening
// socket on remote's port, if exactly one user listens there.
func tcpOwner(query diagQuery, local, remote netip.AddrPort) (int, error) {
	if !local.IsValid() || !remote.IsValid() {
		return 0, errors.New("the connection has no TCP addresses")
	}
	v6 := remote.Addr().Is6()
	socks, err := query(diagRequest{IPv6: v6, Src: remote, Dst: local})
	if err != nil && !isNotFound(err) {
		return 0, fmt.Errorf("sock_diag: %w", err)
	}
	for _, s := range socks {
		if s.Src == remote && (s.UID != 0 || s.Inode != 0) {
			return int(s.UID), nil
		}
	}
	return listenerOwner(query, remote)
}

// listenerOwner finds the uid of the socket listening on addr (bound to it
// or to the wildcard address of a family that accepts it).
func listenerOwner(query diagQuery, addr netip.AddrPort) (int, error) {
	families := []bool{true}
	if addr.Addr().Is4() {
		families = []bool{false, true} // IPv6 wildcard listeners take IPv4 too
	}
	var uids []uint32
	for _, v6 := range families {
		socks, err := query(diagRequest{IPv6: v6, Dump: true, States: 1 << tcpListen})
		if err != nil {
			return 0, fmt.Errorf("sock_diag: %w", err)
		}
		for _, s := range socks {
			if s.State == tcpListen && listensOn(s.Src, addr) && !slices.Contains(uids, s.UID) {
				uids = append(uids, s.UID)
			}
		}
	}
	switch len(uids) {
	case 0:
		return 0, fmt.Errorf("no socket listens on %s any more", addr)
	case 1:
		return int(uids[0]), nil
	}
	return 0, fmt.Errorf("sockets of several users (uids %v) listen on %s", uids, addr)
}

// listensOn reports whether a listener bound to bound receives connections
// to addr.
func listensOn(bound, addr netip.AddrPort) bool {
	if bound.Port() != addr.Port() {
		return false
	}
	b := bound.Addr()
	return b.IsUnspecified() || b == addr.Addr() || b.Unmap() == addr.Addr()
}

// addrPortOf is a net.Addr as a netip.AddrPort, IPv4 unmapped; the zero
// AddrPort if it is not a TCP address.
func addrPortOf(a net.Addr) netip.AddrPort {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	ap := ta.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func isNotFound(err error) bool { return errors.Is(err, syscall.ENOENT) }
