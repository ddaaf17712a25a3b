package tokenfile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gofrs/flock"
)

// lockPoll is how often Lock retries while another process holds the lock.
const lockPoll = 50 * time.Millisecond

// Lock takes an exclusive flock on "<path>.lock" (created with mode 0600 and
// never removed), waiting until ctx is done. The lock file is separate from
// the token file because Write replaces the token file's inode. Every
// process that rewrites the file (the daemon, login) must hold this lock
// across its read-modify-write; readers need not. Call unlock exactly once.
func Lock(ctx context.Context, path string) (unlock func() error, err error) {
	lockPath := resolve(path) + ".lock"
	fl := flock.New(lockPath, flock.SetPermissions(0o600))
	ok, err := fl.TryLockContext(ctx, lockPoll)
	if err == nil && !ok {
		err = errors.New("lock not acquired")
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, &fileError{
				msg: fmt.Sprintf("token file %s: gave up waiting for lock %s (%v): another token-refresh-sender or login is updating the file",
					path, lockPath, ctxErr),
				err: ctxErr,
			}
		}
		return nil, &fileError{
			msg: fmt.Sprintf("token file %s: cannot lock %s: %s", path, lockPath, reason(err)),
			err: err,
		}
	}
	return func() error {
		if err := fl.Unlock(); err != nil {
			return fmt.Errorf("token file %s: unlock %s: %w", path, lockPath, err)
		}
		return nil
	}, nil
}

// Update runs one read-modify-write cycle under Lock: it loads the file,
// calls fn, and writes the result if fn returns nil. If Load fails, fn is
// not called and nothing is written; if fn fails, its error is returned
// unchanged and nothing is written.
func Update(ctx context.Context, path string, fn func(*Document) error) (err error) {
	unlock, err := Lock(ctx, path)
	if err != nil {
		return err
	}
	defer func() {
		if uerr := unlock(); uerr != nil && err == nil {
			err = uerr
		}
	}()
	d, err := Load(path)
	if err != nil {
		return err
	}
	if err := fn(d); err != nil {
		return err
	}
	return Write(path, d)
}
