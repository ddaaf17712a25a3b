package tokenfile

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultLockWait bounds every wait for the token file's lock when the
// caller sets none: a process holding it longer than this is stuck.
const DefaultLockWait = 30 * time.Second

// lockPoll is how often a waiting locker tries again.
const lockPoll = 50 * time.Millisecond

// A note on github.com/gofrs/flock, which DESIGN.md lists: it opens the
// lock file by path itself, again on every TryLock and after an EIO/EBADF,
// gives no access to the descriptor it locked and cannot lock one we
// opened. Checking the path first and handing it to flock would leave a
// window in which another user swaps in a symlink or a file of theirs, and
// the pid could not be written through the checked descriptor. So this file
// opens the lock and pid files itself (O_NOFOLLOW, fstat of that very
// descriptor) and locks that descriptor with flock(2) from x/sys/unix.

// locker is the environment of a lock wait; tests replace its parts.
type locker struct {
	wait    time.Duration                                    // bound of the wait; 0: DefaultLockWait
	now     func() time.Time                                 // clock
	sleep   func(ctx context.Context, d time.Duration) error // pause between attempts
	holders func(dev, ino uint64) []int                      // pids holding a flock on the file
	euid    int                                              // our effective uid
	log     *slog.Logger                                     // hears that a wait begins; nil: silent
}

func defaultLocker() locker {
	return locker{now: time.Now, sleep: sleepCtx, holders: procLockHolders, euid: os.Geteuid()}
}

// sleepCtx pauses for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// openPrivate opens (creating it 0600 if needed) the lock or pid file
// named name for the token file path, without following a symlink, and
// checks the descriptor it got: a regular file, with one link, owned by us
// or root. A file of ours that others could read (and so flock) is made
// 0600. Every error is one line naming both files and the fix.
func (l locker) openPrivate(path, name string, flag int) (*os.File, *unix.Stat_t, error) {
	// A token path that is another user's symlink must not make us create
	// a lock or pid file where they chose.
	if _, err := linkTarget(path, l.euid); err != nil {
		return nil, nil, err
	}
	fd, err := unix.Open(name, flag|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
	if errors.Is(err, unix.ELOOP) {
		return nil, nil, refuse(path, name, "it is a symbolic link")
	}
	if err != nil {
		// Linux answers EACCES, not ELOOP, for another user's symlink (or,
		// with fs.protected_regular, file) in a sticky directory such as
		// /tmp: say what is there.
		var st unix.Stat_t
		if unix.Lstat(name, &st) == nil {
			if why := l.notPrivate(&st); why != "" {
				return nil, nil, refuse(path, name, why)
			}
		}
		return nil, nil, &fileError{kind: ErrLock,
			msg: fmt.Sprintf("token file %s: cannot open %s: %s; check that the token file's directory exists and is writable by this user",
				path, name, reason(err)),
			err: err,
		}
	}
	f := os.NewFile(uintptr(fd), name)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, nil, &fileError{kind: ErrLock, msg: fmt.Sprintf("token file %s: cannot inspect %s: %s", path, name, reason(err)), err: err}
	}
	if why := l.notPrivate(&st); why != "" {
		f.Close()
		return nil, nil, refuse(path, name, why)
	}
	if int(st.Uid) == l.euid && st.Mode&0o077 != 0 {
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			return nil, nil, &fileError{kind: ErrLock, msg: fmt.Sprintf("token file %s: cannot make %s private (chmod 600): %s", path, name, reason(err)), err: err}
		}
	}
	return f, &st, nil
}

// errRefused is the cause of a refusal: the lock or pid file is not ours
// to use, which no waiting fixes.
var errRefused = errors.New("not a private file of this user")

// notPrivate says why the file st describes is not a private regular
// file of ours (or root's), or "" when it is.
func (l locker) notPrivate(st *unix.Stat_t) string {
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return "it is a symbolic link"
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return "it is not a regular file"
	case int(st.Uid) != l.euid && st.Uid != 0:
		return fmt.Sprintf("it belongs to uid %d", st.Uid)
	case st.Nlink != 1:
		return fmt.Sprintf("it has %d hard links", st.Nlink)
	}
	return ""
}

func refuse(path, name, why string) error {
	return &fileError{kind: ErrLock, msg: fmt.Sprintf(
		"token file %s: refusing %s: %s, not a private file of this user; remove it (another user may have planted it) and start again",
		path, name, why), err: errRefused}
}

