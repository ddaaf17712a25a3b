package alert_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/alert"
	"github.com/schwabtools/token-refresh-sender/internal/testkit"
	"github.com/schwabtools/token-refresh-sender/logging"
)

func TestMain(m *testing.M) {
	time.Local = time.UTC // messages show local time
	os.Exit(m.Run())
}

// Secrets that must never reach a hook or a log line.
const (
	accessSecret  = "ACCESS-5ecret-I0.b2F1dGgyLmJkYy5zY2h3YWIuY29t"
	refreshSecret = "REFRESH-5ecret-xyzzy-VEhJUyBJUyBBIFNFQ1JFVA@"
	appSecret     = "APP-5ecret-pq9"
	webhookSecret = "T000/B000/XXXXwebhooksecretXXXX"
)

var (
	now    = time.Date(2025, 11, 13, 8, 44, 24, 0, time.UTC)
	issued = now.Add(-6*24*time.Hour - 12*time.Hour)
)

// failedEvent is the daemon's first failure, holding a real-looking token.
func failedEvent() tokensender.Event {
	return tokensender.Event{
		Kind: tokensender.EventRefreshFailed,
		At:   now,
		Token: tokensender.Token{
			AccessToken:          accessSecret,
			RefreshToken:         refreshSecret,
			ExpiresAt:            now.Add(20 * time.Minute),
			RefreshTokenIssuedAt: issued,
		},
		RefreshTokenIssuedAt: issued,
		Err:                  errors.New("schwab: HTTP 503 Service Unavailable"),
		Failures:             1,
		Next:                 now.Add(2 * time.Second),
	}
}

// syncBuffer is a log destination safe to read while hooks write to it.
type syncBuffer = testkit.Buffer

func newLogger(tb testing.TB) (*slog.Logger, *syncBuffer) {
	tb.Helper()
	var buf syncBuffer
	return slog.New(logging.NewTextHandler(&buf, slog.LevelDebug)), &buf
}

// mustClose waits for the notifier's hooks (at most a minute).
func mustClose(tb testing.TB, n *alert.Notifier) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		tb.Fatalf("Close: %v", err)
	}
}

func assertNoSecret(tb testing.TB, what, s string) {
	tb.Helper()
	for _, secret := range []string{accessSecret, refreshSecret, appSecret, webhookSecret, "XXXXwebhooksecret"} {
		if strings.Contains(s, secret) {
			tb.Errorf("%s contains the secret %q:\n%s", what, secret, s)
		}
	}
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func TestNotifier_Notify_exec(t *testing.T) {
	t.Setenv("SCHWAB_APP_SECRET", appSecret)
	t.Setenv("TOKEN_SENDER_NOTIFY_WEBHOOK", "https://hooks.slack.com/services/T000/B000/SECRETPATH")
	t.Setenv("TOKEN_SENDER_EVENT", "stale") // replaced, not duplicated
	out := filepath.Join(t.TempDir(), "env.txt")
	log, logs := newLogger(t)
	n := &alert.Notifier{Exec: "env > " + shellQuote(out), Logger: log}

	var p alert.Policy
	ev, ok := p.FromEvent(failedEvent())
	if !ok {
		t.Fatal("first failure not notified")
	}
	n.Notify(ev)
	mustClose(t, n)

	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("hook did not run: %v\nlog:\n%s", err, logs)
	}
	env := string(data)
	for _, want := range []string{
		"\nTOKEN_SENDER_EVENT=refresh_failed\n",
		"\nTOKEN_SENDER_MESSAGE=Token refresh failed: schwab: HTTP 503 Service Unavailable. Retrying at 2025-11-13 08:44:26; the access token is valid until 2025-11-13 09:04:24 (20 minutes from now)\n",
		"\nTOKEN_SENDER_REFRESH_TOKEN_EXPIRES_AT=2025-11-13T20:44:24Z\n",
		"\nPATH=", // allow-listed variables are passed on
	} {
		if !strings.Contains("\n"+env, want) {
			t.Errorf("hook environment lacks %q:\n%s", strings.TrimSpace(want), env)
		}
	}
	if c := strings.Count(env, "TOKEN_SENDER_EVENT="); c != 1 {
		t.Errorf("TOKEN_SENDER_EVENT appears %d times, want 1", c)
	}
	if strings.Contains(env, "SCHWAB_APP_SECRET") || strings.Contains(env, "SECRETPATH") {
		t.Error("hook environment contains the app secret or the webhook URL")
	}
	assertNoSecret(t, "hook environment", env)
	if want := "INFO: Notification hook ran (exec, refresh_failed)"; !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, logs)
	}
}

