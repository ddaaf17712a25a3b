package cpp_test

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/internal/testproc"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// waitLimit is a safety net for waiting on a subprocess, not a timing
// assertion.
const waitLimit = testproc.WaitLimit

// findGxx is g++'s path. Without it the tests are skipped, saying so,
// except in CI (CI set), where .ci/run installs it and a skip would hide
// that the C++ receiver went untested.
func findGxx(tb testing.TB) string {
	tb.Helper()
	gxx, err := exec.LookPath("g++")
	if err != nil {
		const msg = "g++ not found: install it (apt-get install g++) to test the C++ receiver in contrib/cpp"
		if os.Getenv("CI") != "" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return gxx
}

// mustBuild compiles example_bot.cpp and token-refresh-sender into dir.
func mustBuild(tb testing.TB, dir string) (bot, sender string) {
	tb.Helper()
	gxx := findGxx(tb)
	bot = filepath.Join(dir, "example_bot")
	out, err := exec.Command(gxx, "-std=c++17", "-Wall", "-Wextra", "-Werror", "-pthread",
		"example_bot.cpp", "-o", bot).CombinedOutput()
	if err != nil {
		tb.Fatalf("compile example_bot.cpp: %v\n%s", err, out)
	}
	sender, err = testproc.Build(dir, "github.com/schwabtools/token-refresh-sender/cmd/token-refresh-sender", "token-refresh-sender")
	if err != nil {
		tb.Fatal(err)
	}
	return bot, sender
}

func mustWrite(tb testing.TB, path, content string) string {
	tb.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// sendRaw does what the sender does with payload (connect, write,
// half-close) and returns the answer.
func sendRaw(tb testing.TB, sock string, payload []byte) string {
	tb.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		tb.Fatalf("dial %s: %v", sock, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(waitLimit))
	if _, err := c.Write(payload); err != nil {
		tb.Fatalf("write: %v", err)
	}
	if err := c.(*net.UnixConn).CloseWrite(); err != nil {
		tb.Fatalf("CloseWrite: %v", err)
	}
	answer, err := io.ReadAll(c)
	if err != nil && len(answer) == 0 {
		tb.Fatalf("read answer: %v", err)
	}
	return string(answer)
}

// receivedLine is what example_bot prints for tok.
func receivedLine(tok tokensender.Token) string {
	return "example_bot: received token " + tokensender.Redact(tok.AccessToken) +
		" expires_at=" + strconv.FormatInt(tok.ExpiresAt.Unix(), 10)
}

// The C++ example bot against the real sender (send and run), hand-written
// bad messages, and a clean SIGTERM.
func TestExampleBot_withSender(t *testing.T) {
	bot, sender := mustBuild(t, t.TempDir())
	dir := testproc.ShortDir(t)
	sock := filepath.Join(dir, "bot.sock")
	b := testproc.Start(t, "example_bot", nil, bot, sock)
	b.WaitFor("example_bot: listening on "+sock, 1)
	if info, err := os.Lstat(sock); err != nil || info.Mode().Type() != fs.ModeSocket || info.Mode().Perm() != 0o600 {
		t.Fatalf("socket file: %v, %v; want a socket with mode 0600", info, err)
	}

	var secrets []string // no output may contain any of these
	received := 0        // "received token" lines so far

	t.Run("send", func(t *testing.T) {
		now := time.Now()
		tok := tokensender.Token{
			AccessToken:  "I0.cpp-send-access-0123456789abcdef@",
			RefreshToken: "cpp-send-refresh-0123456789abcdef@",
			IDToken:      "cpp-id-token",
			TokenType:    "Bearer",
			Scope:        "api",
			ExpiresIn:    1800,
			ExpiresAt:    now.Add(30 * time.Minute).Truncate(time.Second),
		}
		secrets = append(secrets, tok.AccessToken, tok.RefreshToken)
		tokenFile := filepath.Join(dir, "tokens.json")
		if err := tokenfile.Write(tokenFile, tokenfile.New(tok, now)); err != nil {
			t.Fatal(err)
		}
		cfg := mustWrite(t, filepath.Join(dir, "app.yaml"), "app_key: k\napp_secret: s\n")
		cmd := exec.Command(sender, "send", "--socket", sock, "--token-file", tokenFile, "--config", cfg, "--log-file", "")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("send: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "Token successfully sent to trading bot") {
			t.Errorf("send output lacks the success line:\n%s", out)
		}
		received++
		b.WaitFor("example_bot: received token", received)
		if want := receivedLine(tok); !strings.Contains(b.Text(), want) {
			t.Errorf("example_bot output lacks %q:\n%s", want, b.Text())
		}
	})

	t.Run("run", func(t *testing.T) {
		sb := testproc.StartSchwab(t, dir, "run")
		fake, login, tokenFile, cfg, cert := sb.Fake, sb.Login, sb.TokenFile, sb.Config, sb.Cert
		secrets = append(secrets, sb.Secret, login.AccessToken, login.RefreshToken)

		d := testproc.Start(t, "token-refresh-sender run", []string{"SSL_CERT_FILE=" + cert}, sender,
			"run", "--socket", sock, "--token-file", tokenFile, "--config", cfg, "--log-file", "")
		d.WaitFor("Next refresh at", 1)
		if code := stop(d, syscall.SIGINT); code != 0 {
			t.Fatalf("run exited %d after SIGINT:\n%s\nstderr: %s", code, d.Text(), d.Stderr())
		}
		if !strings.Contains(d.Text(), "Token successfully sent to trading bot") {
			t.Errorf("run output lacks the success line:\n%s", d.Text())
		}
		doc, err := tokenfile.Load(tokenFile)
		if err != nil {
			t.Fatal(err)
		}
		fresh := doc.Token()
		secrets = append(secrets, fresh.AccessToken, fresh.RefreshToken)
		if fresh.AccessToken == login.AccessToken || !fake.ValidAccessToken(fresh.AccessToken) {
			t.Fatalf("the daemon did not save a fresh access token")
		}
		received++
		b.WaitFor("example_bot: received token", received)
		if want := receivedLine(fresh); !strings.Contains(b.Text(), want) {
			t.Errorf("example_bot output lacks %q (the daemon's new token):\n%s", want, b.Text())
		}
	})

	exp := time.Now().Add(time.Hour).Unix()
	for _, tt := range []struct {
		name       string
		payload    []byte
		secret     string
		wantAnswer string // prefix
		wantLine   string
	}{
		{
			name:       "truncated",
			payload:    tokensender.Message{AccessToken: "I0.cpp-truncated-access-0123456789@", RefreshToken: "cpp-truncated-refresh@", ExpiresAt: exp}.Wire()[:40],
			secret:     "I0.cpp-truncated-access-0123456789@",
			wantAnswer: "ERROR: not valid JSON: it ends early (truncated?)",
			wantLine:   "example_bot: rejected message: not valid JSON: it ends early (truncated?)",
		},
		{
			name:       "expired",
			payload:    tokensender.Message{AccessToken: "I0.cpp-expired-access-0123456789@", RefreshToken: "cpp-expired-refresh@", ExpiresAt: time.Now().Add(-time.Minute).Unix()}.Wire(),
			secret:     "I0.cpp-expired-access-0123456789@",
			wantAnswer: "ERROR: token expired at ",
			wantLine:   "example_bot: rejected message: token expired at ",
		},
		{
			name:       "duplicate key",
			payload:    []byte(`{"access_token": "I0.cpp-dup-access-0123456789@", "access_token": "x", "refresh_token": "r", "expires_at": ` + strconv.FormatInt(exp, 10) + `}`),
			secret:     "I0.cpp-dup-access-0123456789@",
			wantAnswer: `ERROR: field "access_token" appears twice`,
			wantLine:   `example_bot: rejected message: field "access_token" appears twice`,
		},
		{
			name:       "unknown key with invalid JSON",
			payload:    []byte(`{"access_token": "I0.cpp-badnew-access-0123456789@", "refresh_token": "r", "expires_at": ` + strconv.FormatInt(exp, 10) + `, "new": [1,}`),
			secret:     "I0.cpp-badnew-access-0123456789@",
			wantAnswer: "ERROR: not valid JSON (syntax error at byte ",
			wantLine:   "example_bot: rejected message: not valid JSON (syntax error at byte ",
		},
		{
			name:       "unknown key nested too deep",
			payload:    []byte(`{"access_token": "I0.cpp-deep-access-0123456789@", "refresh_token": "r", "expires_at": ` + strconv.FormatInt(exp, 10) + `, "new": ` + strings.Repeat("[", 33) + strings.Repeat("]", 33) + `}`),
			secret:     "I0.cpp-deep-access-0123456789@",
			wantAnswer: "ERROR: not valid JSON: an unknown field nests more than",
			wantLine:   "example_bot: rejected message: not valid JSON: an unknown field nests more than 32 levels deep",
		},
		{
			name:       "oversized",
			payload:    tokensender.Message{AccessToken: "I0.cpp-big-" + strings.Repeat("A", 8192), RefreshToken: "cpp-big-refresh@", ExpiresAt: exp}.Wire(),
			secret:     "I0.cpp-big-" + strings.Repeat("A", 8192),
			wantAnswer: "ERROR: message larger than 8192 bytes",
			wantLine:   "example_bot: rejected message: message larger than 8192 bytes",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			secrets = append(secrets, tt.secret)
			before := b.Count("example_bot: rejected message:")
			answer := sendRaw(t, sock, tt.payload)
			if !strings.HasPrefix(answer, tt.wantAnswer) {
				t.Errorf("answer = %q, want it to start with %q", answer, tt.wantAnswer)
			}
			b.WaitFor("example_bot: rejected message:", before+1)
			if b.Count(tt.wantLine) == 0 {
				t.Errorf("example_bot output lacks %q:\n%s", tt.wantLine, b.Text())
			}
		})
	}

	// A newer sender may add keys: they are ignored, like the Go receiver does.
	t.Run("unknown keys", func(t *testing.T) {
		tok := tokensender.Token{AccessToken: "I0.cpp-newkeys-access-0123456789@", RefreshToken: "cpp-newkeys-refresh@",
			ExpiresAt: time.Unix(exp, 0)}
		secrets = append(secrets, tok.AccessToken, tok.RefreshToken)
		payload := fmt.Sprintf(`{"version": 2, "access_token": %q, "token_type": "Bearer", "refresh_token": %q, `+
			`"expires_at": %d, "extra": {"scopes": ["api", "x"], "ttl": -1.5e3, "ok": true, "none": null, "u": "é\u00e9"}, "deep": %s%s}`,
			tok.AccessToken, tok.RefreshToken, exp, strings.Repeat("[", 32), strings.Repeat("]", 32))
		if answer := sendRaw(t, sock, []byte(payload)); answer != "OK" {
			t.Fatalf("answer = %q, want OK", answer)
		}
		received++
		b.WaitFor("example_bot: received token", received)
		if want := receivedLine(tok); !strings.Contains(b.Text(), want) {
			t.Errorf("example_bot output lacks %q:\n%s", want, b.Text())
		}
	})

	if code := stop(b, syscall.SIGTERM); code != 0 {
		t.Errorf("example_bot exited %d after SIGTERM; stderr: %s", code, b.Stderr())
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("example_bot left its socket file behind: %v", err)
	}
	if got := b.Count("example_bot: received token"); got != received {
		t.Errorf("example_bot received %d tokens, want %d:\n%s", got, received, b.Text())
	}
	out := b.Text() + b.Stderr()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("example_bot output contains a whole secret (%s):\n%s", tokensender.Redact(s), out)
		}
	}
}

