package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/fakeschwab"
	"github.com/schwabtools/token-refresh-sender/internal/testkit"
	"github.com/schwabtools/token-refresh-sender/internal/testproc"
	"github.com/schwabtools/token-refresh-sender/logging"
	"github.com/schwabtools/token-refresh-sender/receiver"
	"github.com/schwabtools/token-refresh-sender/schwab"
	"github.com/schwabtools/token-refresh-sender/systemd"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

const (
	testAppKey    = "wire-app-key-0123456789"
	testAppSecret = "wire-app-secret-do-not-log"
)

// wireSandbox is a directory with an app config and a token file, and a
// fake Schwab over real HTTPS.
type wireSandbox struct {
	dir, config, tokenFile string
	fake                   *fakeschwab.Server
	srv                    *fakeschwab.TLSServer
	login                  tokensender.Token
}

func newWireSandbox(t *testing.T) *wireSandbox {
	t.Helper()
	s := &wireSandbox{dir: testproc.ShortDir(t)}
	s.fake = fakeschwab.New(fakeschwab.Config{AppKey: testAppKey, AppSecret: testAppSecret, CallbackURL: "https://127.0.0.1:8182"})
	srv, err := fakeschwab.StartTLS(s.fake)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	s.srv = srv
	s.config = filepath.Join(s.dir, "app.yaml")
	cfg := fmt.Sprintf("app_key: %s\napp_secret: %s\ncallback_url: https://127.0.0.1:8182\ntoken_url: %s\n", testAppKey, testAppSecret, srv.TokenURL)
	if err := os.WriteFile(s.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.tokenFile = filepath.Join(s.dir, "tokens.json")
	s.login = s.fake.Login()
	if err := tokenfile.Write(s.tokenFile, tokenfile.New(s.login, time.Now())); err != nil {
		t.Fatal(err)
	}
	return s
}

// mustParse parses args like main does and returns the CLI, so tests get
// the real defaults.
func mustParse(t *testing.T, args ...string) *CLI {
	t.Helper()
	var cli CLI
	parser, err := newParser(&cli, &process{out: io.Discard, err: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parser.Parse(args); err != nil {
		t.Fatal(err)
	}
	return &cli
}

// testMain is a Main for s whose signals are a channel the test drives and
// whose events are copied to events.
func (s *wireSandbox) testMain(t *testing.T, out io.Writer, events chan<- tokensender.Event, args ...string) (*Main, chan struct{}) {
	t.Helper()
	t.Setenv("NOTIFY_SOCKET", "")
	cli := mustParse(t, append([]string{"run", "--config", s.config, "--token-file", s.tokenFile, "--log-file", ""}, args...)...)
	m := NewMain(cli.Globals, nil)
	m.Stdout = out
	m.HTTPClient = schwab.NewHTTPClient(s.srv.RootCAs)
	refresh := make(chan struct{}, 1)
	m.Signals = func(ctx context.Context, _ *slog.Logger, _ func() error) (context.Context, <-chan struct{}, func()) {
		return ctx, refresh, func() {}
	}
	m.Systemd = systemd.New
	m.Ready = func(m *Main) error {
		observe := m.Daemon.OnEvent
		m.Daemon.OnEvent = func(ev tokensender.Event) {
			observe(ev)
			events <- ev
		}
		return nil
	}
	return m, refresh
}

// waitEvent returns the next event of kind, failing on any
// refresh_failed or after testproc.WaitLimit.
func waitEvent(t *testing.T, events <-chan tokensender.Event, kind tokensender.EventKind) tokensender.Event {
	t.Helper()
	timeout := time.After(testproc.WaitLimit)
	for {
		select {
		case ev := <-events:
			if ev.Kind == kind {
				return ev
			}
			if ev.Kind == tokensender.EventRefreshFailed || ev.Kind == tokensender.EventReloginRequired {
				t.Fatalf("unexpected event %v: %v", ev.Kind, ev.Err)
			}
		case <-timeout:
			t.Fatalf("no %v event", kind)
		}
	}
}

// startReceiver runs a Go receiver (the bot) on path; tokens arrive on the
// returned channel.
func startReceiver(t *testing.T, path string) <-chan receiver.Token {
	t.Helper()
	got := make(chan receiver.Token, 8)
	r := &receiver.Receiver{Addr: path, OnToken: func(tok receiver.Token) { got <- tok }}
	if err := r.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return got
}

// The wired daemon, in-process, against fakeschwab, a real bot socket and
// metrics on a real port: two cycles (the second requested like SIGUSR1),
// then a shutdown through ctx. While it runs the pid file names this
// process and /metrics answers; Close removes the pid file and stops the
// metrics server before it returns.
func TestMain_runsTwoCyclesInProcess(t *testing.T) {
	s := newWireSandbox(t)
	bot := startReceiver(t, filepath.Join(s.dir, "bot.sock"))
	var out testkit.Buffer
	events := make(chan tokensender.Event, 64)
	m, refresh := s.testMain(t, &out, events, "--socket", filepath.Join(s.dir, "bot.sock"), "--metrics-addr", "127.0.0.1:0")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()

	first := waitEvent(t, events, tokensender.EventRefreshed)
	tok1 := <-bot
	if tok1.AccessToken != first.Token.AccessToken || !s.fake.ValidAccessToken(tok1.AccessToken) {
		t.Errorf("bot got %s, want the refreshed %s", tokensender.Redact(tok1.AccessToken), tokensender.Redact(first.Token.AccessToken))
	}
	pid, err := os.ReadFile(m.PIDFile)
	if err != nil || strings.TrimSpace(string(pid)) != fmt.Sprint(os.Getpid()) {
		t.Errorf("pid file %s = %q (%v), want this process's pid", m.PIDFile, pid, err)
	}
	if m.PIDFile != s.tokenFile+".pid" {
		t.Errorf("PIDFile = %s, want next to the token file", m.PIDFile)
	}
	metricsURL := "http://" + m.MetricsAddr.String() + "/metrics"
	if body := httpGet(t, metricsURL); !strings.Contains(body, `token_sender_refresh_total{result="success"} 1`) {
		t.Errorf("/metrics after one refresh:\n%s", body)
	}

	refresh <- struct{}{}
	second := waitEvent(t, events, tokensender.EventRefreshed)
	if tok2 := <-bot; tok2.AccessToken != second.Token.AccessToken || tok2.AccessToken == tok1.AccessToken {
		t.Errorf("second delivery: bot got %s, want the new %s", tokensender.Redact(tok2.AccessToken), tokensender.Redact(second.Token.AccessToken))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil on shutdown", err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}

	if _, err := os.Stat(m.PIDFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file still there after a clean stop (%v)", err)
	}
	if c, err := net.Dial("tcp", m.MetricsAddr.String()); err == nil {
		c.Close()
		t.Errorf("metrics server still accepting after Close")
	}
	saved, err := tokenfile.Load(s.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if saved.Token().AccessToken != second.Token.AccessToken {
		t.Errorf("token file does not hold the second token")
	}
	if got := s.fake.Stats().Refreshes; got != 2 {
		t.Errorf("fake Schwab saw %d refreshes, want 2", got)
	}
	log := out.String()
	for _, want := range []string{"INFO: Token Refresh Sender Started", "INFO: Token file: " + s.tokenFile, "--- Refresh Cycle 2 ---", "INFO: Token successfully sent to trading bot", "INFO: Token Refresh Sender Stopped"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	for _, secret := range []string{testAppSecret, s.login.RefreshToken, second.Token.AccessToken} {
		if strings.Contains(log, secret) {
			t.Errorf("log holds a secret (%s)", tokensender.Redact(secret))
		}
	}
}

// Every way Run can fail before the loop starts leaves nothing behind:
// Close undoes what was built (no pid file of ours, the metrics port free).
func TestMain_failedStartUndoesEverything(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, s *wireSandbox) []string
		adjust func(m *Main)
		want   string
		usage  bool
	}{
		{name: "bad interval", want: "--interval 10ms is too short", usage: true,
			setup: func(*testing.T, *wireSandbox) []string { return []string{"--interval", "10ms"} }},
		{name: "remote socket", want: `--socket "tcp://10.0.0.1:1": only loopback addresses`, usage: true,
			setup: func(*testing.T, *wireSandbox) []string { return []string{"--socket", "tcp://10.0.0.1:1"} }},
		{name: "bad webhook", want: "webhook", usage: true,
			adjust: func(m *Main) { m.Hooks.Webhook = "ftp://example.com/hook" }},
		{name: "metrics port taken", want: "--metrics-addr", usage: false,
			adjust: func(m *Main) {
				m.Listen = func(string, string) (net.Listener, error) { return nil, errors.New("address already in use") }
			}},
		{name: "missing app config", want: "App config file not found",
			setup: func(_ *testing.T, s *wireSandbox) []string {
				return []string{"--config", filepath.Join(s.dir, "none.yaml")}
			}},
		{name: "missing token file", want: "Token file not found",
			setup: func(_ *testing.T, s *wireSandbox) []string {
				return []string{"--token-file", filepath.Join(s.dir, "none.json")}
			}},
		{name: "daemon already running", want: "another token-refresh-sender is already running",
			setup: func(t *testing.T, s *wireSandbox) []string {
				release, err := tokenfile.ClaimDaemon(s.tokenFile)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { release() })
				return nil
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newWireSandbox(t)
			var extra []string
			if tt.setup != nil {
				extra = tt.setup(t, s)
			}
			pidBefore, _ := os.ReadFile(s.tokenFile + ".pid")
			var out testkit.Buffer
			m, _ := s.testMain(t, &out, make(chan tokensender.Event, 64), append([]string{"--metrics-addr", "127.0.0.1:0", "--socket", filepath.Join(s.dir, "bot.sock")}, extra...)...)
			if tt.adjust != nil {
				tt.adjust(m)
			}
			err := m.Run(context.Background())
			var ue usageError
			var ec exitCode
			switch {
			case tt.usage && !errors.As(err, &ue):
				t.Errorf("Run = %v, want a usage error", err)
			case !tt.usage && !errors.As(err, &ue) && (!errors.As(err, &ec) || ec != 1) && !strings.Contains(fmt.Sprint(err), tt.want):
				t.Errorf("Run = %v, want exit 1 (logged) or an error naming %s", err, tt.want)
			}
			if text := out.String() + fmt.Sprint(err); !strings.Contains(text, tt.want) {
				t.Errorf("output and error lack %q:\n%s", tt.want, text)
			}
			if err := m.Close(); err != nil {
				t.Errorf("Close = %v", err)
			}
			if m.Daemon != nil {
				t.Errorf("the loop was built despite the failure")
			}
			pidAfter, _ := os.ReadFile(s.tokenFile + ".pid")
			if string(pidAfter) != string(pidBefore) {
				t.Errorf("pid file changed from %q to %q", pidBefore, pidAfter)
			}
			if m.MetricsAddr != nil {
				if c, err := net.Dial("tcp", m.MetricsAddr.String()); err == nil {
					c.Close()
					t.Errorf("metrics server left running")
				}
			}
		})
	}
}

// failingListener accepts nothing: Accept fails at once for good, as a
// listener whose socket broke would.
type failingListener struct{ net.Listener }

func (failingListener) Accept() (net.Conn, error) { return nil, errors.New("accept: socket broke") }

// A metrics server that fails while the daemon runs is logged when it
// happens, the daemon keeps running, and Close returns the error.
func TestMain_metricsServerErrorIsNotDropped(t *testing.T) {
	s := newWireSandbox(t)
	var out testkit.Buffer
	events := make(chan tokensender.Event, 64)
	m, _ := s.testMain(t, &out, events, "--socket", filepath.Join(s.dir, "bot.sock"), "--metrics-addr", "127.0.0.1:0")
	m.Listen = func(network, addr string) (net.Listener, error) {
		ln, err := net.Listen(network, addr)
		return failingListener{ln}, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	waitEvent(t, events, tokensender.EventRefreshed)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil: a metrics failure must not stop the refreshes", err)
	}
	err := m.Close()
	if err == nil || !strings.Contains(err.Error(), "accept: socket broke") {
		t.Errorf("Close = %v, want the metrics server's error", err)
	}
	if !strings.Contains(out.String(), "ERROR: metrics server on") {
		t.Errorf("the failure was not logged:\n%s", out.String())
	}
}

// runMain turns a failure to close into exit 1, logged.
func TestRunMain_closeErrorExits1(t *testing.T) {
	s := newWireSandbox(t)
	var out testkit.Buffer
	m, _ := s.testMain(t, &out, make(chan tokensender.Event, 64), "--socket", filepath.Join(s.dir, "bot.sock"), "--metrics-addr", "127.0.0.1:0")
	m.Listen = func(network, addr string) (net.Listener, error) {
		ln, err := net.Listen(network, addr)
		return failingListener{ln}, err
	}
	m.MaxCycles = 1
	err := runMain(context.Background(), m)
	var ec exitCode
	if !errors.As(err, &ec) || ec != 1 {
		t.Errorf("runMain = %v, want exit 1", err)
	}
	if !strings.Contains(out.String(), "accept: socket broke") {
		t.Errorf("close error not logged:\n%s", out.String())
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// A refresh token Schwab no longer accepts reaches the loop as "log in
// again" (classify), not as a transient failure.
func TestMain_reloginRequiredInProcess(t *testing.T) {
	s := newWireSandbox(t)
	s.fake.RevokeAll()
	var out testkit.Buffer
	events := make(chan tokensender.Event, 64)
	m, _ := s.testMain(t, &out, events, "--socket", filepath.Join(s.dir, "bot.sock"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	waitEvent(t, events, tokensender.EventReloginRequired)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "run `token-refresh-sender login` to sign in again") {
		t.Errorf("no login advice:\n%s", out.String())
	}
}

// SIGUSR1 asks for a refresh, SIGHUP reopens the log, SIGTERM cancels the
// context with the seed's shutdown lines; stop restores the defaults.
func TestHandleSignals(t *testing.T) {
	var out testkit.Buffer
	log := slog.New(logging.NewTextHandler(&out, nil))
	reopened := make(chan struct{}, 1)
	ctx, refreshNow, stop := handleSignals(context.Background(), log, func() error {
		reopened <- struct{}{}
		return nil
	})
	defer stop()
	self := os.Getpid()
	timeout := time.After(testproc.WaitLimit)

	syscall.Kill(self, syscall.SIGUSR1)
	select {
	case <-refreshNow:
	case <-timeout:
		t.Fatal("SIGUSR1 did not ask for a refresh")
	}
	syscall.Kill(self, syscall.SIGHUP)
	select {
	case <-reopened:
	case <-timeout:
		t.Fatal("SIGHUP did not reopen the log")
	}
	if ctx.Err() != nil {
		t.Fatal("stopped before SIGTERM")
	}
	syscall.Kill(self, syscall.SIGTERM)
	select {
	case <-ctx.Done():
	case <-timeout:
		t.Fatal("SIGTERM did not cancel")
	}
	for _, want := range []string{"INFO: Log file reopened (SIGHUP)", "INFO: Received shutdown signal (15)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, out.String())
		}
	}
}

// recordingListener notes when the metrics server closes its listener.
type recordingListener struct {
	net.Listener
	closed func()
}

func (l recordingListener) Close() error {
	l.closed()
	return l.Listener.Close()
}

// Close tears down in reverse start-up order: the pid file and the
// metrics server go before signal handling, which goes before the log.
func TestMain_closeTearsDownInReverseOrder(t *testing.T) {
	s := newWireSandbox(t)
	var order []string
	var out testkit.Buffer
	m, _ := s.testMain(t, &out, make(chan tokensender.Event, 64), "--socket", filepath.Join(s.dir, "bot.sock"), "--metrics-addr", "127.0.0.1:0")
	m.Listen = func(network, addr string) (net.Listener, error) {
		ln, err := net.Listen(network, addr)
		return recordingListener{ln, func() { order = append(order, "metrics") }}, err
	}
	signals := m.Signals
	m.Signals = func(ctx context.Context, log *slog.Logger, reopen func() error) (context.Context, <-chan struct{}, func()) {
		ctx, refresh, stop := signals(ctx, log, reopen)
		return ctx, refresh, func() {
			if _, err := os.Stat(m.PIDFile); !errors.Is(err, os.ErrNotExist) {
				order = append(order, "pid file still there")
			}
			order = append(order, "signals")
			stop()
		}
	}
	m.MaxCycles = 1
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, ", "); got != "metrics, signals" {
		t.Errorf("teardown order: %s, want metrics, signals", got)
	}
}