// TestNotifier_Notify_execEnvAllowList runs a real hook with secrets in the
// daemon's own environment: only the allow-listed names reach it.
func TestNotifier_Notify_execEnvAllowList(t *testing.T) {
	t.Setenv("SCHWAB_ACCOUNT_PASSWORD", "pw-"+appSecret)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "aws-"+appSecret)
	t.Setenv("SLACK_CHANNEL", "#trading")
	t.Setenv("LC_TIME", "C")
	t.Setenv("TZ", "UTC")
	t.Setenv("TOKEN_SENDER_SOCKET", "/tmp/bot.sock") // a daemon setting, not an event variable
	out := filepath.Join(t.TempDir(), "env.txt")
	n := &alert.Notifier{Exec: "env > " + shellQuote(out), Env: []string{"SLACK_CHANNEL"}}
	n.Notify(alert.Notification{Event: alert.EventRecovered, Message: "ok"})
	mustClose(t, n)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("hook did not run: %v", err)
	}
	env := string(data)
	if strings.Contains(env, appSecret) || strings.Contains(env, "SCHWAB_ACCOUNT_PASSWORD") || strings.Contains(env, "AWS_SECRET") {
		t.Errorf("a secret of the daemon's environment reached the hook:\n%s", env)
	}
	var names []string
	for line := range strings.Lines(env) {
		name, _, _ := strings.Cut(line, "=")
		if name != "PWD" { // set by sh itself
			names = append(names, name)
		}
	}
	want := []string{"LC_TIME", "SLACK_CHANNEL", "TOKEN_SENDER_EVENT", "TOKEN_SENDER_MESSAGE", "TOKEN_SENDER_REFRESH_TOKEN_EXPIRES_AT", "TZ"}
	for _, name := range []string{"PATH", "HOME", "USER", "LOGNAME", "LANG"} {
		if _, ok := os.LookupEnv(name); ok {
			want = append(want, name)
		}
	}
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("hook environment has %v, want exactly %v", names, want)
	}
}

// TestNotifier_Notify_execEnviron pins the allow-list with an injected
// environment: every allowed name, and nothing else.
func TestNotifier_Notify_execEnviron(t *testing.T) {
	out := filepath.Join(t.TempDir(), "env.txt")
	daemonEnv := []string{
		"PATH=/usr/bin:/bin", "HOME=/home/trader", "USER=trader", "LOGNAME=trader", "LANG=en_US.UTF-8",
		"LC_ALL=C", "LC_NUMERIC=C", "TZ=America/New_York", "EXTRA_ONE=1", "EXTRA_TWO=2",
		"SCHWAB_APP_SECRET=" + appSecret, "TOKEN_SENDER_NOTIFY_WEBHOOK=https://hooks.slack.com/services/" + webhookSecret,
		"TOKEN_SENDER_EVENT=stale", "TOKEN_SENDER_CONFIG=/etc/x.yaml", "PATHX=1", "XPATH=1", "LC=1", "HOMEDIR=/x",
		"MALFORMED", "=empty-name",
	}
	n := &alert.Notifier{
		Exec: "env > " + shellQuote(out),
		// Named credentials stay out even when Validate was not called.
		Env:     []string{"EXTRA_ONE", "EXTRA_TWO", "NOT_SET", "SCHWAB_APP_SECRET", "TOKEN_SENDER_NOTIFY_WEBHOOK", "TOKEN_SENDER_CONFIG"},
		Environ: func() []string { return daemonEnv },
	}
	n.Notify(alert.Notification{Event: alert.EventRecovered, Message: "back"})
	mustClose(t, n)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("hook did not run: %v", err)
	}
	var got []string
	for line := range strings.Lines(string(data)) {
		if !strings.HasPrefix(line, "PWD=") {
			got = append(got, strings.TrimSuffix(line, "\n"))
		}
	}
	want := []string{
		"EXTRA_ONE=1", "EXTRA_TWO=2", "HOME=/home/trader", "LANG=en_US.UTF-8", "LC_ALL=C", "LC_NUMERIC=C",
		"LOGNAME=trader", "PATH=/usr/bin:/bin", "TOKEN_SENDER_EVENT=recovered", "TOKEN_SENDER_MESSAGE=back",
		"TOKEN_SENDER_REFRESH_TOKEN_EXPIRES_AT=", "TZ=America/New_York", "USER=trader",
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("hook environment:\n got %q\nwant %q", got, want)
	}
}

