package schwab

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	tokensender "github.com/schwabtools/token-refresh-sender"
)

// Schwab's production OAuth endpoints.
const (
	ProductionTokenURL     = "https://api.schwabapi.com/v1/oauth/token"
	ProductionAuthorizeURL = "https://api.schwabapi.com/v1/oauth/authorize"
)

// Client requests tokens for one Schwab app. The zero values of HTTPClient,
// Now and TokenURL mean NewHTTPClient(nil), time.Now and ProductionTokenURL.
// A Client is safe for concurrent use.
type Client struct {
	AppKey, AppSecret string
	TokenURL          string
	HTTPClient        *http.Client
	Now               func() time.Time
}

// NewHTTPClient returns an HTTP client for the token endpoint: the TLS
// handshake times out after 10s, response headers after 20s, the whole
// request (the dial included) after 30s; TLS 1.2 or newer; certificates are checked against
// rootCAs, or the system roots when rootCAs is nil (crypto/x509 parses those
// once per process). Proxies come from the environment. Redirects are not
// followed: the token endpoint never redirects, and following one would
// send the credentials elsewhere.
//
// Keep-alive is off: one request every 25 minutes gains nothing from a
// pooled connection, an idle one only wakes the process to close it, and a
// reused connection (past TCP's quick-ACK start) delays its ACKs, so a
// server that writes headers and body in two segments stalls on Nagle
// against delayed ACK for ~40 ms.
func NewHTTPClient(rootCAs *x509.CertPool) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: rootCAs},
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 20 * time.Second,
			ExpectContinueTimeout: time.Second,
			DisableKeepAlives:     true,
			ForceAttemptHTTP2:     true,
		},
		Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Refresh trades refreshToken for a new access token
// (grant_type=refresh_token). When Schwab's answer carries no refresh token
// the one passed in is kept. Failures are *Error with Op "refresh".
func (c *Client) Refresh(ctx context.Context, refreshToken string) (tokensender.Token, error) {
	if refreshToken == "" {
		return tokensender.Token{}, &Error{Op: OpRefresh, Kind: KindRelogin,
			Description: "no refresh token to refresh with: run login"}
	}
	return c.do(ctx, OpRefresh, refreshToken, func(ctx context.Context, conf *oauth2.Config) (*oauth2.Token, error) {
		return conf.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	})
}

// Exchange trades an authorization code from the login redirect for the
// first token pair (grant_type=authorization_code). redirectURI must be the
// app's registered callback URL. Failures are *Error with Op "exchange".
func (c *Client) Exchange(ctx context.Context, code, redirectURI string) (tokensender.Token, error) {
	if code == "" {
		return tokensender.Token{}, &Error{Op: OpExchange, Kind: KindRelogin,
			Description: "no authorization code to exchange: log in again"}
	}
	return c.do(ctx, OpExchange, code, func(ctx context.Context, conf *oauth2.Config) (*oauth2.Token, error) {
		conf.RedirectURL = redirectURI
		return conf.Exchange(ctx, code)
	})
}

// do runs one token request and turns its outcome into a Token or *Error.
// grant is the refresh token or code sent, used to keep it out of errors.
func (c *Client) do(ctx context.Context, op, grant string,
	call func(context.Context, *oauth2.Config) (*oauth2.Token, error)) (tokensender.Token, error) {
	secrets := []string{grant, c.AppSecret}
	if c.AppKey == "" || c.AppSecret == "" {
		return tokensender.Token{}, &Error{Op: op, Kind: KindRelogin,
			Description: "app key or app secret is empty: set app_key and app_secret in the app config"}
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = NewHTTPClient(nil)
	}
	// Record the raw response next to x/oauth2, which reports 2xx answers it
	// cannot use, and failed body reads, only as text.
	rec := &recorder{base: hc.Transport}
	hcRec := *hc
	hcRec.Transport = rec

	tokenURL := c.TokenURL
	if tokenURL == "" {
		tokenURL = ProductionTokenURL
	}
	conf := &oauth2.Config{
		ClientID:     c.AppKey,
		ClientSecret: c.AppSecret,
		Endpoint:     oauth2.Endpoint{TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInHeader},
	}
	start := now()
	ot, err := call(context.WithValue(ctx, oauth2.HTTPClient, &hcRec), conf)
	if err != nil && ctx.Err() != nil {
		// Our own deadline or cancellation is the reason, whatever half an
		// answer arrived before it.
		return tokensender.Token{}, &Error{Op: op, Kind: KindTransient, Err: ctx.Err(), Description: ctx.Err().Error()}
	}
	if err != nil {
		return tokensender.Token{}, newError(op, err, rec.result(), now(), secrets)
	}
	tok := tokensender.Token{
		AccessToken:  ot.AccessToken,
		RefreshToken: ot.RefreshToken,
		TokenType:    ot.TokenType,
		ExpiresIn:    ot.ExpiresIn,
	}
	tok.IDToken, _ = ot.Extra("id_token").(string)
	tok.Scope, _ = ot.Extra("scope").(string)
	if tok.RefreshToken == "" && op == OpRefresh {
		tok.RefreshToken = grant
	}
	if tok.TokenType == "" {
		tok.TokenType = "Bearer"
	}
	if why := checkToken(op, tok); why != "" {
		return tokensender.Token{}, &Error{Op: op, StatusCode: rec.result().status, Kind: KindTransient, Description: why}
	}
	// Counted from when the request was sent, so it is never later than
	// Schwab's own expiry.
	tok.ExpiresAt = start.Add(time.Duration(tok.ExpiresIn) * time.Second).Truncate(time.Second)
	return tok, nil
}

