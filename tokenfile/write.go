package tokenfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/google/renameio/v2"
)

// filePerm is the mode of the token file when none is chosen.
const filePerm = 0o600

// writeOps are the steps of Write after the temporary file exists. Tests
// swap them to make a step fail; Write always uses defaultWriteOps.
type writeOps struct {
	write   func(f *renameio.PendingFile, data []byte) error
	replace func(f *renameio.PendingFile) error // fsync + close + rename
	syncDir func(dir string) error
	euid    int
}

func defaultWriteOps() writeOps {
	return writeOps{
		write: func(f *renameio.PendingFile, data []byte) error {
			_, err := f.Write(data)
			return err
		},
		replace: (*renameio.PendingFile).CloseAtomicallyReplace,
		syncDir: syncDir,
		euid:    os.Geteuid(),
	}
}

// CheckMode accepts the modes a token file may have: 0600 (owner only) and
// 0640 (owner, and the group may read, for a dashboard in the bot's
// group). Anything readable or writable by others, writable by the group or
// executable is refused with one line saying so.
func CheckMode(mode os.FileMode) error {
	if mode != 0o600 && mode != 0o640 {
		return fmt.Errorf("token file mode %04o is not allowed: a token file must not be readable or writable by other users or writable by the group; use 0600 (owner only) or 0640 (owner, group may read)", uint32(mode))
	}
	return nil
}

// ParseMode reads a --token-file-mode value such as "0640" (octal) and
// checks it with CheckMode.
func ParseMode(s string) (os.FileMode, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil {
		return 0, fmt.Errorf("token file mode %q is not an octal number; use 0600 or 0640", s)
	}
	return os.FileMode(n), CheckMode(os.FileMode(n))
}

// Write replaces the token file at path with d.Marshal() atomically, with
// mode 0600: see Store.Update for other modes. The content goes to a
// temporary file in the same directory (named ".<file name><digits>"),
// created with the mode whatever the old file's was, which is fsynced and
// renamed over path; then the directory is fsynced. When running as root,
// an existing file keeps its owner. If path is a symlink, the file it
// points to is replaced and the link is kept, but only when that file and
// its directory belong to this user or root. Something other than a
// regular file at the path (a FIFO, a socket, a directory) is refused. On
// any failure before the rename the file on disk is untouched and the
// temporary file removed.
func Write(path string, d *Document) error {
	return writeFile(path, d.Marshal(), filePerm, defaultWriteOps())
}

func writeFile(path string, data []byte, mode os.FileMode, ops writeOps) error {
	if mode == 0 {
		mode = filePerm
	}
	if err := CheckMode(mode); err != nil {
		return &fileError{msg: fmt.Sprintf("token file %s: not written: %v", path, err), err: err}
	}
	target, err := writeTarget(path, ops.euid)
	if err != nil {
		return err
	}
	dir := filepath.Dir(target)
	f, err := renameio.NewPendingFile(target,
		renameio.WithTempDir(dir),
		renameio.WithStaticPermissions(mode),
	)
	if err != nil {
		return writeError(path, err)
	}
	defer f.Cleanup() //nolint:errcheck // best effort; no-op after a successful rename
	keepOwner(f, target, ops.euid)
	if err := ops.write(f, data); err != nil {
		return writeError(path, err)
	}
	if err := ops.replace(f); err != nil {
		return writeError(path, err)
	}
	if err := ops.syncDir(dir); err != nil {
		return &fileError{
			msg: fmt.Sprintf("token file %s: written, but syncing directory %s failed: %s; the new content may be lost if the machine crashes now",
				path, dir, reason(err)),
			err: err,
		}
	}
	return nil
}

// writeTarget is the file Write replaces: path, or the file a symlink at
// path points to when that file (if it exists) and its directory belong to
// euid or root. Something other than a regular file there is refused.
func writeTarget(path string, euid int) (string, error) {
	target, err := linkTarget(path, euid)
	if err != nil {
		return "", err
	}
	fi, err := os.Lstat(target)
	if err == nil && !fi.Mode().IsRegular() {
		return "", &fileError{msg: fmt.Sprintf(
			"token file %s: refusing to replace %s: it is not a regular file (%s); remove it or choose another --token-file",
			path, target, fi.Mode().Type())}
	}
	return target, nil
}

