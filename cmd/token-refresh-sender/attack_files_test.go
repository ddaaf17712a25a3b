package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/schwabtools/token-refresh-sender/internal/testproc"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// Issue 10's file attacks are acted out by uid 65534 (testproc.Nobody) in
// a directory both users may write, like /tmp. As root the tests always
// run (CI); elsewhere they are skipped.

// sharedSandbox is a sandbox whose token file lives in a directory of mode
// dirMode (os.ModeSticky|0o777, like /tmp; or 0777, not sticky) that uid 65534 can
// reach and write.
func sharedSandbox(t *testing.T, dirMode os.FileMode) (*sandbox, string) {
	t.Helper()
	s := newSandbox(t)
	shared := testproc.SharedDir(t, s.dir, dirMode)
	s.tokenFile = filepath.Join(shared, "schwab_tokens.json")
	if err := tokenfile.Write(s.tokenFile, tokenfile.New(s.login, time.Now())); err != nil {
		t.Fatal(err)
	}
	return s, shared
}

// plantSymlink makes uid 65534 create the symlink link -> target.
func plantSymlink(t *testing.T, target, link string) {
	t.Helper()
	testproc.AsNobody(t, "ln", "-s", target, link)
	var st syscall.Stat_t
	if err := syscall.Lstat(link, &st); err != nil || st.Uid != testproc.Nobody {
		t.Fatalf("planted link %s: %v, owner %d", link, err, st.Uid)
	}
}

// linesWith are the lines of out containing substr.
func linesWith(out, substr string) []string {
	var got []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, substr) {
			got = append(got, l)
		}
	}
	return got
}

// assertAbsent fails if anything exists at path.
func assertAbsent(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); err == nil {
		t.Errorf("%s was created", path)
	}
}

// Item 3: another user plants <token file>.pid or <token file>.lock as a
// symlink to a file of ours (or to where they want a file created). `run`
// refuses with one ERROR line naming the path and exits 1 at once;
// `refresh` refuses the lock the same way before spending the refresh
// token, and does not touch the pid file at all; `login` refuses the lock
// before the browser flow. The victim file keeps its
// bytes and mode; nothing appears at a dangling link's target.
func TestAttack_plantedPidAndLockSymlinks(t *testing.T) {
	for _, dirMode := range []os.FileMode{os.ModeSticky | 0o777, 0o777} {
		for _, kind := range []string{"pid", "lock"} {
			t.Run(kind+"/"+dirMode.String(), func(t *testing.T) {
				s, _ := sharedSandbox(t, dirMode)
				env := []string{"SSL_CERT_FILE=" + s.certFile}
				noBot := filepath.Join(s.dir, "none.sock")
				victim := s.write("victim.conf", "precious: do not overwrite\n", 0o600)
				nowhere := filepath.Join(s.dir, "created-by-attacker")
				link := s.tokenFile + "." + kind
				want := "ERROR: token file " + s.tokenFile + ": refusing " + link + ": it is a symbolic link, not a private file of this user; remove it"
				token := snap(t, s.tokenFile)

				for _, target := range []string{victim, nowhere} {
					os.Remove(link)
					plantSymlink(t, target, link)
					before := snap(t, victim)

					p := start(t, env, s.args("run", "--socket", noBot)...)
					code := p.Wait()
					out := p.Text()
					if code != 1 || len(linesWith(out, "refusing")) != 1 || len(linesWith(out, want)) != 1 {
						t.Errorf("run with %s -> %s: exit %d, want 1 with one line %q:\n%s\nstderr: %s", link, target, code, want, out, p.Stderr())
					}
					if strings.Contains(out, "Next refresh at") {
						t.Errorf("run went on refreshing:\n%s", out)
					}

					stdout, stderr, code := runToEnd(t, env, s.args("refresh", "--socket", noBot)...)
					if kind == "lock" {
						wantRefresh := strings.Replace(want, "ERROR: ", "ERROR: Token refresh failed: ", 1)
						if code != 1 || len(linesWith(stdout, wantRefresh)) != 1 {
							t.Errorf("refresh with %s -> %s: exit %d, want 1 with %q:\n%s%s", link, target, code, wantRefresh, stdout, stderr)
						}
						// login refuses before the browser flow: no login is spent.
						lout, lerr, lcode := runToEnd(t, env, s.args("login", "--no-browser", "--timeout", "5s")...)
						wantLogin := strings.Replace(want, "ERROR: ", "ERROR: Login refused: ", 1)
						if lcode != 1 || len(linesWith(lout, wantLogin)) != 1 || strings.Contains(lout, "Open this URL") {
							t.Errorf("login with %s -> %s: exit %d, want 1 at once with %q:\n%s%s", link, target, lcode, wantLogin, lout, lerr)
						}
						s.assertNoSecrets(lout, lerr)
					} else if code != 0 {
						// refresh never uses the pid file: it works beside the link.
						t.Errorf("refresh with a planted pid link: exit %d:\n%s%s", code, stdout, stderr)
					}
					s.assertNoSecrets(out, p.Stderr(), stdout, stderr)
					before.assertUnchanged(t)
					assertAbsent(t, nowhere)
					if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
						t.Errorf("the planted link was replaced: %v", err)
					}
				}
				if kind == "lock" {
					token.assertUnchanged(t)
					if n := s.fake.Stats().TokenRequests; n != 0 {
						t.Errorf("%d token requests with a planted lock file, want 0 (refused before refreshing)", n)
					}
				}
			})
		}
	}
}

