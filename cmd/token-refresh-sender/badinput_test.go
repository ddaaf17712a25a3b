package main_test

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Every bad input gets one clear line naming the file or flag, a non-zero
// exit, and leaves the files on disk as they were.
func TestBadInput(t *testing.T) {
	tests := []struct {
		name  string
		cmd   string
		setup func(s *sandbox) []string // extra args
		want  string
		code  int
		// schwab marks answers from Schwab: `run` keeps running through
		// them (see TestRun_reloginNeededKeepsRunning), so only `refresh`
		// is checked here.
		schwab bool
	}{
		{
			name:  "app config missing",
			setup: func(s *sandbox) []string { return []string{"--config", filepath.Join(s.dir, "nope.yaml")} },
			want:  "ERROR: App config file not found: $DIR/nope.yaml", code: 1,
		},
		{
			name: "app config malformed",
			setup: func(s *sandbox) []string {
				s.write("configs/schwab_app_config.yaml", "app_key: [unclosed\n", 0o600)
				return nil
			},
			want: "ERROR: app config $DIR/configs/schwab_app_config.yaml: malformed YAML", code: 1,
		},
		{
			name: "app config without app_secret",
			setup: func(s *sandbox) []string {
				s.write("configs/schwab_app_config.yaml", "app_key: k\ncallback_url: https://127.0.0.1:8182\n", 0o600)
				return nil
			},
			want: "ERROR: app config $DIR/configs/schwab_app_config.yaml: app_secret is missing or empty; set it to", code: 1,
		},
		{
			name: "app config with a wrong type",
			setup: func(s *sandbox) []string {
				s.write("configs/schwab_app_config.yaml", "app_key:\n  - a\n  - b\napp_secret: s\n", 0o600)
				return nil
			},
			want: "ERROR: app config $DIR/configs/schwab_app_config.yaml: line 2: app_key must be a string, got a list", code: 1,
		},
		{
			name: "token_url not https",
			setup: func(s *sandbox) []string {
				s.write("configs/schwab_app_config.yaml", "app_key: k\napp_secret: s\ntoken_url: http://127.0.0.1/x\n", 0o600)
				return nil
			},
			want: "token_url must be an https:// URL", code: 1,
		},
		{
			name:  "token file missing",
			setup: func(s *sandbox) []string { return []string{"--token-file", filepath.Join(s.dir, "none.json")} },
			want:  "ERROR: Token file not found: $DIR/none.json", code: 1,
		},
		{
			name: "token file malformed",
			setup: func(s *sandbox) []string {
				s.write("configs/schwab_tokens.json", "{\n  \"token\": {\"refresh_token\": \"abc\",,}\n}\n", 0o600)
				return nil
			},
			want: "ERROR: token file $DIR/configs/schwab_tokens.json: malformed JSON at line 2", code: 1,
		},
		{
			name: "token file without a refresh token",
			setup: func(s *sandbox) []string {
				s.write("configs/schwab_tokens.json", `{"creation_timestamp": 1, "token": {"access_token": "x"}}`, 0o600)
				return nil
			},
			want: "ERROR: token file $DIR/configs/schwab_tokens.json: token.refresh_token is missing or empty; run token-refresh-sender login", code: 1,
		},
		{
			name: "bad app credentials (401)",
			setup: func(s *sandbox) []string {
				s.write("configs/schwab_app_config.yaml", "app_key: "+appKey+"\napp_secret: wrong-secret-value\ntoken_url: "+s.srv.TokenURL+"\n", 0o600)
				return nil
			},
			want: "ERROR: Token refresh failed: HTTP 401: invalid_client: Unauthorized", code: 1, schwab: true,
		},
		{
			name: "refresh token superseded by a newer login",
			setup: func(s *sandbox) []string {
				s.fake.Login()
				return nil
			},
			want: "ERROR: Token refresh failed: HTTP 400: refresh_token_authentication_error: Failed refresh token authentication", code: 1, schwab: true,
		},
		{
			name: "refresh token expired after 7 days",
			setup: func(s *sandbox) []string {
				s.clock.advance(7*24*time.Hour + time.Minute)
				return nil
			},
			want: "ERROR: Token refresh failed: HTTP 400: invalid_client: refresh token invalid", code: 1, schwab: true,
		},
		{
			name:  "remote TCP socket refused",
			setup: func(s *sandbox) []string { return []string{"--socket", "tcp://10.0.0.5:9999"} },
			want:  `--socket "tcp://10.0.0.5:9999": only loopback addresses are allowed`, code: 2,
		},
		{
			name:  "interval too short",
			setup: func(s *sandbox) []string { return []string{"--interval", "0s"} },
			want:  "--interval 0s is too short", code: 2,
		},
		{
			name:  "interval not a duration",
			setup: func(s *sandbox) []string { return []string{"--interval", "soon"} },
			want:  "--interval", code: 2,
		},
	}
	for _, tt := range tests {
		for _, cmd := range []string{"refresh", "run"} {
			if tt.schwab && cmd == "run" {
				continue
			}
			t.Run(tt.name+"/"+cmd, func(t *testing.T) {
				s := newSandbox(t)
				extra := tt.setup(s)
				files := []snapshot{snap(t, s.config), snap(t, s.tokenFile)}
				args := s.args(cmd, append([]string{"--socket", filepath.Join(s.dir, "bot.sock")}, extra...)...)
				stdout, stderr, code := runToEnd(t, []string{"SSL_CERT_FILE=" + s.certFile}, args...)
				out := mask(stdout+stderr, s.dir)
				if code != tt.code {
					t.Errorf("exit code %d, want %d:\n%s", code, tt.code, out)
				}
				if !strings.Contains(out, tt.want) {
					t.Errorf("output lacks %q:\n%s", tt.want, out)
				}
				if strings.Contains(out, "Token Refresh Sender Started") {
					t.Errorf("the daemon started despite bad input:\n%s", out)
				}
				for _, f := range files {
					f.assertUnchanged(t)
				}
				s.assertNoSecrets(stdout, stderr)
			})
		}
	}
}

// A refresh token Schwab no longer accepts: the daemon says to log in, keeps
// running, and delivers nothing.
func TestRun_reloginNeededKeepsRunning(t *testing.T) {
	s := newSandbox(t)
	s.fake.Login() // supersedes the refresh token in the file
	before := snap(t, s.tokenFile)
	b := startBot(t, filepath.Join(s.dir, "bot.sock"), "OK")
	p := start(t, []string{"SSL_CERT_FILE=" + s.certFile}, s.args("run", "--socket", b.path)...)
	p.WaitFor("next attempt at", 1)
	p.Signal(syscall.SIGINT)
	if code := p.Wait(); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	out := strings.Join(p.Output(), "\n")
	for _, want := range []string{
		"ERROR: Token refresh failed: HTTP 400: refresh_token_authentication_error: Failed refresh token authentication",
		"ERROR: The refresh token is no longer accepted: run `token-refresh-sender login` to sign in again",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := len(b.received()); n != 0 {
		t.Errorf("bot received %d stale tokens", n)
	}
	before.assertUnchanged(t)
	s.assertNoSecrets(out, p.Stderr())
}