// linkTarget is path, or the file a symlink at path points to when that
// file (if it exists) and its directory belong to euid or root; another
// user's is refused.
func linkTarget(path string, euid int) (string, error) {
	target := path
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		if target, err = filepath.EvalSymlinks(path); err != nil {
			// A dangling link: the file it names would be created.
			if target, err = os.Readlink(path); err != nil {
				return "", writeError(path, err)
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(filepath.Dir(path), target)
			}
		}
		for _, p := range []string{target, filepath.Dir(target)} {
			if uid, ok := owner(p); ok && uid != euid && uid != 0 {
				return "", &fileError{msg: fmt.Sprintf(
					"token file %s: refusing to write through the symbolic link to %s: %s belongs to uid %d; remove the link or point --token-file at a file of this user",
					path, target, p, uid)}
			}
		}
	}
	return target, nil
}

// owner is the uid owning p (not following a final symlink).
func owner(p string) (int, bool) {
	fi, err := os.Lstat(p)
	if err != nil {
		return 0, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

func writeError(path string, err error) error {
	return &fileError{
		msg: fmt.Sprintf("token file %s: cannot write: %s; the file on disk was not changed", path, reason(err)),
		err: err,
	}
}

// keepOwner gives the temporary file the existing file's owner and group,
// so that a root process rewriting a user's token file does not take it
// away from the user. Only root can do that; failures are ignored (the
// write itself matters more).
func keepOwner(f *renameio.PendingFile, target string, euid int) {
	if euid != 0 {
		return
	}
	fi, err := os.Stat(target)
	if err != nil {
		return
	}
	st := fi.Sys().(*syscall.Stat_t)
	_ = f.Chown(int(st.Uid), int(st.Gid))
}

// syncDir makes a rename in dir durable. File systems that cannot fsync a
// directory (EINVAL) are accepted.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if errors.Is(err, syscall.EINVAL) {
		err = nil
	}
	return errors.Join(err, d.Close())
}

// resolve follows symlinks so that Write replaces the file a link points to
// instead of the link, and so that every path to one file shares one lock.
// A path that cannot be resolved (it does not exist yet) is used as given.
func resolve(path string) string {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		return p
	}
	return path
}

// isTempName reports whether name is one of Write's temporary files for a
// file called base: "." + base + 1 to 19 decimal digits.
func isTempName(name, base string) bool {
	digits, ok := strings.CutPrefix(name, "."+base)
	if !ok || len(digits) == 0 || len(digits) > 19 {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// CleanStaleTemps removes the temporary files a crashed Write can leave next
// to path (".<file name><digits>", regular files only) and returns the paths
// it removed. It touches nothing else. Call it while holding Lock(path), for
// example once at start-up: a Write running in another process at the same
// time would otherwise lose its temporary file and fail (safely).
func CleanStaleTemps(path string) (removed []string, err error) {
	target := resolve(path)
	dir, base := filepath.Dir(target), filepath.Base(target)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("token file %s: cannot list directory %s for stale temporary files: %s", path, dir, reason(err))
	}
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() || !isTempName(e.Name(), base) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("token file %s: cannot remove stale temporary file %s: %s", path, p, reason(err)))
			continue
		}
		removed = append(removed, p)
	}
	return removed, errors.Join(errs...)
}

// CheckWriteTarget reports, without writing anything, whether a write to
// the token file at path would be refused because path is a symbolic link
// to a file (or into a directory) of another user, or names something
// other than a regular file. `login` calls it before the browser flow, so
// that Schwab's new tokens are never issued only to be refused.
func CheckWriteTarget(path string) error {
	_, err := writeTarget(path, os.Geteuid())
	return err
}
