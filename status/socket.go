package status

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/schwabtools/token-refresh-sender/delivery"
	"github.com/schwabtools/token-refresh-sender/internal/oserr"
)

// ProbeTimeout bounds the connection attempt to one socket.
const ProbeTimeout = time.Second

// SocketStatus is what a probe found at one bot address.
type SocketStatus struct {
	Address delivery.Address
	// Present: the Unix socket file exists. For TCP there is no file, and
	// Present equals Accepting.
	Present bool
	// Accepting: a connection was accepted (and closed at once, without
	// sending anything).
	Accepting bool
	// Error says why not, in a few words ("not found", "connection
	// refused", "not a socket"); empty when Accepting.
	Error string
}

// Probe checks whether a bot listens at a. For a Unix socket the file must
// exist and be a socket; a listener the kernel lists in /proc/net/unix
// counts as accepting without being disturbed. Otherwise a connection is
// opened within timeout and closed at once without sending a byte (a
// receiver may log an empty message for it).
func Probe(a delivery.Address, timeout time.Duration) SocketStatus {
	s := SocketStatus{Address: a}
	if a.Network == "unix" {
		fi, err := os.Stat(a.Addr)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				s.Error = "not found"
			} else {
				s.Present = true // something is in the way, we cannot tell what
				s.Error = errorReason(err)
			}
			return s
		}
		s.Present = true
		if fi.Mode().Type() != fs.ModeSocket {
			s.Error = "not a socket"
			return s
		}
		if listeningUnix(a.Addr) {
			s.Accepting = true
			return s
		}
	}
	conn, err := net.DialTimeout(a.Network, a.Addr, timeout)
	if err != nil {
		s.Error = errorReason(err)
		return s
	}
	_ = conn.Close()
	s.Accepting = true
	if a.Network != "unix" {
		s.Present = true
	}
	return s
}

// errorReason is the short cause of a stat or dial error, without the
// operation and address the report already shows; a dial that ran out of
// time without a system error says "timed out".
func errorReason(err error) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) && oserr.Timeout(err) {
		return "timed out"
	}
	return oserr.Reason(err)
}

// listeningUnix reports whether the kernel lists a listening Unix socket
// bound to path (an absolute path, or one relative to the current
// directory) in /proc/net/unix. False when it cannot tell.
func listeningUnix(path string) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	data, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		return false
	}
	const acceptCon = 0x10000 // __SO_ACCEPTCON: the socket listens
	for _, line := range strings.Split(string(data), "\n") {
		// Num RefCount Protocol Flags Type St Inode Path
		f := strings.Fields(line)
		if len(f) < 8 || (f[7] != path && f[7] != abs) {
			continue
		}
		if flags, err := strconv.ParseUint(f[3], 16, 32); err == nil && flags&acceptCon != 0 {
			return true
		}
	}
	return false
}