func TestNotifier_Notify_execUnknownExpiry(t *testing.T) {
	out := filepath.Join(t.TempDir(), "env.txt")
	n := &alert.Notifier{Exec: `printf '%s|%s' "$TOKEN_SENDER_EVENT" "${TOKEN_SENDER_REFRESH_TOKEN_EXPIRES_AT-unset}" > ` + shellQuote(out)}
	n.Notify(alert.Notification{Event: alert.EventRecovered, Message: "m"})
	mustClose(t, n)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(data), "recovered|"; got != want {
		t.Errorf("got %q, want %q (expiry set but empty)", got, want)
	}
}

func TestNotifier_Notify_execFailure(t *testing.T) {
	tests := []struct {
		name    string
		cmd     string
		timeout time.Duration
		want    string
	}{
		{
			name: "exit status with output",
			cmd:  "echo 'curl: (6) Could not resolve host'; echo second line >&2; exit 3",
			want: "WARNING: Notification hook failed (exec, recovered): exit status 3: curl: (6) Could not resolve host second line\n",
		},
		{
			name: "long output is cut",
			cmd:  "i=0; while [ $i -lt 100 ]; do printf 'abcdefghij'; i=$((i+1)); done; exit 1",
			want: "WARNING: Notification hook failed (exec, recovered): exit status 1: " + strings.Repeat("abcdefghij", 20) + "...\n",
		},
		{
			name:    "killed at the timeout",
			cmd:     "sleep 60 & sleep 61; wait",
			timeout: 300 * time.Millisecond,
			want:    "WARNING: Notification hook failed (exec, recovered): timed out after 300 ms\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, logs := newLogger(t)
			n := &alert.Notifier{Exec: tt.cmd, Timeout: tt.timeout, Logger: log}
			began := time.Now()
			n.Notify(alert.Notification{Event: alert.EventRecovered, Message: "m"})
			mustClose(t, n)
			if took := time.Since(began); took > 30*time.Second {
				t.Errorf("hook ran %v: not killed", took)
			}
			if !strings.HasSuffix(logs.String(), tt.want) {
				t.Errorf("log:\n%s\nwant it to end with:\n%s", logs, tt.want)
			}
		})
	}
}

func TestNotifier_Close_cancelsHooks(t *testing.T) {
	log, logs := newLogger(t)
	n := &alert.Notifier{Exec: "sleep 60", Timeout: time.Hour, Logger: log}
	n.Notify(alert.Notification{Event: alert.EventRecovered})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close = %v, want context.Canceled", err)
	}
	if want := "Notification hook failed (exec, recovered): cancelled at shutdown"; !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, logs)
	}
	n.Notify(alert.Notification{Event: alert.EventRecovered})
	if want := "WARNING: Notification hook skipped (exec, recovered): shutting down"; !strings.Contains(logs.String(), want) {
		t.Errorf("Notify after Close: log lacks %q:\n%s", want, logs)
	}
}

func TestNotifier_Notify_neverBlocks(t *testing.T) {
	log, logs := newLogger(t)
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	n := &alert.Notifier{
		Exec:        "sleep 60",
		Webhook:     srv.URL + "/hook",
		Timeout:     time.Hour,
		MaxInFlight: 2,
		Logger:      log,
		HTTPClient:  srv.Client(),
	}
	// The first call fills both slots with hooks that hang; the next ones
	// must return at once and say what they dropped.
	for range 3 {
		n.Notify(alert.Notification{Event: alert.EventReloginRequired})
	}
	got := strings.Count(logs.String(), "WARNING: Notification hook skipped (")
	if got != 4 {
		t.Errorf("%d hooks skipped, want 4 (2 calls x exec and webhook):\n%s", got, logs)
	}
	want := "WARNING: Notification hook skipped (webhook " + srv.URL + ", relogin_required): already running the maximum of 2 hooks"
	if !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, logs)
	}
	close(release)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = n.Close(ctx) // kills the sleep
}

