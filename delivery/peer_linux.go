//go:build linux

package delivery

import (
	"errors"
	"net"

	"golang.org/x/sys/unix"
)

// unixPeerUID reads SO_PEERCRED: the uid of the process that created the
// listening socket.
func unixPeerUID(c *net.UnixConn) (int, error) {
	return peerCredUID(c, func(fd int) (uint32, error) {
		cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			return 0, err
		}
		return cred.Uid, nil
	})
}

// tcpOwnerUID asks the kernel (sock_diag) which uid owns the socket at the
// far end of c: the accepted socket, which belongs to the listener's user.
func tcpOwnerUID(c *net.TCPConn) (int, error) {
	return tcpOwner(orProcNet(netlinkDiag, procNetDiag), addrPortOf(c.LocalAddr()), addrPortOf(c.RemoteAddr()))
}

// orProcNet asks sock_diag (netlink), or reads /proc/net/tcp{,6} (procNet)
// where no NETLINK_SOCK_DIAG socket can be opened.
func orProcNet(netlink, procNet diagQuery) diagQuery {
	return func(r diagRequest) ([]diagSocket, error) {
		socks, err := netlink(r)
		if errors.Is(err, errNoNetlink) {
			return procNet(r)
		}
		return socks, err
	}
}
