package main_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/schwabtools/token-refresh-sender/internal/testproc"
	"golang.org/x/sys/unix"
)

// Item 5: uid 65534 creates <token file>.lock (0644, theirs) in the shared
// directory and holds an flock on it. `run` says at once that the lock
// file is not ours and exits 1 instead of waiting; `refresh` refuses the
// same way without asking Schwab; `send` takes no lock and delivers.
func TestAttack_anotherUserHoldsTheLock(t *testing.T) {
	for _, dirMode := range []os.FileMode{os.ModeSticky | 0o777, 0o777} {
		t.Run(dirMode.String(), func(t *testing.T) {
			s, _ := sharedSandbox(t, dirMode)
			env := []string{"SSL_CERT_FILE=" + s.certFile}
			lock := s.tokenFile + ".lock"
			testproc.HoldFlockAsNobody(t, lock, 0o644)
			theirs := snap(t, lock)
			token := snap(t, s.tokenFile)
			b := startBot(t, filepath.Join(s.dir, "bot.sock"), "OK")
			want := "token file " + s.tokenFile + ": refusing " + lock + ": it belongs to uid 65534, not a private file of this user"

			p := start(t, env, s.args("run", "--socket", b.path)...)
			code := p.Wait()
			if out := p.Text(); code != 1 || len(linesWith(out, "ERROR: "+want)) != 1 || strings.Contains(out, "Refresh Cycle") {
				t.Errorf("run: exit %d, want 1 at once with %q:\n%s\nstderr: %s", code, want, out, p.Stderr())
			}
			if _, err := os.Lstat(s.tokenFile + ".pid"); err == nil {
				t.Error("run left its pid file behind")
			}

			stdout, stderr, code := runToEnd(t, env, s.args("refresh", "--socket", b.path)...)
			if code != 1 || len(linesWith(stdout, "ERROR: Token refresh failed: "+want)) != 1 {
				t.Errorf("refresh: exit %d, want 1 with %q:\n%s%s", code, want, stdout, stderr)
			}
			if n := s.fake.Stats().TokenRequests; n != 0 {
				t.Errorf("%d token requests, want 0", n)
			}
			if n := len(b.received()); n != 0 {
				t.Errorf("the bot got %d messages before send", n)
			}

			stdout, stderr, code = runToEnd(t, env, s.args("send", "--socket", b.path)...)
			if code != 0 || len(b.received()) != 1 {
				t.Errorf("send beside the attacker's lock: exit %d, bot got %d:\n%s%s", code, len(b.received()), stdout, stderr)
			}
			theirs.assertUnchanged(t)
			token.assertUnchanged(t)
			s.assertNoSecrets(p.Text(), p.Stderr(), stdout, stderr)
		})
	}
}

// Item 5, our own side: another process of this user (here the test
// itself) holds the 0600 lock. `refresh`, and `run` at start-up, say at
// once that they wait, for how long and for which pid, and carry on as
// soon as the lock is free. (There is no --lock-wait flag: the bound,
// tokenfile.DefaultLockWait, is 30 s, so the give-up itself is pinned in
// package tokenfile, by TestLocker_boundedWaitNamesHolder and
// TestInstance_OpenWarnsWhenLockWaitRunsOut, not here.)
func TestLock_ourOwnHolderIsNamedWhileWaitedFor(t *testing.T) {
	for _, cmd := range []string{"refresh", "run"} {
		t.Run(cmd, func(t *testing.T) {
			s := newSandbox(t)
			lock := s.tokenFile + ".lock"
			f, err := os.OpenFile(lock, os.O_RDWR|os.O_CREATE, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
				t.Fatal(err)
			}
			b := startBot(t, filepath.Join(s.dir, "bot.sock"), "OK")
			p := start(t, []string{"SSL_CERT_FILE=" + s.certFile}, s.args(cmd, "--socket", b.path)...)
			want := "INFO: Token file " + s.tokenFile + ": waiting up to 30s for lock " + lock + ", held by pid " + strconv.Itoa(os.Getpid())
			p.WaitFor(want, 1)
			if n := s.fake.Stats().TokenRequests; n != 0 {
				t.Errorf("refreshed while another process held the lock (%d requests)", n)
			}
			if err := unix.Flock(int(f.Fd()), unix.LOCK_UN); err != nil {
				t.Fatal(err)
			}
			if cmd == "run" {
				p.WaitFor("Next refresh at", 1)
				p.Signal(syscall.SIGTERM)
			}
			if code := p.Wait(); code != 0 || len(b.received()) != 1 {
				t.Errorf("%s after the lock was freed: exit %d, bot got %d:\n%s", cmd, code, len(b.received()), p.Text())
			}
			var st syscall.Stat_t
			if err := syscall.Stat(lock, &st); err != nil || st.Mode&0o777 != 0o600 {
				t.Errorf("lock file mode %o (%v), want 0600", st.Mode&0o777, err)
			}
		})
	}
}