func TestNotifier_Notify_webhook(t *testing.T) {
	type received struct {
		method, contentType string
		body                []byte
	}
	got := make(chan received, 1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- received{r.Method, r.Header.Get("Content-Type"), body}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	log, logs := newLogger(t)
	n := &alert.Notifier{Webhook: srv.URL + "/services/" + webhookSecret, Logger: log, HTTPClient: srv.Client()}

	var p alert.Policy
	ev := failedEvent()
	ev.Kind = tokensender.EventReloginRequired
	ev.Err = errors.New("schwab: refresh token rejected (400 refresh_token_authentication_error)")
	note, ok := p.FromEvent(ev)
	if !ok {
		t.Fatal("relogin_required not notified")
	}
	n.Notify(note)
	mustClose(t, n)

	var r received
	select {
	case r = <-got:
	default:
		t.Fatalf("webhook not called; log:\n%s", logs)
	}
	if r.method != http.MethodPost || r.contentType != "application/json" {
		t.Errorf("got %s with Content-Type %q, want POST application/json", r.method, r.contentType)
	}
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, r.body)
	}
	msg := "Re-login required: Schwab no longer accepts the refresh token (schwab: refresh token rejected (400 refresh_token_authentication_error)). " +
		"Run token-refresh-sender login; the access token is valid until 2025-11-13 09:04:24 (20 minutes from now)"
	want := map[string]any{
		"event":                    "relogin_required",
		"message":                  msg,
		"text":                     msg,
		"content":                  msg,
		"refresh_token_expires_at": "2025-11-13T20:44:24Z",
	}
	if len(body) != len(want) {
		t.Errorf("body has keys %v, want exactly %v", body, want)
	}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("body[%q] = %v, want %v", k, body[k], v)
		}
	}
	assertNoSecret(t, "webhook body", string(r.body))
	assertNoSecret(t, "log", logs.String())
	if want := "INFO: Notification hook ran (webhook " + srv.URL + ", relogin_required)"; !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, logs)
	}
}

func TestNotifier_Notify_webhookNullExpiry(t *testing.T) {
	got := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- body
	}))
	defer srv.Close()
	n := &alert.Notifier{Webhook: srv.URL}
	n.Notify(alert.Notification{Event: alert.EventRecovered, Message: "back"})
	mustClose(t, n)
	want := `{"event":"recovered","message":"back","text":"back","content":"back","refresh_token_expires_at":null}`
	if b := <-got; string(b) != want {
		t.Errorf("body:\n got %s\nwant %s", b, want)
	}
}

func TestNotifier_Notify_webhookFailure(t *testing.T) {
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()

	tests := []struct {
		name    string
		handler http.HandlerFunc // nil: connect to a closed port
		timeout time.Duration
		want    string // the log line after "WARNING: Notification hook failed (webhook ORIGIN, refresh_failed): "
	}{
		{
			name: "HTTP 500 with body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "invalid_token\n", http.StatusInternalServerError)
			},
			want: "HTTP 500: invalid_token",
		},
		{
			name:    "HTTP 404 without body",
			handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) },
			want:    "HTTP 404",
		},
		{
			name: "hangs past the timeout",
			handler: func(w http.ResponseWriter, r *http.Request) {
				// Reading the body to its end lets the server notice the
				// client hanging up.
				_, _ = io.Copy(io.Discard, r.Body)
				select { // bounded, so the server's Close can never hang the test
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
			},
			timeout: 200 * time.Millisecond,
			want:    "timed out after 200 ms",
		},
		{
			name: "connection refused",
			want: "dial tcp " + l.Addr().String() + ": connect: connection refused",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := closed
			if tt.handler != nil {
				srv := httptest.NewServer(tt.handler)
				defer srv.Close()
				base = srv.URL
			}
			log, logs := newLogger(t)
			n := &alert.Notifier{Webhook: base + "/services/" + webhookSecret + "?token=" + webhookSecret, Timeout: tt.timeout, Logger: log}
			n.Notify(alert.Notification{Event: alert.EventRefreshFailed, Message: "m"})
			mustClose(t, n)
			want := "WARNING: Notification hook failed (webhook " + base + ", refresh_failed): " + tt.want + "\n"
			if !strings.HasSuffix(logs.String(), want) {
				t.Errorf("log:\n%s\nwant it to end with:\n%s", logs, want)
			}
			assertNoSecret(t, "log", logs.String())
		})
	}
}