// lock opens name privately and takes an exclusive flock on it, trying
// every lockPoll until l.wait has passed or ctx is done. On timeout the
// error names the pids holding the lock, where /proc/locks shows them.
func (l locker) lock(ctx context.Context, path, name string) (*os.File, error) {
	f, st, err := l.openPrivate(path, name, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	wait := l.wait
	if wait <= 0 {
		wait = DefaultLockWait
	}
	deadline := l.now().Add(wait)
	told := false // that we are waiting
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, &fileError{kind: ErrLock, msg: fmt.Sprintf("token file %s: cannot lock %s: %s", path, name, reason(err)), err: err}
		}
		if l.log != nil && !told {
			told = true
			l.log.Info(fmt.Sprintf("Token file %s: waiting up to %s for lock %s, held by %s",
				path, wait, name, holderText(l.holders(uint64(st.Dev), st.Ino))))
		}
		if !l.now().Before(deadline) {
			f.Close()
			return nil, &fileError{kind: ErrLock, msg: fmt.Sprintf(
				"token file %s: gave up after %s waiting for lock %s, held by %s; if that is not a token-refresh-sender login or refresh finishing, stop it, then try again",
				path, wait, name, holderText(l.holders(uint64(st.Dev), st.Ino))), err: context.DeadlineExceeded}
		}
		if err := l.sleep(ctx, lockPoll); err != nil {
			f.Close()
			return nil, &fileError{kind: ErrLock, msg: fmt.Sprintf(
				"token file %s: gave up waiting for lock %s, held by %s (%v)", path, name, holderText(l.holders(uint64(st.Dev), st.Ino)), err), err: err}
		}
	}
}

func holderText(pids []int) string {
	if len(pids) == 0 {
		return "a process this user cannot see"
	}
	s := make([]string, len(pids))
	for i, p := range pids {
		s[i] = strconv.Itoa(p)
	}
	return "pid " + strings.Join(s, ", ")
}

// procLockHolders lists the pids that hold a flock on the file (dev, ino)
// according to /proc/locks, or nothing where that is not readable.
func procLockHolders(dev, ino uint64) []int {
	f, err := os.Open("/proc/locks")
	if err != nil {
		return nil
	}
	defer f.Close()
	return parseLockHolders(f, dev, ino)
}

// parseLockHolders reads /proc/locks lines such as
//
//	1: FLOCK  ADVISORY  WRITE 15463 fe:00:9979870 0 EOF
//
// and returns the pids of the held (not the waiting, "->") locks on the
// file whose device is dev ("major:minor" in hex) and inode ino.
func parseLockHolders(r io.Reader, dev, ino uint64) []int {
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(dev), unix.Minor(dev), ino)
	var pids []int
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[1] == "->" || f[5] != want {
			continue
		}
		if pid, err := strconv.Atoi(f[4]); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Lock takes an exclusive flock on "<path>.lock", the file that serialises
// read-modify-write cycles on the token file across processes (separate
// from the token file, whose inode every write replaces). The lock file is
// created 0600, never through a symlink, and refused when it is not a
// private regular file of this user (or root). The wait ends when ctx is
// done or after DefaultLockWait; the error then names the holder's pid.
// Readers need not lock. Call unlock exactly once.
func Lock(ctx context.Context, path string) (unlock func() error, err error) {
	return defaultLocker().lockFile(ctx, path)
}

func (l locker) lockFile(ctx context.Context, path string) (unlock func() error, err error) {
	name := resolve(path) + ".lock"
	f, err := l.lock(ctx, path, name)
	if err != nil {
		return nil, err
	}
	return func() error {
		// Closing the only descriptor releases the flock.
		if err := f.Close(); err != nil {
			return fmt.Errorf("token file %s: unlock %s: %w", path, name, err)
		}
		return nil
	}, nil
}

// Update runs one read-modify-write cycle under Lock with a Store at path
// (mode 0600, default lock wait): see Store.UpdateDocument.
func Update(ctx context.Context, path string, fn func(*Document) error) error {
	return (&Store{Path: path}).UpdateDocument(ctx, fn)
}

// CheckLockFile opens (creating it 0600 if needed) the lock file of the
// token file at path as Lock does, without locking it, and returns Lock's
// refusal when it is not a private regular file of this user (a planted
// symlink, another user's file). `login` calls it before the browser flow,
// so that a login is not spent on tokens the lock would keep from being
// saved.
func CheckLockFile(path string) error {
	f, _, err := defaultLocker().openPrivate(path, resolve(path)+".lock", unix.O_RDONLY)
	if err != nil {
		return err
	}
	return f.Close()
}
