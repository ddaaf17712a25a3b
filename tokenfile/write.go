package tokenfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/google/renameio/v2"
)

// filePerm is the mode of a token file Write creates. An existing file keeps
// its mode.
const filePerm = 0o600

// writeOps are the steps of Write after the temporary file exists. Tests
// swap them to make a step fail; Write always uses defaultWriteOps.
type writeOps struct {
	write   func(f *renameio.PendingFile, data []byte) error
	replace func(f *renameio.PendingFile) error // fsync + close + rename
	syncDir func(dir string) error
}

func defaultWriteOps() writeOps {
	return writeOps{
		write: func(f *renameio.PendingFile, data []byte) error {
			_, err := f.Write(data)
			return err
		},
		replace: (*renameio.PendingFile).CloseAtomicallyReplace,
		syncDir: syncDir,
	}
}

// Write replaces the token file at path with d.Marshal() atomically: the
// content goes to a temporary file in the same directory (named
// ".<file name><digits>"), which is fsynced and renamed over path, and then
// the directory is fsynced. A new file gets mode 0600; an existing file keeps
// its mode and, when running as root, its owner. If path is a symlink, the
// file it points to is replaced and the link is kept. On any failure before
// the rename the file on disk is untouched and the temporary file removed.
func Write(path string, d *Document) error {
	return writeFile(path, d.Marshal(), defaultWriteOps())
}

func writeFile(path string, data []byte, ops writeOps) error {
	target := resolve(path)
	dir := filepath.Dir(target)
	f, err := renameio.NewPendingFile(target,
		renameio.WithTempDir(dir),
		renameio.WithStaticPermissions(filePerm),
		renameio.WithExistingPermissions(),
	)
	if err != nil {
		return writeError(path, err)
	}
	defer f.Cleanup() //nolint:errcheck // best effort; no-op after a successful rename
	keepOwner(f, target)
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
func keepOwner(f *renameio.PendingFile, target string) {
	if os.Geteuid() != 0 {
		return
	}
	fi, err := os.Stat(target)
	if err != nil {
		return
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || (int(st.Uid) == os.Geteuid() && int(st.Gid) == os.Getegid()) {
		return
	}
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
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
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
