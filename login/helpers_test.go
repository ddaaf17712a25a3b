package login

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/config"
	"github.com/schwabtools/token-refresh-sender/fakeschwab"
	"github.com/schwabtools/token-refresh-sender/internal/testkit"
	"github.com/schwabtools/token-refresh-sender/schwab"
)

const (
	testAppKey    = "test-app-key-1234567890"
	testAppSecret = "test-app-secret-0987654321"
)

// clock is a fake clock shared by fakeschwab, the schwab client and Run.
type clock = testkit.Clock

func newClock() *clock {
	return testkit.NewClock(time.Date(2025, 11, 13, 8, 44, 24, 0, time.UTC))
}

// syncBuffer is log output written by several goroutines.
type syncBuffer = testkit.Buffer

// freePort returns a TCP port for the login callback server.
func freePort(tb testing.TB) int { return testkit.FreePort(tb) }

// env is one login test setup: a fake Schwab over HTTPS, an app config
// whose callback is a free local port, and a token file path.
type env struct {
	clock     *clock
	fake      *fakeschwab.Server
	ts        *fakeschwab.TLSServer
	app       *config.App
	client    *schwab.Client
	tokenFile string
	logs      *syncBuffer
	out       *syncBuffer
}

type envOption func(cfg *fakeschwab.Config, app *config.App, c *schwab.Client)

// newEnv starts a fake Schwab and returns matching login options' parts.
func newEnv(tb testing.TB, opts ...envOption) *env {
	tb.Helper()
	e := &env{clock: newClock(), logs: &syncBuffer{}, out: &syncBuffer{}}
	cb := "https://127.0.0.1:" + strconv.Itoa(freePort(tb))
	cfg := fakeschwab.Config{AppKey: testAppKey, AppSecret: testAppSecret, CallbackURL: cb, Now: e.clock.Now}
	e.app = &config.App{
		Path:        "configs/schwab_app_config.yaml",
		AppName:     "TestApp",
		AppKey:      testAppKey,
		AppSecret:   testAppSecret,
		CallbackURL: cb,
	}
	e.client = &schwab.Client{AppKey: testAppKey, AppSecret: testAppSecret, Now: e.clock.Now}
	for _, o := range opts {
		o(&cfg, e.app, e.client)
	}
	e.fake = fakeschwab.New(cfg)
	ts, err := fakeschwab.StartTLS(e.fake)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(ts.Close)
	e.ts = ts
	e.app.TokenURL = ts.TokenURL
	e.app.AuthorizeURL = ts.AuthorizeURL
	e.client.TokenURL = ts.TokenURL
	e.client.HTTPClient = schwab.NewHTTPClient(ts.RootCAs)
	tb.Cleanup(e.client.HTTPClient.CloseIdleConnections)
	e.tokenFile = filepath.Join(tb.TempDir(), "schwab_tokens.json")
	return e
}

// options returns Run options for e; the browser is never opened.
func (e *env) options() Options {
	return Options{
		App:       e.app,
		TokenFile: e.tokenFile,
		Client:    e.client,
		Logger:    slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Out:       e.out,
		In:        strings.NewReader(""),
		Browser:   BrowserNever,
		OpenURL: func(string) error {
			panic("OpenURL called with BrowserNever")
		},
		Timeout: time.Minute,
		Now:     e.clock.Now,
	}
}

// running is a Run in progress.
type running struct {
	authURL chan string
	done    chan outcome
}

// start runs Run in the background; the authorize URL arrives on authURL
// once the login is ready for the browser.
func start(tb testing.TB, ctx context.Context, opts Options) *running {
	tb.Helper()
	r := &running{authURL: make(chan string, 1), done: make(chan outcome, 1)}
	opts.Ready = func(u string) { r.authURL <- u }
	go func() {
		res, err := Run(ctx, opts)
		r.done <- outcome{res, err}
	}()
	return r
}

// ready waits for the authorize URL (or for Run to end early).
func (r *running) ready(tb testing.TB) string {
	tb.Helper()
	select {
	case u := <-r.authURL:
		return u
	case o := <-r.done:
		tb.Fatalf("Run ended before it was ready: %v", o.err)
	case <-time.After(30 * time.Second):
		tb.Fatal("Run did not become ready within 30s")
	}
	return ""
}

// wait returns Run's outcome.
func (r *running) wait(tb testing.TB) (*Result, error) {
	tb.Helper()
	select {
	case o := <-r.done:
		return o.res, o.err
	case <-time.After(60 * time.Second):
		tb.Fatal("Run did not return within 60s")
	}
	return nil, nil
}

