// Package oserr shortens operating-system errors for one-line messages that
// already name the file or address: "permission denied" instead of
// "open /etc/x: permission denied", "connection refused" instead of
// "dial unix /tmp/bot.sock: connect: connection refused".
//
// It imports the standard library only, so the public receiver package may
// use it.
package oserr

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"syscall"
)

// Cause is err's cause without the operation, path or address that the
// standard library's wrappers add: the system error (syscall.Errno) when
// there is one anywhere in the chain, else what the first *fs.PathError,
// *os.LinkError, *os.SyscallError or *net.OpError wraps, else err itself.
// The result still matches errors.Is(err, syscall.EACCES) and the like
// whenever err did through a system error. Cause(nil) is nil.
func Cause(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Err != nil {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) && le.Err != nil {
		return le.Err
	}
	var se *os.SyscallError
	if errors.As(err, &se) && se.Err != nil {
		return se.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

// Timeout reports whether err is a timeout: a deadline that passed
// (os.ErrDeadlineExceeded) or a net.Error in the chain that says so
// (syscall.Errno does for EAGAIN and ETIMEDOUT).
func Timeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// Reason is the text of Cause(err): "no space left on device",
// "connection refused". Reason(nil) is "".
func Reason(err error) string {
	if err == nil {
		return ""
	}
	return Cause(err).Error()
}
