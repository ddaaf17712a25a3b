package tokenfile

import (
	"errors"
	"io/fs"
	"os"
)

// ErrNotFound is matched (errors.Is) by the error Load returns when the token
// file does not exist. The caller tells the operator to run login.
var ErrNotFound = errors.New("token file not found")

// ErrInvalid is matched (errors.Is) by the errors Load and Parse return when
// the file exists but its content is not a usable token file (malformed JSON,
// wrong types, no refresh token). Fixing it needs a person: edit the file or
// run login.
var ErrInvalid = errors.New("invalid token file")

// ErrNoRefreshToken is matched, besides ErrInvalid, when the file parses but
// holds no refresh token (no "token" object, or an empty
// token.refresh_token): only a login can give it one.
var ErrNoRefreshToken = errors.New("token file has no refresh token")

// ErrNewLogin is matched (errors.Is) by the error Update and
// UpdateDocument return when another program, which does not take the
// lock (schwab-py), wrote a different refresh token into the file while fn
// ran: a new login. The file is left as that program wrote it, so the
// login is not lost; the caller should take up the new refresh token.
var ErrNewLogin = errors.New("token file has a new refresh token")

// ErrLock is matched (errors.Is) by every error about the lock: a lock or
// pid file that is not a private regular file, one that cannot be opened,
// and a wait for the lock that ran out. Such errors also have a method
// LockFailed() bool that returns true, for packages that do not import
// this one.
var ErrLock = errors.New("token file lock not acquired")

// fileError is a one-line message for the operator that still matches a
// sentinel (kind) and unwraps to the underlying cause.
type fileError struct {
	msg  string
	kind error // ErrNotFound, ErrInvalid or nil
	also error // a finer sentinel (ErrNoRefreshToken), or nil
	err  error // underlying cause, may be nil
}

func (e *fileError) Error() string { return e.msg }

func (e *fileError) Is(target error) bool {
	return target != nil && (target == e.kind || target == e.also)
}

func (e *fileError) Unwrap() error { return e.err }

// LockFailed reports whether the error is about the lock (taking it, or the
// lock file itself) rather than the token file's content.
func (e *fileError) LockFailed() bool { return e.kind == ErrLock }

// NewLogin reports whether the error is ErrNewLogin: not a failure, but a
// save skipped so that another program's new login is kept (for packages
// that do not import this one).
func (e *fileError) NewLogin() bool { return e.kind == ErrNewLogin }

// reason is the short cause of an OS error ("permission denied", "no space
// left on device") without the operation and path that the message already
// names.
func reason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err.Error()
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err.Error()
	}
	return err.Error()
}