// browser is an HTTP client acting as the user's browser: it trusts the
// fake Schwab's certificate, accepts the callback's self-signed one, and
// does not follow redirects.
func (e *env) browser(tb testing.TB) *http.Client {
	tb.Helper()
	schwabTr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.ts.RootCAs}}
	// Only the callback's certificate is self-signed and made per login.
	callbackTr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // test browser
	tb.Cleanup(schwabTr.CloseIdleConnections)
	tb.Cleanup(callbackTr.CloseIdleConnections)
	schwabHost := strings.TrimPrefix(e.ts.URL, "https://")
	return &http.Client{
		Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.URL.Host == schwabHost {
				return schwabTr.RoundTrip(r)
			}
			return callbackTr.RoundTrip(r)
		}),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       60 * time.Second,
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// consent plays the user on Schwab's pages: it opens authURL, submits the
// consent form with decision ("allow" or "deny") and returns the address
// Schwab redirects to. override replaces form fields (state, redirect_uri).
func (e *env) consent(tb testing.TB, hc *http.Client, authURL, decision string, override map[string]string) string {
	tb.Helper()
	au, err := url.Parse(authURL)
	if err != nil {
		tb.Fatal(err)
	}
	q := au.Query()
	for k, v := range override {
		q.Set(k, v)
	}
	au.RawQuery = q.Encode()
	resp, err := hc.Get(au.String())
	if err != nil {
		tb.Fatalf("GET authorize page: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `id="allow"`) {
		tb.Fatalf("authorize page: HTTP %d: %s", resp.StatusCode, body)
	}
	form := url.Values{
		"client_id":    {q.Get("client_id")},
		"redirect_uri": {q.Get("redirect_uri")},
		"state":        {q.Get("state")},
		"decision":     {decision},
	}
	resp, err = hc.PostForm(e.ts.AuthorizeURL, form)
	if err != nil {
		tb.Fatalf("POST consent: %v", err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || loc == "" {
		tb.Fatalf("consent: want a redirect, got HTTP %d, Location %q", resp.StatusCode, loc)
	}
	return loc
}

// get fetches u with the browser and returns status and body.
func get(tb testing.TB, hc *http.Client, u string) (int, string) {
	tb.Helper()
	resp, err := hc.Get(u)
	if err != nil {
		tb.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// codeOf returns the code in a redirect address.
func codeOf(tb testing.TB, loc string) string {
	tb.Helper()
	u, err := url.Parse(loc)
	if err != nil {
		tb.Fatal(err)
	}
	return u.Query().Get("code")
}

// writeOldFile puts a previous login's token file in place and returns its bytes.
func writeOldFile(tb testing.TB, path string) []byte {
	tb.Helper()
	old := []byte(`{
    "creation_timestamp": 1762000000,
    "refresh_token_issued_at": 1762000000,
    "token": {
        "expires_in": 1800,
        "token_type": "Bearer",
        "scope": "api",
        "refresh_token": "old-refresh-token",
        "access_token": "old-access-token",
        "id_token": "old-id",
        "expires_at": 1762001800
    },
    "other_tool": {"keep": true}
}
`)
	if err := os.WriteFile(path, old, 0o600); err != nil {
		tb.Fatal(err)
	}
	return old
}

// assertUnchanged fails unless path still holds want.
func assertUnchanged(tb testing.TB, path string, want []byte) {
	tb.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("token file: %v", err)
	}
	if !bytes.Equal(got, want) {
		tb.Errorf("token file changed on failure:\n%s", got)
	}
}

// assertNoSecrets fails if any secret appears in texts.
func assertNoSecrets(tb testing.TB, secrets []string, texts map[string]string) {
	tb.Helper()
	for name, text := range texts {
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				tb.Errorf("%s contains the secret %s", name, s[:min(len(s), 6)]+"...")
			}
		}
	}
}

// errAny in a test table means "some error; check only its text".
var errAny = errors.New("any error")

// netPipe is an in-memory stand-in for the terminal, closed at cleanup.
func netPipe(tb testing.TB) (*io.PipeReader, *io.PipeWriter) {
	tb.Helper()
	pr, pw := io.Pipe()
	tb.Cleanup(func() {
		pw.Close()
		pr.Close()
	})
	return pr, pw
}

// sameToken compares tokens, their expiry as instants.
func sameToken(a, b tokensender.Token) bool {
	ea, eb := a.ExpiresAt, b.ExpiresAt
	ia, ib := a.RefreshTokenIssuedAt, b.RefreshTokenIssuedAt
	a.ExpiresAt, b.ExpiresAt = time.Time{}, time.Time{}
	a.RefreshTokenIssuedAt, b.RefreshTokenIssuedAt = time.Time{}, time.Time{}
	return a == b && ea.Equal(eb) && ia.Equal(ib)
}
