package schwab_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/fakeschwab"
	"github.com/schwabtools/token-refresh-sender/internal/testkit"
	"github.com/schwabtools/token-refresh-sender/schwab"
)

const (
	appKey    = "AppKey0123456789abcdefghijklmnop"
	appSecret = "S3cr3tS3cr3tS3cr"
	callback  = "https://127.0.0.1:8182"
)

type fakeClock = testkit.Clock

type env struct {
	fake   *fakeschwab.Server
	ts     *fakeschwab.TLSServer
	clock  *fakeClock
	client *schwab.Client
}

// mustStart runs fakeschwab over HTTPS and a Client pointed at it, both on
// one fake clock whose time has a fractional second.
func mustStart(tb testing.TB) *env {
	tb.Helper()
	clock := testkit.NewClock(time.Date(2025, 11, 12, 21, 30, 55, 700_000_000, time.UTC))
	fake := fakeschwab.New(fakeschwab.Config{AppKey: appKey, AppSecret: appSecret, CallbackURL: callback, Now: clock.Now})
	ts, err := fakeschwab.StartTLS(fake)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(ts.Close)
	hc := schwab.NewHTTPClient(ts.RootCAs)
	tb.Cleanup(hc.CloseIdleConnections)
	return &env{fake: fake, ts: ts, clock: clock, client: &schwab.Client{
		AppKey: appKey, AppSecret: appSecret, TokenURL: ts.TokenURL, HTTPClient: hc, Now: clock.Now,
	}}
}

// mustCode walks the fake's consent form and returns a fresh code.
func (e *env) mustCode(tb testing.TB) string {
	tb.Helper()
	form := url.Values{"client_id": {appKey}, "redirect_uri": {callback}, "decision": {"allow"}}
	resp, err := e.client.HTTPClient.PostForm(e.ts.AuthorizeURL, form)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		tb.Fatalf("consent answered %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query().Get("code")
}

// mustSchwabError checks err is a *schwab.Error free of secrets.
func mustSchwabError(tb testing.TB, err error, secrets ...string) *schwab.Error {
	tb.Helper()
	var se *schwab.Error
	if !errors.As(err, &se) {
		tb.Fatalf("error %v (%T) is not a *schwab.Error", err, err)
	}
	assertNoSecrets(tb, err, append(secrets, appSecret)...)
	return se
}

// assertNoSecrets checks every text the error chain can produce.
func assertNoSecrets(tb testing.TB, err error, secrets ...string) {
	tb.Helper()
	for e := err; e != nil; e = errors.Unwrap(e) {
		for _, text := range []string{e.Error(), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e)} {
			for _, s := range secrets {
				if s != "" && strings.Contains(text, s) {
					tb.Errorf("error text contains a secret (%s): %s", tokensender.Redact(s), text)
				}
			}
		}
	}
}