func TestNotifier_Notify_noHooks(t *testing.T) {
	log, logs := newLogger(t)
	n := &alert.Notifier{Logger: log}
	if n.Enabled() {
		t.Error("Enabled() with no hooks")
	}
	n.Notify(alert.Notification{Event: alert.EventRecovered})
	mustClose(t, n)
	if logs.String() != "" {
		t.Errorf("no hooks, yet logged:\n%s", logs)
	}
}

func TestNotifier_Validate(t *testing.T) {
	tests := []struct {
		name    string
		n       *alert.Notifier
		wantErr string
	}{
		{name: "none", n: &alert.Notifier{}},
		{name: "slack", n: &alert.Notifier{Webhook: "https://hooks.slack.com/services/" + webhookSecret, Exec: "logger x"}},
		{name: "blank exec", n: &alert.Notifier{Exec: "  "},
			wantErr: "--notify-exec: the command is blank; give a shell command or leave the flag out"},
		{name: "no scheme", n: &alert.Notifier{Webhook: "hooks.slack.com/services/" + webhookSecret},
			wantErr: "--notify-webhook: not an http:// or https:// URL; give the full webhook URL, such as https://hooks.slack.com/services/T000/B000/XXXX"},
		{name: "ftp", n: &alert.Notifier{Webhook: "ftp://example.com/" + webhookSecret},
			wantErr: "--notify-webhook: not an http:// or https:// URL; give the full webhook URL, such as https://hooks.slack.com/services/T000/B000/XXXX"},
		{name: "extra env names", n: &alert.Notifier{Exec: "x", Env: []string{"SLACK_CHANNEL", "http_proxy"}}},
		{name: "env name with =", n: &alert.Notifier{Env: []string{"A=B"}},
			wantErr: `--notify-env "A=B": not a variable name; give one NAME per flag, such as --notify-env SLACK_CHANNEL`},
		{name: "empty env name", n: &alert.Notifier{Env: []string{""}},
			wantErr: `--notify-env "": not a variable name; give one NAME per flag, such as --notify-env SLACK_CHANNEL`},
		{name: "env name with NUL", n: &alert.Notifier{Env: []string{"A\x00"}},
			wantErr: `--notify-env "A\x00": not a variable name; give one NAME per flag, such as --notify-env SLACK_CHANNEL`},
		{name: "env name with space", n: &alert.Notifier{Env: []string{" A"}},
			wantErr: `--notify-env " A": not a variable name; give one NAME per flag, such as --notify-env SLACK_CHANNEL`},
		{name: "app secret", n: &alert.Notifier{Env: []string{"PATH", "SCHWAB_APP_SECRET"}},
			wantErr: "--notify-env SCHWAB_APP_SECRET: this variable holds a credential and is never passed to hooks; leave it out"},
		{name: "webhook variable", n: &alert.Notifier{Env: []string{"TOKEN_SENDER_NOTIFY_WEBHOOK"}},
			wantErr: "--notify-env TOKEN_SENDER_NOTIFY_WEBHOOK: this variable holds a credential and is never passed to hooks; leave it out"},
		{name: "daemon setting", n: &alert.Notifier{Env: []string{"TOKEN_SENDER_SOCKET"}},
			wantErr: "--notify-env TOKEN_SENDER_SOCKET: TOKEN_SENDER_* variables are the daemon's settings and the event's; hooks get the event variables anyway, leave it out"},
		{name: "unparsable", n: &alert.Notifier{Webhook: "https://[::1/" + webhookSecret},
			wantErr: "--notify-webhook: not an http:// or https:// URL; give the full webhook URL, such as https://hooks.slack.com/services/T000/B000/XXXX"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.n.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
