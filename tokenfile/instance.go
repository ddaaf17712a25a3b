package tokenfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrAlreadyRunning means another daemon holds the token file.
var ErrAlreadyRunning = errors.New("another token-refresh-sender is already running")

// ClaimDaemon makes this process the only daemon for the token file at
// path, by holding an exclusive lock on "<path>.pid" (which records its
// pid) for as long as it runs. A second daemon gets ErrAlreadyRunning with
// the first one's pid at once; it does not wait. The pid file is opened
// like the lock file (never through a symlink, created 0600, refused unless
// it is a private regular file of this user or root). The lock is separate
// from Lock's, so `refresh`, `send`, `status` and `login` keep working
// beside the daemon. release removes the pid file and lets go of it.
func ClaimDaemon(path string) (release func() error, err error) {
	return defaultLocker().claim(path)
}

func (l locker) claim(path string) (release func() error, err error) {
	name := resolve(path) + ".pid"
	f, st, err := l.openPrivate(path, name, unix.O_RDWR)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &fileError{kind: ErrLock, msg: fmt.Sprintf("token file %s: cannot lock %s: %s", path, name, reason(err)), err: err}
		}
		return nil, fmt.Errorf("%w for %s (%s); stop it first, or give this one another --token-file",
			ErrAlreadyRunning, path, runningPid(f, l.holders(uint64(st.Dev), st.Ino)))
	}
	if err := writePid(f, os.Getpid()); err != nil {
		f.Close()
		return nil, &fileError{kind: ErrLock, msg: fmt.Sprintf("token file %s: cannot write %s: %s", path, name, reason(err)), err: err}
	}
	return func() error {
		// Remove the pid file only while it is still the one we hold.
		var now unix.Stat_t
		if unix.Lstat(name, &now) == nil && now.Dev == st.Dev && now.Ino == st.Ino {
			_ = os.Remove(name)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("token file %s: release %s: %w", path, name, err)
		}
		return nil
	}, nil
}

func writePid(f *os.File, pid int) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(pid)+"\n"), 0)
	return err
}

// runningPid names the other daemon: the pid its file records, else a
// holder /proc/locks shows.
func runningPid(f *os.File, holders []int) string {
	b, _ := io.ReadAll(io.LimitReader(f, 32))
	if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 {
		return "pid " + strconv.Itoa(n)
	}
	return holderText(holders)
}

// Instance is the running daemon's hold on its token file, with the
// start-up housekeeping that goes with it. Set Store, call Open, read
// Changes, and Close on the way out.
type Instance struct {
	// Store is the token file (Path, LockWait, Logger are used).
	Store *Store

	release func() error
	cancel  context.CancelFunc
	changes <-chan struct{}
}

// Open claims the daemon's place (ClaimDaemon: ErrAlreadyRunning when
// another daemon runs), removes temporary files an interrupted write left
// behind (under the lock, logging each at INFO; a lock wait that runs out
// or a cleanup failure is logged as a WARNING and start-up goes on), and
// starts watching the file for a new login (if that fails, a WARNING says
// the next refresh picks it up instead, and Changes is nil). It returns the
// claim's error, and the lock file's refusal (a symlink, another user's
// file: no refresh could ever take that lock), after letting go of the
// claim.
func (i *Instance) Open(ctx context.Context) error {
	s := i.Store
	log := s.logger()
	l := s.locker()
	release, err := l.claim(s.Path)
	if err != nil {
		return err
	}
	i.release = release
	if unlock, err := l.lockFile(ctx, s.Path); errors.Is(err, errRefused) {
		// A planted or foreign lock file: every refresh would fail on it.
		_ = i.release()
		i.release = nil
		return err
	} else if err != nil {
		log.Warn(err.Error() + "; stale temporary files are left for the next start")
	} else {
		removed, err := CleanStaleTemps(s.Path)
		_ = unlock()
		for _, r := range removed {
			log.Info("Removed a temporary file left by an interrupted write: " + r)
		}
		if err != nil {
			log.Warn(err.Error())
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	changes, err := Watch(wctx, s.Path, log)
	if err != nil {
		cancel()
		log.Warn(err.Error() + "; a new login will be picked up at the next refresh instead")
		return nil
	}
	i.cancel, i.changes = cancel, changes
	return nil
}

// Changes reports that the token file may have been replaced (see Watch);
// nil when it is not watched.
func (i *Instance) Changes() <-chan struct{} { return i.changes }

// Close stops the watcher, removes the pid file and releases the claim.
func (i *Instance) Close() error {
	if i.cancel != nil {
		i.cancel()
		for range i.changes { //nolint:revive // drain until the watcher has stopped
		}
	}
	if i.release == nil {
		return nil
	}
	return i.release()
}

// logger is the Store's logger or one that discards.
func (s *Store) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}
