//go:build !linux

package delivery

import (
	"errors"
	"net"
)

// errTCPOwnerUnsupported: outside Linux no kernel interface maps a
// connection to the uid owning the socket it reached (macOS has none), so
// TCP targets are withheld.
var errTCPOwnerUnsupported = errors.New("this platform cannot tell which user listens on a TCP port (supported on Linux only); use a Unix socket path instead")

func tcpOwnerUID(*net.TCPConn) (int, error) { return 0, errTCPOwnerUnsupported }
