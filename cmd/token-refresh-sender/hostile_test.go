package main_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/schwabtools/token-refresh-sender/fakeschwab"
)

// Item 6: Schwab (here the fake) answers 200 with a token response no real
// Schwab sends: a 1 MB access_token, non-ASCII or invalid UTF-8 in it,
// expires_in 0, 90000 (over 24 h) or 1.5. `refresh` exits 1 with one
// transient-failure line (no login advice), the token file keeps every
// byte, the bot listening gets nothing; afterwards `status` and `run` work
// from the same file.
func TestRefresh_hostileTokenResponseIsNotKept(t *testing.T) {
	s := newSandbox(t)
	env := []string{"SSL_CERT_FILE=" + s.certFile}
	b := startBot(t, filepath.Join(s.dir, "bot.sock"), "OK")
	before := snap(t, s.tokenFile)
	answer := func(access, expiresIn string) string {
		return fmt.Sprintf(`{"expires_in": %s, "token_type": "Bearer", "scope": "api", "refresh_token": %q, "access_token": "%s", "id_token": "eyJ0"}`,
			expiresIn, s.login.RefreshToken, access)
	}
	const fine = "I0.b2F1dGgyLmNkYy5zY2h3YWIuY29t.fresh-access-token@"
	tests := []struct {
		name, body, why string
	}{
		{"1 MB access_token", answer(strings.Repeat("A", 1_000_000), "1800"), "access_token is 1000000 bytes, longer than the 4096 allowed"},
		{"non-ASCII access_token", answer(fine+"é", "1800"), "access_token has a character that is not printable ASCII at byte 51"},
		{"invalid UTF-8 access_token", answer(fine+"\xff\xfe", "1800"), "access_token has a character that is not printable ASCII at byte 51"},
		{"expires_in 0", answer(fine, "0"), "expires_in must be a whole number of seconds from 1 to 86400, got 0"},
		{"expires_in 90000", answer(fine, "90000"), "expires_in must be a whole number of seconds from 1 to 86400, got 90000"},
		{"expires_in 1.5", answer(fine, "1.5"), "invalid token response: expires_in is not a whole number of seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requests := s.fake.Stats().TokenRequests
			s.fake.Inject(fakeschwab.FaultStatus(http.StatusOK, "application/json", tt.body, nil))
			stdout, stderr, code := runToEnd(t, env, s.args("refresh", "--socket", b.path)...)
			if got := s.fake.Stats().TokenRequests - requests; got != 1 {
				t.Fatalf("%d token requests, want the one answered with the hostile body", got)
			}
			failed := linesWith(stdout, "ERROR: Token refresh failed: ")
			if code != 1 || len(failed) != 1 || !strings.Contains(failed[0], tt.why) {
				t.Errorf("exit %d, want 1 with one ERROR line saying %q:\n%s%s", code, tt.why, stdout, stderr)
			}
			if strings.Contains(stdout, "token-refresh-sender login") {
				t.Errorf("a hostile answer is transient, not a reason to log in again:\n%s", stdout)
			}
			if len(stdout)+len(stderr) > 8<<10 {
				t.Errorf("%d bytes of output: the hostile token reached it", len(stdout)+len(stderr))
			}
			before.assertUnchanged(t)
			if n := len(b.received()); n != 0 {
				t.Errorf("the bot received %d messages, want 0", n)
			}
			s.assertNoSecrets(stdout, stderr)
		})
	}

	stdout, stderr, code := runToEnd(t, nil, s.args("status", "--socket", b.path)...)
	if code != 0 {
		t.Errorf("status after the hostile answers: exit %d, want 0:\n%s%s", code, stdout, stderr)
	}
	p := start(t, env, s.args("run", "--socket", b.path)...)
	p.WaitFor("Next refresh at", 1)
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(); code != 0 || p.Count("Token successfully sent to trading bot") != 1 || len(b.received()) != 1 {
		t.Errorf("run after the hostile answers: exit %d, bot got %d:\n%s", code, len(b.received()), p.Text())
	}
	s.assertNoSecrets(stdout, stderr, p.Text(), p.Stderr())
}
