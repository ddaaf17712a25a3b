package tokenfile

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// attacker is the uid the attack tests act as.
const attacker = "65534"

// asAttacker runs a shell command in dir as uid/gid 65534.
func asAttacker(tb testing.TB, dir, script string) *exec.Cmd {
	tb.Helper()
	cmd := exec.Command("setpriv", "--reuid="+attacker, "--regid="+attacker, "--clear-groups", "sh", "-c", script)
	cmd.Dir = dir
	return cmd
}

func sum(tb testing.TB, p string) [32]byte {
	tb.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	return sha256.Sum256(b)
}

// attackDir is a shared directory like /tmp (mode 1777) that uid 65534
// can reach.
func attackDir(tb testing.TB) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("acting as a second uid needs root (CI runs as root); TestLocker_* and TestWrite_* pin the same guards without it")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		tb.Fatalf("setpriv is needed for the attack tests: %v", err)
	}
	dir, err := os.MkdirTemp("", "trs-attack")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o1777); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// TestAttack_plantedSymlinks: another user plants symlinks at the pid file,
// the lock file and the token file. Nothing is written through any of them.
func TestAttack_plantedSymlinks(t *testing.T) {
	dir := attackDir(t)
	path := filepath.Join(dir, "tokens.json")
	mustWriteFile(t, path, validDoc, 0o600)
	victim := filepath.Join(dir, "victim.txt")
	mustWriteFile(t, victim, "the victim's own data\n", 0o600)
	out, err := asAttacker(t, dir, `printf 'attacker file\n' > theirs.json && chmod 666 theirs.json &&
		ln -s victim.txt tokens.json.pid && ln -s planted tokens.json.lock && ln -s theirs.json linked.json`).CombinedOutput()
	if err != nil {
		t.Fatalf("attacker setup: %v\n%s", err, out)
	}
	victimSum, theirSum := sum(t, victim), sum(t, filepath.Join(dir, "theirs.json"))

	release, err := ClaimDaemon(path)
	if !errors.Is(err, ErrLock) || !strings.Contains(err.Error(), "refusing "+path+".pid: it is a symbolic link") {
		t.Errorf("ClaimDaemon through a planted .pid symlink: %v", err)
	}
	if err == nil {
		release()
	}
	unlock, err := Lock(context.Background(), path)
	if !errors.Is(err, ErrLock) || !strings.Contains(err.Error(), "refusing "+path+".lock: it is a symbolic link") {
		t.Errorf("Lock through a planted .lock symlink: %v", err)
	}
	if err == nil {
		unlock()
	}
	if _, err := (&Store{Path: path}).Update(context.Background(), nil); !errors.Is(err, ErrLock) {
		t.Errorf("Update with a planted .lock symlink: %v", err)
	}
	linked := filepath.Join(dir, "linked.json")
	if err := Write(linked, testDoc(t)); err == nil || !strings.Contains(err.Error(), "belongs to uid "+attacker) {
		t.Errorf("Write through a symlink to the attacker's file: %v", err)
	}
	if err := (&Store{Path: linked}).SaveLogin(context.Background(), testDoc(t).Token()); err == nil {
		t.Errorf("SaveLogin wrote through a symlink to the attacker's file")
	}
	if sum(t, victim) != victimSum {
		t.Errorf("the victim's file was overwritten")
	}
	if sum(t, filepath.Join(dir, "theirs.json")) != theirSum {
		t.Errorf("tokens were written to the attacker's file")
	}
	if _, err := os.Lstat(filepath.Join(dir, "planted")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file was created where the attacker's .lock link points")
	}
	if got := string(mustReadFile(t, path)); got != validDoc {
		t.Errorf("token file changed")
	}
}

// TestAttack_lockStall: another user cannot make us wait on the lock: a
// lock file of theirs is refused at once, and a lock they took on an old
// readable lock file of ours ends in a bounded wait that names their pid.
func TestAttack_lockStall(t *testing.T) {
	t.Run("their lock file", func(t *testing.T) {
		dir := attackDir(t)
		path := filepath.Join(dir, "tokens.json")
		holder := startHolder(t, dir, "flock -x tokens.json.lock sleep 300", path+".lock")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // safety net only
		defer cancel()
		_, err := (&Store{Path: path, LockWait: time.Hour}).Update(ctx, nil)
		if err == nil || !strings.Contains(err.Error(), "refusing "+path+".lock: it belongs to uid "+attacker) {
			t.Fatalf("err = %v (holder pid %d)", err, holder)
		}
	})
	t.Run("our old 0644 lock file", func(t *testing.T) {
		dir := attackDir(t)
		path := filepath.Join(dir, "tokens.json")
		mustWriteFile(t, path+".lock", "", 0o644)
		holder := startHolder(t, dir, "flock -s tokens.json.lock sleep 300", path+".lock")
		_, err := (&Store{Path: path, LockWait: 300 * time.Millisecond}).Update(context.Background(), nil)
		want := "token file " + path + ": gave up after 300ms waiting for lock " + path + ".lock, held by pid " + strconv.Itoa(holder) + ";"
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("err = %v\nwant %s...", err, want)
		}
		if fi, _ := os.Stat(path + ".lock"); fi.Mode().Perm() != 0o600 {
			t.Errorf("lock file left at %04o", fi.Mode().Perm())
		}
	})
}

// startHolder starts script as the attacker, waits until it holds a flock
// on name (as /proc/locks shows) and returns its pid.
func startHolder(tb testing.TB, dir, script, name string) int {
	tb.Helper()
	cmd := asAttacker(tb, dir, "exec "+script)
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for range 1000 { // up to 10 s; a safety net against a hang, not a timing assertion
		var st unix.Stat_t
		if unix.Stat(name, &st) == nil && slices.Contains(procLockHolders(uint64(st.Dev), st.Ino), cmd.Process.Pid) {
			return cmd.Process.Pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	tb.Fatalf("attacker never took the lock on %s", name)
	return 0
}