func TestClient_Refresh(t *testing.T) {
	e := mustStart(t)
	login := e.fake.Login()
	e.clock.Advance(25 * time.Minute)
	tok, err := e.client.Refresh(t.Context(), login.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if !e.fake.ValidAccessToken(tok.AccessToken) || tok.AccessToken == login.AccessToken {
		t.Errorf("Refresh returned a stale or unknown access token")
	}
	if tok.RefreshToken != login.RefreshToken {
		t.Errorf("RefreshToken changed")
	}
	want := time.Date(2025, 11, 12, 22, 25, 55, 0, time.UTC) // 21:55:55.7 + 30m, whole seconds
	if !tok.ExpiresAt.Equal(want) || tok.ExpiresIn != 1800 {
		t.Errorf("ExpiresAt %v ExpiresIn %d, want %v 1800", tok.ExpiresAt, tok.ExpiresIn, want)
	}
	if tok.TokenType != "Bearer" || tok.Scope != "api" || strings.Count(tok.IDToken, ".") != 2 {
		t.Errorf("TokenType %q Scope %q IDToken %q", tok.TokenType, tok.Scope, tok.IDToken)
	}
	if st := e.fake.Stats(); st.Refreshes != 1 {
		t.Errorf("fake saw %d refreshes, want 1", st.Refreshes)
	}
}

func TestClient_RefreshMinimalAnswer(t *testing.T) {
	// No refresh_token, token_type, scope or id_token in the answer.
	e := mustStart(t)
	e.fake.Inject(fakeschwab.FaultStatus(200, "application/json", `{"access_token":"I0.minimal@","expires_in":1800}`, nil))
	tok, err := e.client.Refresh(t.Context(), "previous-refresh-token@")
	if err != nil {
		t.Fatal(err)
	}
	want := tokensender.Token{
		AccessToken: "I0.minimal@", RefreshToken: "previous-refresh-token@", TokenType: "Bearer",
		ExpiresIn: 1800, ExpiresAt: time.Date(2025, 11, 12, 22, 0, 55, 0, time.UTC),
	}
	if tok != want {
		t.Errorf("got  %+v\nwant %+v", tok, want)
	}
}

func TestClient_Exchange(t *testing.T) {
	e := mustStart(t)
	old := e.fake.Login()
	code := e.mustCode(t)
	tok, err := e.client.Exchange(t.Context(), code, callback)
	if err != nil {
		t.Fatal(err)
	}
	if !e.fake.ValidAccessToken(tok.AccessToken) || tok.RefreshToken == "" || tok.RefreshToken == old.RefreshToken {
		t.Errorf("Exchange returned %+v", tok)
	}
	// The exchange was a new login: the old refresh token is gone.
	_, err = e.client.Refresh(t.Context(), old.RefreshToken)
	if !schwab.IsRelogin(err) {
		t.Errorf("refresh with superseded token: %v, want relogin", err)
	}
	if _, err := e.client.Refresh(t.Context(), tok.RefreshToken); err != nil {
		t.Errorf("refresh with new token: %v", err)
	}
}

// wantErr is the expected shape of a *schwab.Error.
type wantErr struct {
	status     int
	code       string
	desc       string
	kind       schwab.Kind
	retryAfter time.Duration
	text       string
}

func checkErr(tb testing.TB, err error, op string, w wantErr, secrets ...string) {
	tb.Helper()
	se := mustSchwabError(tb, err, secrets...)
	tb.Logf("%s: %v", se.Kind, err)
	if se.Op != op || se.StatusCode != w.status || se.Code != w.code || se.Kind != w.kind || se.RetryAfter != w.retryAfter {
		tb.Errorf("got Op %q Status %d Code %q Kind %v RetryAfter %v\nwant Op %q Status %d Code %q Kind %v RetryAfter %v",
			se.Op, se.StatusCode, se.Code, se.Kind, se.RetryAfter, op, w.status, w.code, w.kind, w.retryAfter)
	}
	if w.desc != "" && se.Description != w.desc {
		tb.Errorf("Description %q, want %q", se.Description, w.desc)
	}
	if w.text != "" && err.Error() != w.text {
		tb.Errorf("Error() = %q\nwant      %q", err.Error(), w.text)
	}
}

func TestClient_RefreshSchwabErrors(t *testing.T) {
	json := "application/json"
	tests := []struct {
		name  string
		fault fakeschwab.Fault
		want  wantErr
	}{
		{"superseded", fakeschwab.FaultStatus(400, json, fakeschwab.BodySuperseded, nil), wantErr{
			400, "refresh_token_authentication_error", "Failed refresh token authentication", schwab.KindRelogin, 0,
			"HTTP 400: refresh_token_authentication_error: Failed refresh token authentication"}},
		{"expired refresh token", fakeschwab.FaultStatus(400, json, `{"error":"invalid_client","error_description":"refresh token invalid"}`, nil), wantErr{
			400, "invalid_client", "refresh token invalid", schwab.KindRelogin, 0, "HTTP 400: invalid_client: refresh token invalid"}},
		{"refresh_token_invalid", fakeschwab.FaultStatus(400, json, `{"error":"refresh_token_invalid","error_description":"refresh token invalid"}`, nil), wantErr{
			400, "refresh_token_invalid", "refresh token invalid", schwab.KindRelogin, 0, "HTTP 400: refresh_token_invalid: refresh token invalid"}},
		{"bad app credentials", fakeschwab.FaultStatus(401, json, `{"error":"invalid_client","error_description":"Unauthorized"}`, nil), wantErr{
			401, "invalid_client", "Unauthorized", schwab.KindRelogin, 0, "HTTP 401: invalid_client: Unauthorized"}},
		{"invalid_grant", fakeschwab.FaultStatus(400, json, `{"error":"invalid_grant"}`, nil), wantErr{
			400, "invalid_grant", "", schwab.KindRelogin, 0, "HTTP 400: invalid_grant"}},
		{"rate limited", fakeschwab.FaultRateLimit(30 * time.Second), wantErr{
			429, "", "Rate Limit Exceeded", schwab.KindTransient, 30 * time.Second, "HTTP 429: Rate Limit Exceeded (retry after 30s)"}},
		{"rate limited, HTTP date", fakeschwab.FaultStatus(429, json, fakeschwab.BodyRateLimit,
			http.Header{"Retry-After": {"Wed, 12 Nov 2025 21:32:56 GMT"}}), wantErr{ // two minutes after the fake clock
			429, "", "Rate Limit Exceeded", schwab.KindTransient, 2*time.Minute + 300*time.Millisecond, ""}},
		{"CDN 403", fakeschwab.FaultHTML403(), wantErr{
			403, "", "Access Denied (HTML page from Schwab's CDN)", schwab.KindTransient, 0, "HTTP 403: Access Denied (HTML page from Schwab's CDN)"}},
		{"500 empty", fakeschwab.Fault5xx(500), wantErr{500, "", "", schwab.KindTransient, 0, "HTTP 500"}},
		{"503 empty", fakeschwab.Fault5xx(503), wantErr{503, "", "", schwab.KindTransient, 0, "HTTP 503"}},
		{"503 HTML", fakeschwab.FaultStatus(503, "text/html", "<html><head><title>Service Unavailable</title></head><body></body></html>", nil), wantErr{
			503, "", "Service Unavailable (HTML page)", schwab.KindTransient, 0, "HTTP 503: Service Unavailable (HTML page)"}},
		{"truncated JSON", fakeschwab.FaultTruncatedJSON(), wantErr{
			200, "", "body is not valid JSON (23 bytes)", schwab.KindTransient, 0, "invalid token response: body is not valid JSON (23 bytes)"}},
		{"empty object", fakeschwab.FaultStatus(200, json, `{}`, nil), wantErr{
			200, "", "no access_token in the body", schwab.KindTransient, 0, "invalid token response: no access_token in the body"}},
		{"no expires_in", fakeschwab.FaultStatus(200, json, `{"access_token":"I0.x@","refresh_token":"r@"}`, nil), wantErr{
			200, "", "expires_in must be a whole number of seconds from 1 to 86400, got 0", schwab.KindTransient, 0, "invalid token response: expires_in must be a whole number of seconds from 1 to 86400, got 0"}},
		{"200 with error", fakeschwab.FaultStatus(200, json, `{"error":"invalid_client","error_description":"refresh token invalid"}`, nil), wantErr{
			200, "invalid_client", "refresh token invalid", schwab.KindRelogin, 0, "HTTP 200: invalid_client: refresh token invalid"}},
		{"redirect not followed", fakeschwab.FaultStatus(302, "", "", http.Header{"Location": {"https://127.0.0.1:1/elsewhere"}}), wantErr{
			302, "", "", schwab.KindTransient, 0, "HTTP 302"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustStart(t)
			tok := e.fake.Login()
			e.fake.Inject(tt.fault)
			_, err := e.client.Refresh(t.Context(), tok.RefreshToken)
			checkErr(t, err, schwab.OpRefresh, tt.want, tok.RefreshToken)
		})
	}
}

func TestClient_RefreshFakeRules(t *testing.T) {
	t.Run("superseded by a new login", func(t *testing.T) {
		e := mustStart(t)
		old := e.fake.Login()
		e.fake.Login()
		_, err := e.client.Refresh(t.Context(), old.RefreshToken)
		checkErr(t, err, schwab.OpRefresh, wantErr{400, "refresh_token_authentication_error", "Failed refresh token authentication", schwab.KindRelogin, 0,
			"HTTP 400: refresh_token_authentication_error: Failed refresh token authentication"}, old.RefreshToken)
	})
	t.Run("seven days old", func(t *testing.T) {
		e := mustStart(t)
		tok := e.fake.Login()
		e.clock.Advance(7 * 24 * time.Hour)
		_, err := e.client.Refresh(t.Context(), tok.RefreshToken)
		checkErr(t, err, schwab.OpRefresh, wantErr{400, "invalid_client", "refresh token invalid", schwab.KindRelogin, 0,
			"HTTP 400: invalid_client: refresh token invalid"}, tok.RefreshToken)
	})
	t.Run("wrong app secret", func(t *testing.T) {
		e := mustStart(t)
		tok := e.fake.Login()
		c := *e.client
		c.AppSecret = "WrongSecretWrongSecret"
		_, err := c.Refresh(t.Context(), tok.RefreshToken)
		checkErr(t, err, schwab.OpRefresh, wantErr{401, "invalid_client", "Unauthorized", schwab.KindRelogin, 0,
			"HTTP 401: invalid_client: Unauthorized"}, tok.RefreshToken, c.AppSecret)
	})
}

func TestClient_RefreshEchoedSecret(t *testing.T) {
	// Should Schwab ever echo the token in a description, it is redacted.
	e := mustStart(t)
	tok := e.fake.Login()
	e.fake.Inject(fakeschwab.FaultStatus(400, "application/json",
		`{"error":"invalid_grant","error_description":"refresh token `+tok.RefreshToken+` for app `+appSecret+` is invalid"}`, nil))
	_, err := e.client.Refresh(t.Context(), tok.RefreshToken)
	se := mustSchwabError(t, err, tok.RefreshToken)
	want := "refresh token " + tokensender.Redact(tok.RefreshToken) + " for app " + tokensender.Redact(appSecret) + " is invalid"
	if se.Description != want {
		t.Errorf("Description %q, want %q", se.Description, want)
	}
}

func TestClient_RefreshNetworkErrors(t *testing.T) {
	t.Run("connection reset", func(t *testing.T) {
		e := mustStart(t)
		tok := e.fake.Login()
		e.fake.Inject(fakeschwab.FaultReset())
		_, err := e.client.Refresh(t.Context(), tok.RefreshToken)
		se := mustSchwabError(t, err, tok.RefreshToken)
		t.Log(err)
		if se.StatusCode != 0 || se.Kind != schwab.KindTransient || !strings.HasPrefix(err.Error(), "network error: ") {
			t.Errorf("got %q status %d kind %v", err, se.StatusCode, se.Kind)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		c := &schwab.Client{AppKey: appKey, AppSecret: appSecret, TokenURL: "https://" + addr + "/v1/oauth/token",
			HTTPClient: schwab.NewHTTPClient(nil)}
		_, err = c.Refresh(t.Context(), "some-refresh-token-value@")
		se := mustSchwabError(t, err, "some-refresh-token-value@")
		var opErr *net.OpError
		if se.Kind != schwab.KindTransient || !errors.As(err, &opErr) ||
			!strings.HasPrefix(err.Error(), "network error: dial tcp "+addr) || !strings.HasSuffix(err.Error(), "connection refused") {
			t.Errorf("got %q kind %v", err, se.Kind)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		e := mustStart(t)
		tok := e.fake.Login()
		c := *e.client
		c.HTTPClient = schwab.NewHTTPClient(nil) // system roots do not trust the fake
		_, err := c.Refresh(t.Context(), tok.RefreshToken)
		se := mustSchwabError(t, err, tok.RefreshToken)
		if se.Kind != schwab.KindTransient || se.StatusCode != 0 || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("got %q kind %v", err, se.Kind)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		e := mustStart(t)
		tok := e.fake.Login()
		e.fake.Inject(fakeschwab.FaultLatency(time.Hour))
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		_, err := e.client.Refresh(ctx, tok.RefreshToken)
		se := mustSchwabError(t, err, tok.RefreshToken)
		if se.Kind != schwab.KindTransient || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %q kind %v", err, se.Kind)
		}
	})
}

func TestClient_ExchangeErrors(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(testing.TB, *env) (code, redirect string)
		want    wantErr
	}{
		{"expired code", func(t testing.TB, e *env) (string, string) {
			code := e.mustCode(t)
			e.clock.Advance(31 * time.Second)
			return code, callback
		}, wantErr{400, "invalid_request", "Bad authorization code: AuthorizationCode has expired", schwab.KindRelogin, 0,
			"HTTP 400: invalid_request: Bad authorization code: AuthorizationCode has expired"}},
		{"used code", func(t testing.TB, e *env) (string, string) {
			code := e.mustCode(t)
			if _, err := e.client.Exchange(t.Context(), code, callback); err != nil {
				t.Fatal(err)
			}
			return code, callback
		}, wantErr{400, "invalid_request", "", schwab.KindRelogin, 0, ""}},
		{"redirect mismatch", func(t testing.TB, e *env) (string, string) {
			return e.mustCode(t), callback + "/"
		}, wantErr{400, "invalid_request", "Redirect URI mismatch", schwab.KindRelogin, 0, "HTTP 400: invalid_request: Redirect URI mismatch"}},
		{"CDN 403", func(t testing.TB, e *env) (string, string) {
			e.fake.Inject(fakeschwab.FaultHTML403())
			return e.mustCode(t), callback
		}, wantErr{403, "", "", schwab.KindTransient, 0, "HTTP 403: Access Denied (HTML page from Schwab's CDN)"}},
		{"503", func(t testing.TB, e *env) (string, string) {
			e.fake.Inject(fakeschwab.Fault5xx(503))
			return e.mustCode(t), callback
		}, wantErr{503, "", "", schwab.KindTransient, 0, "HTTP 503"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustStart(t)
			code, redirect := tt.prepare(t, e)
			_, err := e.client.Exchange(t.Context(), code, redirect)
			checkErr(t, err, schwab.OpExchange, tt.want, code)
		})
	}
}

func TestClient_LocalErrors(t *testing.T) {
	tests := []struct {
		name string
		c    schwab.Client
		call func(*schwab.Client) error
		want string
	}{
		{"no refresh token", schwab.Client{AppKey: appKey, AppSecret: appSecret},
			func(c *schwab.Client) error { _, err := c.Refresh(context.Background(), ""); return err },
			"no refresh token to refresh with: run login"},
		{"no code", schwab.Client{AppKey: appKey, AppSecret: appSecret},
			func(c *schwab.Client) error { _, err := c.Exchange(context.Background(), "", callback); return err },
			"no authorization code to exchange: log in again"},
		{"no secret", schwab.Client{AppKey: appKey},
			func(c *schwab.Client) error { _, err := c.Refresh(context.Background(), "rt"); return err },
			"app key or app secret is empty: set app_key and app_secret in the app config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(&tt.c)
			se := mustSchwabError(t, err)
			if err.Error() != tt.want || se.Kind != schwab.KindRelogin {
				t.Errorf("got %q kind %v, want %q relogin", err, se.Kind, tt.want)
			}
		})
	}
}

func TestNewHTTPClient(t *testing.T) {
	e := mustStart(t)
	hc := schwab.NewHTTPClient(e.ts.RootCAs)
	tr, ok := hc.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("Transport is %T", hc.Transport)
	}
	if hc.Timeout != 30*time.Second || tr.TLSHandshakeTimeout != 10*time.Second || tr.ResponseHeaderTimeout != 20*time.Second {
		t.Errorf("timeouts: client %v, handshake %v, headers %v", hc.Timeout, tr.TLSHandshakeTimeout, tr.ResponseHeaderTimeout)
	}
	if tr.TLSClientConfig.MinVersion != 0x0303 || tr.Proxy == nil {
		t.Errorf("TLS min version %x, proxy set %v", tr.TLSClientConfig.MinVersion, tr.Proxy != nil)
	}
	resp, err := hc.Get(e.ts.URL + "/nowhere")
	if err != nil {
		t.Fatalf("GET over the fake's TLS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("status %d", resp.StatusCode)
	}
}
