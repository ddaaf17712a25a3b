package testproc

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// nobodyPrefix is the command line that runs a program as uid and gid
// Nobody, with no supplementary groups.
func nobodyPrefix() []string {
	id := strconv.Itoa(Nobody)
	return []string{"setpriv", "--reuid=" + id, "--regid=" + id, "--clear-groups"}
}

// needNobody makes sure the test can act as uid Nobody: it needs root and
// setpriv. Without root the test is skipped; as root a missing setpriv
// fails it, since attack tests must run wherever they can (CI is root).
func needNobody(tb testing.TB) {
	tb.Helper()
	if os.Getuid() != 0 {
		tb.Skip("needs root to act as another uid")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		tb.Fatal("setpriv (util-linux) not found: attack tests need it to act as uid 65534")
	}
}

// AsNobody runs name with args as uid and gid Nobody (the attacker) to the
// end and returns its combined output, failing the test if it fails.
func AsNobody(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	needNobody(tb)
	argv := append(nobodyPrefix(), name)
	out, err := exec.Command(argv[0], append(argv[1:], args...)...).CombinedOutput()
	if err != nil {
		tb.Fatalf("as uid %d: %s %v: %v\n%s", Nobody, name, args, err, out)
	}
	return string(out)
}

// SharedDir makes a directory with the given mode (such as
// os.ModeSticky|0o777, a
// sticky world-writable temporary directory, or 0777) inside parent, and
// lets every user traverse parent and its parents up to the system's
// temporary directory, so that uid Nobody can reach it.
func SharedDir(tb testing.TB, parent string, mode os.FileMode) string {
	tb.Helper()
	dir := filepath.Join(parent, "shared")
	if err := os.Mkdir(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		tb.Fatal(err)
	}
	for p := parent; p != "/" && p != "." && p != os.TempDir(); p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.Chmod(p, fi.Mode().Perm()|0o111); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

// flockScript creates argv[1] if needed with mode argv[2] (octal), takes
// an exclusive flock on it, prints "LOCKED" and holds it until killed.
const flockScript = `
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, int(sys.argv[2], 8))
os.fchmod(fd, int(sys.argv[2], 8))
fcntl.flock(fd, fcntl.LOCK_EX)
print("LOCKED", flush=True)
time.sleep(3600)
`

// HoldFlockAsNobody starts a process of uid Nobody that creates path (mode
// mode, owned by Nobody) if it does not exist, holds an exclusive flock on
// it, and keeps it until the test ends. It returns once the lock is held.
func HoldFlockAsNobody(tb testing.TB, path string, mode os.FileMode) *Proc {
	tb.Helper()
	needNobody(tb)
	py := nobodyPython(tb)
	argv := append(nobodyPrefix(), py, "-c", flockScript, path, strconv.FormatUint(uint64(mode.Perm()), 8))
	p := Start(tb, "flock holder", nil, argv[0], argv[1:]...)
	p.WaitFor("LOCKED", 1)
	return p
}
