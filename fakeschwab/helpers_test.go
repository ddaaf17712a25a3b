package fakeschwab_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/schwabtools/token-refresh-sender/fakeschwab"
	"github.com/schwabtools/token-refresh-sender/internal/testkit"
)

const (
	appKey    = "AppKey0123456789abcdefghijklmnop"
	appSecret = "S3cr3tS3cr3tS3cr"
	callback  = "https://127.0.0.1:8182"
)

// fakeClock is a manually advanced clock.
type fakeClock = testkit.Clock

func newFakeClock() *fakeClock {
	return testkit.NewClock(time.Date(2025, 11, 12, 21, 30, 55, 0, time.UTC))
}

type env struct {
	s     *fakeschwab.Server
	ts    *fakeschwab.TLSServer
	clock *fakeClock
	hc    *http.Client
}

// mustStart starts a fake on real HTTPS with a fake clock.
func mustStart(tb testing.TB) *env {
	tb.Helper()
	return mustStartWith(tb, fakeschwab.Config{AppKey: appKey, AppSecret: appSecret, CallbackURL: callback})
}

// mustStartWith is mustStart with another app registration; cfg.Now is
// set to the env's fake clock.
func mustStartWith(tb testing.TB, cfg fakeschwab.Config) *env {
	tb.Helper()
	clock := newFakeClock()
	cfg.Now = clock.Now
	s := fakeschwab.New(cfg)
	ts, err := fakeschwab.StartTLS(s)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(ts.Close)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ts.RootCAs, MinVersion: tls.VersionTLS12}}
	tb.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &env{s: s, ts: ts, clock: clock, hc: hc}
}

type reply struct {
	status int
	header http.Header
	body   string
}

// post sends a form to the token endpoint with Basic credentials (none when
// user is "").
func (e *env) post(tb testing.TB, user, pass string, form url.Values) reply {
	tb.Helper()
	r, err := e.postErr(tb.Context(), user, pass, "application/x-www-form-urlencoded", form.Encode())
	if err != nil {
		tb.Fatalf("POST token: %v", err)
	}
	return r
}

func (e *env) postErr(ctx context.Context, user, pass, contentType, body string) (reply, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.ts.TokenURL, strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) (reply, error) {
	resp, err := e.hc.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{resp.StatusCode, resp.Header, string(b)}, nil
}

func (e *env) get(tb testing.TB, rawURL string) reply {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodGet, rawURL, nil)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := e.do(req)
	if err != nil {
		tb.Fatalf("GET %s: %v", rawURL, err)
	}
	return r
}

func (e *env) postForm(tb testing.TB, rawURL string, form url.Values) reply {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r, err := e.do(req)
	if err != nil {
		tb.Fatalf("POST %s: %v", rawURL, err)
	}
	return r
}

func refreshForm(rt string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
}

func codeForm(code, redirect string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}}
}

// mustAuthorize walks the consent page with decision allow and returns the
// code from the redirect.
func (e *env) mustAuthorize(tb testing.TB) string {
	tb.Helper()
	r := e.postForm(tb, e.ts.AuthorizeURL, url.Values{
		"client_id": {appKey}, "redirect_uri": {callback}, "decision": {"allow"},
	})
	if r.status != http.StatusFound {
		tb.Fatalf("consent: status %d, body %s", r.status, r.body)
	}
	u, err := url.Parse(r.header.Get("Location"))
	if err != nil {
		tb.Fatal(err)
	}
	code := u.Query().Get("code")
	if code == "" {
		tb.Fatalf("no code in %s", u)
	}
	return code
}