// stop sends sig to p and returns its exit code.
func stop(p *testproc.Proc, sig syscall.Signal) int {
	p.Signal(sig)
	return p.Wait()
}

// TestSanitizers builds the parser fuzzer under AddressSanitizer and
// UndefinedBehaviorSanitizer, and the receiver stress test under those and
// ThreadSanitizer, and runs them: any memory error, undefined behaviour,
// data race or wrong answer fails the test.
func TestSanitizers(t *testing.T) {
	gxx := findGxx(t)
	dir := testproc.ShortDir(t)
	for _, tt := range []struct {
		name, src, flags string
		args             []string
		want             string
	}{
		{"parser asan+ubsan", "fuzz_parser.cpp", "-fsanitize=address,undefined", []string{"300000"}, "fuzz_parser: 300000 messages"},
		{"receiver tsan", "stress_receiver.cpp", "-fsanitize=thread", []string{filepath.Join(dir, "t.sock"), "150"}, "0 failures"},
		{"receiver asan+ubsan", "stress_receiver.cpp", "-fsanitize=address,undefined", []string{filepath.Join(dir, "a.sock"), "150"}, "0 failures"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bin := filepath.Join(dir, strings.NewReplacer(" ", "_", "+", "_").Replace(tt.name))
			out, err := exec.Command(gxx, "-std=c++17", "-g", "-O1", "-Wall", "-Wextra", "-Werror", "-pthread",
				tt.flags, "-fno-sanitize-recover=all", tt.src, "-o", bin).CombinedOutput()
			if err != nil {
				t.Fatalf("compile %s with %s: %v\n%s", tt.src, tt.flags, err, out)
			}
			cmd := exec.Command(bin, tt.args...)
			cmd.Env = append(os.Environ(), "TSAN_OPTIONS=halt_on_error=1", "ASAN_OPTIONS=detect_leaks=1:halt_on_error=1")
			out, err = cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), tt.want) {
				t.Fatalf("%s: %v\n%s", tt.name, err, out)
			}
			t.Log(strings.TrimSpace(string(out)))
		})
	}
}
