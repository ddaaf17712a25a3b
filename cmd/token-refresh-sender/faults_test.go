package main_test

import (
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

func TestRun_secondInstanceRefused(t *testing.T) {
	s := newSandbox(t)
	env := []string{"SSL_CERT_FILE=" + s.certFile}
	first := start(t, env, s.args("run", "--socket", filepath.Join(s.dir, "none.sock"))...)
	first.WaitFor("Next refresh at", 1)

	stdout, stderr, code := runToEnd(t, env, s.args("run", "--socket", filepath.Join(s.dir, "none.sock"))...)
	want := "another token-refresh-sender is already running for " + s.tokenFile + " (pid "
	if code != 1 || !strings.Contains(stdout, want) {
		t.Errorf("second run: exit %d, want 1 with %q:\n%s%s", code, want, stdout, stderr)
	}
	// refresh still works beside the daemon.
	if _, _, code := runToEnd(t, env, s.args("refresh", "--socket", filepath.Join(s.dir, "none.sock"))...); code != 0 {
		t.Errorf("refresh beside a running daemon: exit %d", code)
	}
	first.Signal(syscall.SIGTERM)
	if code := first.Wait(); code != 0 {
		t.Errorf("first daemon exit %d", code)
	}
}

// Schwab stops accepting the refresh token; the operator logs in again in
// another process; the daemon picks the new file up within seconds.
func TestRun_picksUpNewLoginWithoutRestart(t *testing.T) {
	s := newSandbox(t)
	s.fake.RevokeAll()
	b := startBot(t, filepath.Join(s.dir, "bot.sock"), "OK")
	p := start(t, []string{"SSL_CERT_FILE=" + s.certFile}, s.args("run", "--socket", b.path)...)
	p.WaitFor("run `token-refresh-sender login`", 1)

	fresh := s.fake.Login()
	if err := tokenfile.Write(s.tokenFile, tokenfile.New(fresh, time.Now())); err != nil {
		t.Fatal(err)
	}
	// WaitFor gives up after testproc.WaitLimit (30 s), well before the
	// next retry (--retry-max, 2 minutes): only the file watcher can
	// deliver in time.
	p.WaitFor("Token successfully sent to trading bot", 1)
	p.Signal(syscall.SIGINT)
	p.Wait()
	if msgs := b.received(); len(msgs) != 1 || !strings.Contains(string(msgs[0]), fresh.RefreshToken) {
		t.Errorf("bot got %d messages, want one with the new login's refresh token", len(msgs))
	}
	s.assertNoSecrets(strings.Join(p.Output(), "\n"))
}

// A hand-edit that breaks the file while the daemon runs: a clear error,
// the file left as the person wrote it, refreshes continue from memory.
func TestRun_corruptFileOnReloadIsNeverOverwritten(t *testing.T) {
	s := newSandbox(t)
	b := startBot(t, filepath.Join(s.dir, "bot.sock"), "OK")
	p := start(t, []string{"SSL_CERT_FILE=" + s.certFile}, s.args("run", "--socket", b.path)...)
	p.WaitFor("Next refresh at", 1)
	s.write("configs/schwab_tokens.json", "{\"token\": {\"refresh_token\": oops}}\n", 0o600)
	p.WaitFor("malformed JSON at line 1", 1)
	broken := snap(t, s.tokenFile)
	p.Signal(syscall.SIGUSR1)
	p.WaitFor("Next refresh at", 2)
	p.Signal(syscall.SIGINT)
	p.Wait()
	broken.assertUnchanged(t)
	if n := len(b.received()); n != 2 {
		t.Errorf("bot received %d tokens, want 2 (the second refreshed from memory)", n)
	}
}

// kill -9 at random instants during refreshes: the token file is always
// whole, parseable and 0600.
func TestRefresh_kill9LeavesAWholeFile(t *testing.T) {
	s := newSandbox(t)
	env := []string{"SSL_CERT_FILE=" + s.certFile}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 40 {
		cmd := exec.Command(binary, s.args("refresh", "--socket", filepath.Join(s.dir, "none.sock"), "--log-file", "")...)
		cmd.Env = append(os.Environ(), env...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Spread the kills over a refresh's lifetime (start-up, HTTPS, write).
		time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		doc, err := tokenfile.Load(s.tokenFile)
		if err != nil {
			t.Fatalf("kill %d: token file broken: %v", i, err)
		}
		if doc.Token().RefreshToken != s.login.RefreshToken {
			t.Fatalf("kill %d: refresh token lost", i)
		}
		if fi, _ := os.Stat(s.tokenFile); fi.Mode().Perm() != 0o600 {
			t.Fatalf("kill %d: mode %v", i, fi.Mode().Perm())
		}
	}
	// A crash can leave a temp file: the next daemon start removes it.
	leftover := filepath.Join(filepath.Dir(s.tokenFile), ".schwab_tokens.json123456789")
	s.write("configs/.schwab_tokens.json123456789", "{half", 0o600)
	p := start(t, env, s.args("run", "--socket", filepath.Join(s.dir, "none.sock"))...)
	p.WaitFor("Next refresh at", 1)
	p.Signal(syscall.SIGINT)
	p.Wait()
	if _, err := os.Stat(leftover); err == nil {
		t.Errorf("stale temp file survived a daemon start")
	}
	if out := strings.Join(p.Output(), "\n"); !strings.Contains(out, "Removed a temporary file left by an interrupted write") {
		t.Errorf("removal not logged:\n%s", out)
	}
}

// A full disk: the old file stays whole, the bot still gets the token, and
// the write succeeds on the next cycle once there is room.
func TestRun_diskFullKeepsOldFileAndStillDelivers(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to mount a tiny tmpfs")
	}
	s := newSandbox(t)
	mnt := filepath.Join(s.dir, "full")
	os.Mkdir(mnt, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=12k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s)", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	tokenFile := filepath.Join(mnt, "schwab_tokens.json")
	if err := tokenfile.Write(tokenFile, tokenfile.New(s.login, time.Now())); err != nil {
		t.Fatal(err)
	}
	// The daemon's pid and lock files need their room before the disk fills.
	os.WriteFile(tokenFile+".pid", []byte("999999\n"), 0o600)
	os.WriteFile(tokenFile+".lock", nil, 0o600)
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 4096), 0o600); err != nil { // the tmpfs is now full
		t.Fatal(err)
	}
	before := snap(t, tokenFile)

	b := startBot(t, filepath.Join(s.dir, "bot.sock"), "OK")
	args := []string{"run", "--config", s.config, "--token-file", tokenFile, "--log-file", "", "--socket", b.path}
	p := start(t, []string{"SSL_CERT_FILE=" + s.certFile}, args...)
	p.WaitFor("Next refresh at", 1)
	out := strings.Join(p.Output(), "\n")
	if !strings.Contains(out, "ERROR: Could not save the new token: token file "+tokenFile+": cannot write") || !strings.Contains(out, "no space left on device") {
		t.Errorf("no ERROR naming the path and ENOSPC:\n%s", out)
	}
	before.assertUnchanged(t)
	if n := len(b.received()); n != 1 {
		t.Errorf("bot received %d tokens, want 1 despite the full disk", n)
	}

	os.Remove(filler)
	p.Signal(syscall.SIGUSR1)
	p.WaitFor("Next refresh at", 2)
	p.Signal(syscall.SIGINT)
	p.Wait()
	if got := mustToken(t, tokenFile); got.AccessToken == s.login.AccessToken {
		t.Error("the file was not written once space came back")
	}
}

