//go:build darwin

package delivery

import (
	"net"

	"golang.org/x/sys/unix"
)

// unixPeerUID reads LOCAL_PEERCRED: the uid of the process that created the
// listening socket.
func unixPeerUID(c *net.UnixConn) (int, error) {
	return peerCredUID(c, func(fd int) (uint32, error) {
		cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
		if err != nil {
			return 0, err
		}
		return cred.Uid, nil
	})
}
