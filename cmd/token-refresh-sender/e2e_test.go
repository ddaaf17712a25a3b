package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// The daemon against fakeschwab and three bots: one answering OK, one that
// reads and closes without answering, one absent. Two cycles (the second
// requested with SIGUSR1), then SIGINT.
func TestRun_twoCyclesThreeBotsThenSIGINT(t *testing.T) {
	s := newSandbox(t)
	// A key this program does not know must survive every rewrite.
	doc, _ := os.ReadFile(s.tokenFile)
	var raw map[string]any
	if err := json.Unmarshal(doc, &raw); err != nil {
		t.Fatal(err)
	}
	raw["added_by_another_tool"] = map[string]any{"keep": true}
	doc, _ = json.Marshal(raw)
	s.write("configs/schwab_tokens.json", string(doc), 0o600)

	okBot := startBot(t, filepath.Join(s.dir, "ok.sock"), "OK\n")
	silentBot := startBot(t, filepath.Join(s.dir, "silent.sock"), "")
	absent := filepath.Join(s.dir, "absent.sock")

	p := start(t, []string{"SSL_CERT_FILE=" + s.certFile},
		s.args("run", "--socket", okBot.path, "--socket", silentBot.path, "--socket", absent)...)
	p.WaitFor("Next refresh at", 1)
	p.Signal(syscall.SIGUSR1)
	p.WaitFor("Next refresh at", 2)
	p.Signal(syscall.SIGINT)
	if code := p.Wait(); code != 0 {
		t.Fatalf("exit code %d, want 0; stderr: %s", code, p.Stderr())
	}
	stdout := strings.Join(p.Output(), "\n") + "\n"
	golden(t, "run_two_cycles.golden", mask(stdout, s.dir))

	// The log file holds the same lines as stdout.
	logFile, err := os.ReadFile(filepath.Join(s.dir, "logs", "token_refresh_sender.log"))
	if err != nil {
		t.Fatal(err)
	}
	if string(logFile) != stdout {
		t.Errorf("log file differs from stdout:\n%s", logFile)
	}

	// The token file holds the second token, keeps the unknown key, stays 0600.
	final, err := tokenfile.Load(s.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	tok := final.Token()
	if !s.fake.ValidAccessToken(tok.AccessToken) || tok.AccessToken == s.login.AccessToken {
		t.Errorf("token file does not hold a fresh access token")
	}
	if tok.RefreshToken != s.login.RefreshToken {
		t.Errorf("refresh token changed although Schwab returned the same one")
	}
	data, _ := os.ReadFile(s.tokenFile)
	if !strings.Contains(string(data), `"added_by_another_tool"`) {
		t.Errorf("unknown key lost:\n%s", data)
	}
	if fi, _ := os.Stat(s.tokenFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	if got := s.fake.Stats().Refreshes; got != 2 {
		t.Errorf("fake Schwab saw %d refreshes, want 2", got)
	}

	// Both bots got exactly the seed's bytes, twice; the last equals the file's token.
	for _, b := range []*bot{okBot, silentBot} {
		msgs := b.received()
		if len(msgs) != 2 {
			t.Fatalf("%s received %d messages, want 2", b.path, len(msgs))
		}
		if want := tok.Message().Wire(); string(msgs[1]) != string(want) {
			t.Errorf("%s received\n%s\nwant\n%s", b.path, msgs[1], want)
		}
		if !strings.HasPrefix(string(msgs[0]), `{"access_token": "I0.`) || !strings.HasSuffix(string(msgs[0]), "}") {
			t.Errorf("%s first message has the wrong shape: %s", b.path, msgs[0])
		}
	}
	s.assertNoSecrets(stdout, p.Stderr(), string(logFile))
}

func TestRun_SIGTERMLogsSignal15(t *testing.T) {
	s := newSandbox(t)
	p := start(t, []string{"SSL_CERT_FILE=" + s.certFile}, s.args("run", "--socket", filepath.Join(s.dir, "none.sock"))...)
	p.WaitFor("Next refresh at", 1)
	// The pid file names the daemon while it runs (for `kill $(cat ...)`),
	// and a clean stop removes it.
	pidFile := s.tokenFile + ".pid"
	if pid, err := os.ReadFile(pidFile); err != nil || strings.TrimSpace(string(pid)) != strconv.Itoa(p.Pid()) {
		t.Errorf("pid file %s = %q (%v), want %d", pidFile, pid, err, p.Pid())
	}
	// Wait fails after testproc.WaitLimit, far less than the 25 minutes a
	// shutdown that waited for the next cycle would take.
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left after a clean stop (%v)", err)
	}
	out := strings.Join(p.Output(), "\n")
	for _, want := range []string{"WARNING: Bot socket not found - trading bot may not be running", "INFO: Received shutdown signal (15)", "INFO: Token Refresh Sender Stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRefresh_printsSummaryAndDelivers(t *testing.T) {
	s := newSandbox(t)
	b := startBot(t, filepath.Join(s.dir, "bot.sock"), "OK")
	stdout, stderr, code := runToEnd(t, []string{"SSL_CERT_FILE=" + s.certFile}, s.args("refresh", "--socket", b.path)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"Refreshing OAuth token...", "Token refreshed successfully (expires in 30 minutes)", "Token successfully sent to trading bot", "✅ Token refresh successful!", "   Access token: I0.", "   Expires at: "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	tok := mustToken(t, s.tokenFile)
	if msgs := b.received(); len(msgs) != 1 || string(msgs[0]) != string(tok.Message().Wire()) {
		t.Errorf("bot received %q, want the saved token", msgs)
	}
	s.assertNoSecrets(stdout, stderr)
}

func TestSend_deliversTheSavedTokenWithoutRefreshing(t *testing.T) {
	s := newSandbox(t)
	b := startBot(t, filepath.Join(s.dir, "bot.sock"), "OK")
	before := snap(t, s.tokenFile)
	stdout, stderr, code := runToEnd(t, nil, s.args("send", "--socket", b.path)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if msgs := b.received(); len(msgs) != 1 || string(msgs[0]) != string(s.login.Message().Wire()) {
		t.Errorf("bot received %q, want %q", msgs, s.login.Message().Wire())
	}
	before.assertUnchanged(t)
	if s.fake.Stats().TokenRequests != 0 {
		t.Error("send talked to Schwab")
	}

	stdout, _, code = runToEnd(t, nil, s.args("send", "--socket", filepath.Join(s.dir, "absent.sock"))...)
	if code != 1 || !strings.Contains(stdout, "WARNING: Bot socket not found - trading bot may not be running") {
		t.Errorf("send to an absent bot: exit %d, want 1 with the not-found warning:\n%s", code, stdout)
	}
	s.assertNoSecrets(stdout, stderr)
}

func TestListen_receivesFromSend(t *testing.T) {
	s := newSandbox(t)
	sock := filepath.Join(s.dir, "listen.sock")
	l := start(t, nil, "listen", "--socket", sock)
	l.WaitFor("Listening for tokens on "+sock, 1)
	if _, _, code := runToEnd(t, nil, s.args("send", "--socket", sock)...); code != 0 {
		t.Fatalf("send exit %d", code)
	}
	l.WaitFor("Received token "+tokensender.Redact(s.login.AccessToken), 1)
	l.Signal(syscall.SIGINT)
	if code := l.Wait(); code != 0 {
		t.Errorf("listen exit %d", code)
	}
	s.assertNoSecrets(strings.Join(l.Output(), "\n"), l.Stderr())
}

func TestDemo_oneCycle(t *testing.T) {
	stdout, stderr, code := runToEnd(t, nil, "demo", "--cycles", "1")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"Token Refresh Sender Started", "Token refreshed successfully (expires in 10 seconds)", "[bot] Received token I0.", "Token successfully sent to trading bot", "Next refresh at", "Token Refresh Sender Stopped"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout)
		}
	}
}

func mustToken(t *testing.T, path string) tokensender.Token {
	t.Helper()
	doc, err := tokenfile.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return doc.Token()
}