// Anyone can create /tmp/bigbrother_token.sock first: a receiver running
// as another user gets nothing, and the uid is logged.
func TestSend_withholdsTokenFromAnotherUsersSocket(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to start a receiver as another uid")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) not found")
	}
	s := newSandbox(t)
	shared := filepath.Join(s.dir, "shared")
	os.Mkdir(shared, 0o777)
	os.Chmod(shared, 0o777)
	os.Chmod(s.dir, 0o755)
	bin := filepath.Join(shared, "token-refresh-sender")
	data, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(shared, "bot.sock")
	impostor := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin, "listen", "--socket", sock)
	if err := impostor.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { impostor.Process.Kill(); impostor.Wait() })
	waitForSocket(t, sock)

	stdout, stderr, code := runToEnd(t, nil, s.args("send", "--socket", sock)...)
	want := "ERROR: Withheld token from " + sock + ": the process listening there runs as uid 65534, not as this user (uid 0) or root; if it is your bot, pass --allow-peer-uid 65534"
	if code != 1 || !strings.Contains(stdout, want) {
		t.Errorf("send: exit %d, want 1 with %q:\n%s%s", code, want, stdout, stderr)
	}
	// Allowed explicitly, the same bot gets it.
	if stdout, _, code := runToEnd(t, nil, s.args("send", "--socket", sock, "--allow-peer-uid", "65534")...); code != 0 {
		t.Errorf("send with --allow-peer-uid: exit %d:\n%s", code, stdout)
	}
}

// waitForSocket polls until another process has bound path.
func waitForSocket(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if fi, err := os.Stat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return
		}
	}
	t.Fatalf("no socket at %s", path)
}

// Permission denied on write (the directory is not writable for the user
// the daemon runs as): the old file stays whole and the bot still gets the
// token.
func TestRefresh_permissionDeniedKeepsOldFileAndStillDelivers(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run the binary as another uid")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) not found")
	}
	s := newSandbox(t)
	os.Chmod(s.dir, 0o755)
	// The binary, config and cert must be readable by nobody; the token
	// file and its lock writable by nobody, the directory not.
	bin := filepath.Join(s.dir, "token-refresh-sender")
	if err := os.WriteFile(bin, mustRead(t, binary), 0o755); err != nil {
		t.Fatal(err)
	}
	confDir := filepath.Dir(s.tokenFile)
	os.Chmod(confDir, 0o755)
	os.Chmod(s.config, 0o644)
	for _, f := range []string{s.tokenFile, s.tokenFile + ".lock"} {
		if _, err := os.Stat(f); err != nil {
			os.WriteFile(f, nil, 0o600)
		}
		if err := os.Chown(f, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	before := snap(t, s.tokenFile)
	b := startBot(t, filepath.Join(s.dir, "bot.sock"), "OK")
	os.Chmod(b.path, 0o777)

	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin, "refresh",
		"--config", s.config, "--token-file", s.tokenFile, "--log-file", "", "--socket", b.path)
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+s.certFile)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("refresh: %v, want exit 1 (token not saved):\n%s", err, out)
	}
	want := "ERROR: Could not save the new token: token file " + s.tokenFile + ": cannot write: permission denied"
	if !strings.Contains(string(out), want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	before.assertUnchanged(t)
	if n := len(b.received()); n != 1 {
		t.Errorf("bot received %d tokens, want 1 despite the failed write", n)
	}
	s.assertNoSecrets(string(out))
}