// Bounds on what a token response may hold: more is never a real Schwab
// answer, and would make a token file the loader refuses or a socket message
// over the protocol's limit.
const (
	// MaxTokenLen is the longest access, refresh or id token accepted, in bytes.
	MaxTokenLen = 4 << 10
	// MaxExpiresIn is the longest access-token lifetime accepted.
	MaxExpiresIn = 24 * time.Hour
)

// checkToken says what makes a token response unusable, or "" when it is
// fine: a token (or token_type, scope) longer than MaxTokenLen or not
// printable ASCII (no spaces, except between scopes),
// an exchange without a refresh token, or expires_in not a whole number of
// seconds from 1 to MaxExpiresIn. The text names the field, never its value.
func checkToken(op string, tok tokensender.Token) string {
	for _, f := range []struct {
		name, value string
		lowest      rune // the lowest character allowed: '!', or ' ' where spaces are
	}{
		{"access_token", tok.AccessToken, '!'},
		{"refresh_token", tok.RefreshToken, '!'},
		{"id_token", tok.IDToken, '!'},
		{"token_type", tok.TokenType, '!'},
		{"scope", tok.Scope, ' '}, // space-separated
	} {
		if len(f.value) > MaxTokenLen {
			return fmt.Sprintf("%s is %d bytes, longer than the %d allowed", f.name, len(f.value), MaxTokenLen)
		}
		if i := strings.IndexFunc(f.value, func(r rune) bool { return r < f.lowest || r > '~' }); i >= 0 {
			return fmt.Sprintf("%s has a character that is not printable ASCII at byte %d", f.name, i)
		}
	}
	if op == OpExchange && tok.RefreshToken == "" {
		return "no refresh_token in the answer"
	}
	if tok.ExpiresIn <= 0 || tok.ExpiresIn > int64(MaxExpiresIn/time.Second) {
		return fmt.Sprintf("expires_in must be a whole number of seconds from 1 to %d, got %d", int64(MaxExpiresIn/time.Second), tok.ExpiresIn)
	}
	return ""
}

// response is what recorder saw of the one response.
type response struct {
	got     bool // a response arrived
	status  int
	header  http.Header
	body    []byte
	readErr error // reading the body failed
}

// recorder is an http.RoundTripper that keeps a copy of the response.
type recorder struct {
	base http.RoundTripper

	mu   sync.Mutex
	resp response
	buf  bytes.Buffer
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	base := r.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.resp = response{got: true, status: resp.StatusCode, header: resp.Header}
	r.buf.Reset()
	r.mu.Unlock()
	resp.Body = &recordingBody{ReadCloser: resp.Body, r: r}
	return resp, nil
}

func (r *recorder) result() response {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := r.resp
	res.body = bytes.Clone(r.buf.Bytes())
	return res
}

// maxRecorded matches the 1 MiB x/oauth2 reads of a token response.
const maxRecorded = 1 << 20

type recordingBody struct {
	io.ReadCloser
	r *recorder
}

func (b *recordingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.r.mu.Lock()
	defer b.r.mu.Unlock()
	if room := maxRecorded - b.r.buf.Len(); room > 0 {
		b.r.buf.Write(p[:min(n, room)])
	}
	if err != nil && !errors.Is(err, io.EOF) {
		b.r.resp.readErr = err
	}
	return n, err
}