// Item 4: the token path, in a shared directory, is another user's
// symlink to a 0666 file of theirs (holding their own valid login, so a
// refresh could go all the way to the write). `login` refuses before the
// browser flow, `refresh` before asking Schwab; both exit 1 with one line
// naming the link, the target and the uid; the attacker's file keeps its
// bytes and mode, and no lock or pid file appears in their directory.
func TestAttack_symlinkedTokenPathToAttackersFile(t *testing.T) {
	for _, dirMode := range []os.FileMode{os.ModeSticky | 0o777, 0o777} {
		t.Run(dirMode.String(), func(t *testing.T) {
			s, shared := sharedSandbox(t, dirMode)
			env := []string{"SSL_CERT_FILE=" + s.certFile}
			// The attacker's own login, in a file they own, 0666.
			staged := filepath.Join(shared, "staged.json")
			if err := tokenfile.Write(staged, tokenfile.New(s.fake.Login(), time.Now())); err != nil {
				t.Fatal(err)
			}
			os.Chmod(staged, 0o644)
			evil := filepath.Join(shared, "evil.json")
			testproc.AsNobody(t, "sh", "-c", `umask 0 && cp "$1" "$2" && chmod 666 "$2"`, "sh", staged, evil)
			os.Remove(staged)
			os.Remove(s.tokenFile)
			plantSymlink(t, evil, s.tokenFile)
			theirs := snap(t, evil)
			if theirs.mode.Perm() != 0o666 {
				t.Fatalf("attacker's file is %v", theirs.mode)
			}
			want := "token file " + s.tokenFile + ": refusing to write through the symbolic link to " + evil + ": " + evil + " belongs to uid 65534"

			stdout, stderr, code := runToEnd(t, env, s.args("login", "--no-browser", "--timeout", "5s")...)
			if code != 1 || len(linesWith(stdout, "ERROR: Login refused: "+want)) != 1 {
				t.Errorf("login: exit %d, want 1 with %q:\n%s%s", code, want, stdout, stderr)
			}
			if strings.Contains(stdout, "Open this URL") {
				t.Errorf("login started the browser flow:\n%s", stdout)
			}

			stdout2, stderr2, code := runToEnd(t, env, s.args("refresh", "--socket", filepath.Join(s.dir, "none.sock"))...)
			if code != 1 || len(linesWith(stdout2, "ERROR: Token refresh failed: "+want)) != 1 {
				t.Errorf("refresh: exit %d, want 1 with %q:\n%s%s", code, want, stdout2, stderr2)
			}
			if n := s.fake.Stats().TokenRequests; n != 0 {
				t.Errorf("%d token requests, want 0: refused before asking Schwab", n)
			}
			theirs.assertUnchanged(t)
			assertAbsent(t, evil+".lock")
			assertAbsent(t, evil+".pid")
			s.assertNoSecrets(stdout, stderr, stdout2, stderr2)
		})
	}
}
