package main_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// `token` on a file the binary itself refreshed against fake Schwab: every
// format carries the access token Schwab accepts and nothing else; the
// header works as an HTTP request header; exit codes 1 and 2; the flags'
// environment variables; and no token request, no lock file, no log file.
func TestToken_afterRefresh(t *testing.T) {
	s := newSandbox(t)
	noBot := filepath.Join(s.dir, "none.sock")
	if out, errOut, code := runToEnd(t, []string{"SSL_CERT_FILE=" + s.certFile}, s.args("refresh", "--socket", noBot)...); code != 0 {
		t.Fatalf("refresh: exit %d\n%s%s", code, out, errOut)
	}
	doc, err := tokenfile.Load(s.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	tok := doc.Token()
	if !s.fake.ValidAccessToken(tok.AccessToken) || tok.AccessToken == s.login.AccessToken {
		t.Fatal("refresh did not leave a new access token in the file")
	}
	requests := s.fake.Stats().TokenRequests
	if err := os.RemoveAll(filepath.Join(s.dir, "logs")); err != nil {
		t.Fatal(err)
	}
	lock := s.tokenFile + ".lock"
	if err := os.Remove(lock); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}

	// token needs only the token file (and its own flags): no app config,
	// no socket, no log file.
	tokenArgs := func(extra ...string) []string {
		return append([]string{"token", "--token-file", s.tokenFile}, extra...)
	}

	t.Run("formats", func(t *testing.T) {
		for _, tt := range []struct {
			args []string
			env  []string
			want string
		}{
			{args: tokenArgs(), want: tok.AccessToken + "\n"},
			{args: tokenArgs("--format", "raw"), want: tok.AccessToken + "\n"},
			{args: tokenArgs("--format", "header"), want: "Authorization: Bearer " + tok.AccessToken + "\n"},
			{args: tokenArgs("--format", "json"), want: `{"access_token":"` + tok.AccessToken + `","expires_at":` +
				itoa(tok.ExpiresAt.Unix()) + `,"token_type":"Bearer"}` + "\n"},
			{args: []string{"token"}, env: []string{"TOKEN_SENDER_TOKEN_FILE=" + s.tokenFile, "TOKEN_SENDER_TOKEN_FORMAT=header"},
				want: "Authorization: Bearer " + tok.AccessToken + "\n"},
		} {
			stdout, stderr, code := runToEnd(t, tt.env, tt.args...)
			if code != 0 || stdout != tt.want || stderr != "" {
				t.Errorf("%v %v: exit %d, stdout %q, stderr %q; want exit 0, stdout %q", tt.env, tt.args, code, stdout, stderr, tt.want)
			}
			if strings.Contains(stdout+stderr, tok.RefreshToken) || strings.Contains(stdout+stderr, tok.IDToken) {
				t.Errorf("%v: output contains the refresh or id token", tt.args)
			}
		}
	})

	t.Run("header in an HTTP request", func(t *testing.T) {
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || !s.fake.ValidAccessToken(bearer) {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			w.Write([]byte(`[{"accountNumber":"1234"}]`))
		}))
		defer api.Close()
		header, _, code := runToEnd(t, nil, tokenArgs("--format", "header")...)
		name, value, ok := strings.Cut(strings.TrimSuffix(header, "\n"), ": ")
		if code != 0 || !ok {
			t.Fatalf("exit %d, output %q", code, header)
		}
		req, _ := http.NewRequest(http.MethodGet, api.URL+"/trader/v1/accounts/accountNumbers", nil)
		req.Header.Set(name, value)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("API answered %s to the header", resp.Status)
		}
	})

	t.Run("exit codes", func(t *testing.T) {
		left := time.Until(tok.ExpiresAt)
		tooLong := (left + time.Hour).Round(time.Second).String()
		for _, tt := range []struct {
			name   string
			args   []string
			env    []string
			code   int
			stderr string
		}{
			{"min-valid longer than the token lives", tokenArgs("--min-valid", tooLong), nil, 1, "less than --min-valid"},
			{"the same through the environment", tokenArgs(), []string{"TOKEN_SENDER_TOKEN_MIN_VALID=" + tooLong}, 1, "less than --min-valid"},
			{"no file", []string{"token", "--token-file", filepath.Join(s.dir, "none.json")}, nil, 2, "run token-refresh-sender login to create it"},
			{"bad format", tokenArgs("--format", "yaml"), nil, 2, `--format must be one of`},
			{"bad duration", tokenArgs("--min-valid", "soon"), nil, 2, "--min-valid"},
		} {
			stdout, stderr, code := runToEnd(t, tt.env, tt.args...)
			if code != tt.code || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d, no stdout, one line with %q", tt.name, code, stdout, stderr, tt.code, tt.stderr)
			}
			s.assertNoSecrets(stdout, stderr)
		}
	})

	if got := s.fake.Stats().TokenRequests; got != requests {
		t.Errorf("token made %d token requests to Schwab, want none", got-requests)
	}
	for _, path := range []string{lock, filepath.Join(s.dir, "logs")} {
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("token created %s (%v); it must only read the token file", path, err)
		}
	}
}

// A file another program rewrote without refresh_token_issued_at: status
// warns (exit 1) that the 7-day expiry cannot be tracked, in text and JSON.
func TestStatus_unknownLoginTimeIsWarning(t *testing.T) {
	s := newSandbox(t)
	data, err := os.ReadFile(s.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	delete(raw, "refresh_token_issued_at") // what schwab-py's in-place write does
	data, _ = json.Marshal(raw)
	s.write("configs/schwab_tokens.json", string(data), 0o600)

	noBot := filepath.Join(s.dir, "none.sock")
	stdout, _, code := runToEnd(t, nil, s.args("status", "--socket", noBot)...)
	first, _, _ := strings.Cut(stdout, "\n")
	if code != 1 || !strings.HasPrefix(first, "WARNING: Refresh token age unknown") ||
		!strings.Contains(first, "cannot be tracked; run token-refresh-sender login, or let the running daemon see the next login") {
		t.Errorf("status: exit %d, first line %q; want exit 1 and the WARNING", code, first)
	}
	stdout, _, code = runToEnd(t, nil, s.args("status", "--json", "--socket", noBot)...)
	var report struct {
		State    string  `json:"state"`
		ExitCode int     `json:"exit_code"`
		Message  string  `json:"message"`
		Issued   *string `json:"refresh_token_issued_at"`
	}
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("status --json: %v\n%s", err, stdout)
	}
	if code != 1 || report.State != "warning" || report.ExitCode != 1 || report.Issued != nil || !strings.Contains(report.Message, "cannot be tracked") {
		t.Errorf("status --json: exit %d, %+v", code, report)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
