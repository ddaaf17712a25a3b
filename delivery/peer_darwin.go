//go:build darwin

package delivery

import (
	"net"

	"golang.org/x/sys/unix"
)

// unixPeerUID reads LOCAL_PEERCRED: the uid of the process that created the
// listening socket.
func unixPeerUID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Xucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if credErr != nil {
		return 0, credErr
	}
	return int(cred.Uid), nil
}

// tcpOwnerUID: macOS has no interface that maps a connection to the uid of
// the socket it reached, so TCP targets are withheld.
func tcpOwnerUID(*net.TCPConn) (int, error) { return 0, errTCPOwnerUnsupported }
