//go:build !linux && !darwin

package delivery

import (
	"errors"
	"net"
)

// unixPeerUID is not implemented on this platform: tokens are withheld
// rather than sent to an unchecked peer.
func unixPeerUID(*net.UnixConn) (int, error) {
	return 0, errors.New("reading a Unix socket peer's uid is supported on Linux and macOS only")
}
