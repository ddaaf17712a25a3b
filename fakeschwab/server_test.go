package fakeschwab_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/schwabtools/token-refresh-sender/fakeschwab"
)

// Schwab-shaped token values.
var (
	accessRE  = regexp.MustCompile(`^I0\.[A-Za-z0-9_-]{60,}@$`)
	refreshRE = regexp.MustCompile(`^[A-Za-z0-9_-]{60,}@$`)
	codeRE    = regexp.MustCompile(`^C0\.[A-Za-z0-9_-]{40,}@$`)
	uuidRE    = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
)

type tokenBody struct {
	ExpiresIn    int64  `json:"expires_in"`
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope"`
	RefreshToken string `json:"refresh_token"`
	AccessToken  string `json:"access_token"`
	IDToken      string `json:"id_token"`
}

// mustTokenBody checks a 200 token answer and decodes it.
func mustTokenBody(tb testing.TB, r reply) tokenBody {
	tb.Helper()
	if r.status != http.StatusOK {
		tb.Fatalf("status %d, body %s; want 200", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		tb.Errorf("Content-Type %q, want application/json", ct)
	}
	var b tokenBody
	if err := json.Unmarshal([]byte(r.body), &b); err != nil {
		tb.Fatalf("decode %s: %v", r.body, err)
	}
	if !accessRE.MatchString(b.AccessToken) {
		tb.Errorf("access_token %q does not look like Schwab's", b.AccessToken)
	}
	if !refreshRE.MatchString(b.RefreshToken) {
		tb.Errorf("refresh_token %q does not look like Schwab's", b.RefreshToken)
	}
	parts := strings.Split(b.IDToken, ".")
	if len(parts) != 3 {
		tb.Fatalf("id_token %q is not header.payload.signature", b.IDToken)
	}
	for _, p := range parts {
		if _, err := base64.RawURLEncoding.DecodeString(p); err != nil || p == "" {
			tb.Errorf("id_token part %q is not base64url", p)
		}
	}
	if b.ExpiresIn != 1800 || b.TokenType != "Bearer" || b.Scope != "api" {
		tb.Errorf("expires_in/token_type/scope = %d/%q/%q, want 1800/Bearer/api", b.ExpiresIn, b.TokenType, b.Scope)
	}
	return b
}

func wantReply(tb testing.TB, r reply, status int, body string) {
	tb.Helper()
	if r.status != status || r.body != body {
		tb.Errorf("got %d %s\nwant %d %s", r.status, r.body, status, body)
	}
}

func TestServer_Login(t *testing.T) {
	e := mustStart(t)
	tok := e.s.Login()
	if !accessRE.MatchString(tok.AccessToken) || !refreshRE.MatchString(tok.RefreshToken) {
		t.Errorf("Login tokens %q / %q do not look like Schwab's", tok.AccessToken, tok.RefreshToken)
	}
	if want := e.clock.Now().Add(30 * time.Minute); !tok.ExpiresAt.Equal(want) || tok.ExpiresIn != 1800 {
		t.Errorf("ExpiresAt %v ExpiresIn %d, want %v 1800", tok.ExpiresAt, tok.ExpiresIn, want)
	}
	if tok.TokenType != "Bearer" || tok.Scope != "api" || tok.IDToken == "" {
		t.Errorf("TokenType %q Scope %q IDToken %q", tok.TokenType, tok.Scope, tok.IDToken)
	}
	if !e.s.ValidAccessToken(tok.AccessToken) {
		t.Error("fresh access token is not valid")
	}
	newer := e.s.Login()
	wantReply(t, e.post(t, appKey, appSecret, refreshForm(tok.RefreshToken)), 400, fakeschwab.BodySuperseded)
	mustTokenBody(t, e.post(t, appKey, appSecret, refreshForm(newer.RefreshToken)))
	if got := e.s.Stats().Logins; got != 2 {
		t.Errorf("Stats().Logins = %d, want 2", got)
	}
}

func TestServer_RevokeAll(t *testing.T) {
	e := mustStart(t)
	tok := e.s.Login()
	mustTokenBody(t, e.post(t, appKey, appSecret, refreshForm(tok.RefreshToken)))
	e.s.RevokeAll()
	wantReply(t, e.post(t, appKey, appSecret, refreshForm(tok.RefreshToken)), 400, fakeschwab.BodySuperseded)
}

func TestServer_ValidAccessToken(t *testing.T) {
	e := mustStart(t)
	tok := e.s.Login()
	if e.s.ValidAccessToken("I0.unknown@") {
		t.Error("unknown token reported valid")
	}
	e.clock.Advance(30*time.Minute - time.Second)
	if !e.s.ValidAccessToken(tok.AccessToken) {
		t.Error("token invalid one second before expiry")
	}
	e.clock.Advance(time.Second)
	if e.s.ValidAccessToken(tok.AccessToken) {
		t.Error("token still valid at expiry")
	}
}

func TestServer_TokenRefresh(t *testing.T) {
	e := mustStart(t)
	tok := e.s.Login()
	e.clock.Advance(25 * time.Minute)
	b := mustTokenBody(t, e.post(t, appKey, appSecret, refreshForm(tok.RefreshToken)))
	if b.RefreshToken != tok.RefreshToken {
		t.Errorf("refresh returned a different refresh token")
	}
	if b.AccessToken == tok.AccessToken {
		t.Errorf("refresh returned the same access token")
	}
	if !e.s.ValidAccessToken(b.AccessToken) {
		t.Error("refreshed access token not valid")
	}
	// The refresh token keeps its login time: 7 days after Login it expires
	// even though it was used in between.
	e.clock.Advance(7*24*time.Hour - 25*time.Minute - time.Second)
	mustTokenBody(t, e.post(t, appKey, appSecret, refreshForm(tok.RefreshToken)))
	e.clock.Advance(time.Second)
	wantReply(t, e.post(t, appKey, appSecret, refreshForm(tok.RefreshToken)), 400, fakeschwab.BodyRefreshExpired)

	st := e.s.Stats()
	if st.TokenRequests != 3 || st.Refreshes != 2 || st.Rejected != 1 {
		t.Errorf("Stats = %+v, want 3 requests, 2 refreshes, 1 rejected", st)
	}
}

func TestServer_TokenErrors(t *testing.T) {
	e := mustStart(t)
	tok := e.s.Login()
	tests := []struct {
		name        string
		user, pass  string
		contentType string
		body        string
		status      int
		want        string
	}{
		{"no basic auth", "", "", "application/x-www-form-urlencoded", refreshForm(tok.RefreshToken).Encode(), 401, fakeschwab.BodyUnauthorized},
		{"wrong secret", appKey, "nope", "application/x-www-form-urlencoded", refreshForm(tok.RefreshToken).Encode(), 401, fakeschwab.BodyUnauthorized},
		{"wrong key", "other", appSecret, "application/x-www-form-urlencoded", refreshForm(tok.RefreshToken).Encode(), 401, fakeschwab.BodyUnauthorized},
		{"json body", appKey, appSecret, "application/json", `{"grant_type":"refresh_token"}`, 400, fakeschwab.BodyBadContentType},
		{"no content type", appKey, appSecret, "", refreshForm(tok.RefreshToken).Encode(), 400, fakeschwab.BodyBadContentType},
		{"bad form", appKey, appSecret, "application/x-www-form-urlencoded", "grant_type=%zz", 400, fakeschwab.BodyBadForm},
		{"password grant", appKey, appSecret, "application/x-www-form-urlencoded", "grant_type=password", 400, fakeschwab.BodyUnsupportedGrant},
		{"no grant", appKey, appSecret, "application/x-www-form-urlencoded", "", 400, fakeschwab.BodyUnsupportedGrant},
		{"missing refresh token", appKey, appSecret, "application/x-www-form-urlencoded", "grant_type=refresh_token", 400, fakeschwab.BodyMissingRefreshToken},
		{"unknown refresh token", appKey, appSecret, "application/x-www-form-urlencoded", refreshForm("bm9wZQ@").Encode(), 400, fakeschwab.BodySuperseded},
		{"unknown code", appKey, appSecret, "application/x-www-form-urlencoded", codeForm("C0.nope@", callback).Encode(), 400, fakeschwab.BodyCodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := e.postErr(t.Context(), tt.user, tt.pass, tt.contentType, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			wantReply(t, r, tt.status, tt.want)
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

func TestServer_TokenBasicAuthFormEncoded(t *testing.T) {
	// RFC 6749 2.3.1: credentials are form-encoded before Basic encoding.
	e := mustStartWith(t, fakeschwab.Config{AppKey: "key+1", AppSecret: "s/e:c", CallbackURL: callback})
	tok := e.s.Login()
	mustTokenBody(t, e.post(t, url.QueryEscape("key+1"), url.QueryEscape("s/e:c"), refreshForm(tok.RefreshToken)))
	mustTokenBody(t, e.post(t, "key+1", "s/e:c", refreshForm(tok.RefreshToken)))
}

func TestServer_TokenWrongMethodAndPath(t *testing.T) {
	e := mustStart(t)
	if r := e.get(t, e.ts.TokenURL); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET token: status %d, want 405", r.status)
	}
	for _, p := range []string{"/", "/v1/oauth/tokens", "/v1/accounts"} {
		if r := e.get(t, e.ts.URL+p); r.status != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, r.status)
		}
	}
}

func TestServer_TokenExchange(t *testing.T) {
	e := mustStart(t)
	old := e.s.Login()
	code := e.mustAuthorize(t)
	if !codeRE.MatchString(code) {
		t.Errorf("code %q does not look like Schwab's", code)
	}

	wantReply(t, e.post(t, appKey, appSecret, codeForm(code, callback+"/")), 400, fakeschwab.BodyRedirectMismatch)
	wantReply(t, e.post(t, appKey, appSecret, codeForm(code, "")), 400, fakeschwab.BodyRedirectMismatch)
	// A redirect mismatch does not use the code up.
	b := mustTokenBody(t, e.post(t, appKey, appSecret, codeForm(code, callback)))
	if !e.s.ValidAccessToken(b.AccessToken) {
		t.Error("exchanged access token is not valid")
	}
	// Single use.
	wantReply(t, e.post(t, appKey, appSecret, codeForm(code, callback)), 400, fakeschwab.BodyCodeInvalid)
	// The exchange was a new login: the old refresh token is superseded.
	wantReply(t, e.post(t, appKey, appSecret, refreshForm(old.RefreshToken)), 400, fakeschwab.BodySuperseded)
	mustTokenBody(t, e.post(t, appKey, appSecret, refreshForm(b.RefreshToken)))

	st := e.s.Stats()
	if st.Exchanges != 1 || st.CodesIssued != 1 || st.Refreshes != 1 {
		t.Errorf("Stats = %+v", st)
	}
}

func TestServer_TokenExchangeExpiredCode(t *testing.T) {
	tests := []struct {
		name    string
		advance time.Duration
		status  int
		want    string
	}{
		{"just in time", 30*time.Second - time.Millisecond, 200, ""},
		{"at 30s", 30 * time.Second, 400, fakeschwab.BodyCodeExpired},
		{"a minute late", 90 * time.Second, 400, fakeschwab.BodyCodeExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustStart(t)
			code := e.mustAuthorize(t)
			e.clock.Advance(tt.advance)
			r := e.post(t, appKey, appSecret, codeForm(code, callback))
			if tt.status == 200 {
				mustTokenBody(t, r)
				return
			}
			wantReply(t, r, tt.status, tt.want)
		})
	}
}

func TestServer_Authorize(t *testing.T) {
	e := mustStart(t)
	q := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return e.ts.AuthorizeURL + "?" + v.Encode()
	}
	tests := []struct {
		name    string
		url     string
		status  int
		contain []string
	}{
		{"consent page", q("client_id", appKey, "redirect_uri", callback), 200, []string{
			"<title>Schwab (fake) - Authorize</title>",
			`<button id="allow" name="decision" value="allow">Allow</button>`,
			`<button id="deny" name="decision" value="deny">Deny</button>`,
			`name="redirect_uri" value="https://127.0.0.1:8182"`,
			`method="post" action="/v1/oauth/authorize"`,
		}},
		{"extra params and escaped state", q("client_id", appKey, "redirect_uri", callback, "response_type", "code", "state", `"><script>`), 200, []string{
			`name="state" value="&#34;&gt;&lt;script&gt;"`,
		}},
		{"wrong client_id", q("client_id", "other", "redirect_uri", callback), 400, []string{"Invalid client_id"}},
		{"missing client_id", q("redirect_uri", callback), 400, []string{"Invalid client_id"}},
		{"redirect with slash", q("client_id", appKey, "redirect_uri", callback+"/"), 400, []string{"Invalid redirect_uri"}},
		{"redirect other port", q("client_id", appKey, "redirect_uri", "https://127.0.0.1:8183"), 400, []string{"Invalid redirect_uri"}},
		{"response_type token", q("client_id", appKey, "redirect_uri", callback, "response_type", "token"), 400, []string{"Unsupported response_type"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.get(t, tt.url)
			if r.status != tt.status {
				t.Errorf("status %d, want %d", r.status, tt.status)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type %q", ct)
			}
			for _, c := range tt.contain {
				if !strings.Contains(r.body, c) {
					t.Errorf("page lacks %s:\n%s", c, r.body)
				}
			}
		})
	}
}

func TestServer_AuthorizeConsent(t *testing.T) {
	e := mustStart(t)
	tests := []struct {
		name      string
		form      url.Values
		status    int
		wantQuery *regexp.Regexp
	}{
		{"allow", url.Values{"client_id": {appKey}, "redirect_uri": {callback}, "decision": {"allow"}}, 302,
			regexp.MustCompile(`^https://127\.0\.0\.1:8182/\?code=C0\.[A-Za-z0-9_-]+%40&session=[0-9a-f-]{36}$`)},
		{"allow with state", url.Values{"client_id": {appKey}, "redirect_uri": {callback}, "decision": {"allow"}, "state": {"a b&c"}}, 302,
			regexp.MustCompile(`^https://127\.0\.0\.1:8182/\?code=C0\.[A-Za-z0-9_-]+%40&session=[0-9a-f-]{36}&state=a\+b%26c$`)},
		{"deny", url.Values{"client_id": {appKey}, "redirect_uri": {callback}, "decision": {"deny"}}, 302,
			regexp.MustCompile(`^https://127\.0\.0\.1:8182/\?error=access_denied$`)},
		{"deny with state", url.Values{"client_id": {appKey}, "redirect_uri": {callback}, "decision": {"deny"}, "state": {"xyz"}}, 302,
			regexp.MustCompile(`^https://127\.0\.0\.1:8182/\?error=access_denied&state=xyz$`)},
		{"redirect mismatch", url.Values{"client_id": {appKey}, "redirect_uri": {"https://evil.example"}, "decision": {"allow"}}, 400, nil},
		{"wrong client", url.Values{"client_id": {"x"}, "redirect_uri": {callback}, "decision": {"allow"}}, 400, nil},
		{"no decision", url.Values{"client_id": {appKey}, "redirect_uri": {callback}}, 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.s.Stats().CodesIssued
			r := e.postForm(t, e.ts.AuthorizeURL, tt.form)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d; body %s", r.status, tt.status, r.body)
			}
			issued := e.s.Stats().CodesIssued - before
			if tt.wantQuery == nil {
				if r.header.Get("Location") != "" || issued != 0 {
					t.Errorf("error answer redirected to %q / issued %d codes", r.header.Get("Location"), issued)
				}
				return
			}
			loc := r.header.Get("Location")
			if !tt.wantQuery.MatchString(loc) {
				t.Errorf("Location %q does not match %s", loc, tt.wantQuery)
			}
			u, _ := url.Parse(loc)
			if s := u.Query().Get("session"); s != "" && !uuidRE.MatchString(s) {
				t.Errorf("session %q is not a UUID", s)
			}
			wantIssued := 0
			if tt.form.Get("decision") == "allow" {
				wantIssued = 1
			}
			if issued != wantIssued {
				t.Errorf("issued %d codes, want %d", issued, wantIssued)
			}
		})
	}
}

func TestServer_AuthorizeCallbackWithPath(t *testing.T) {
	e := mustStartWith(t, fakeschwab.Config{AppKey: appKey, AppSecret: appSecret, CallbackURL: "https://127.0.0.1:8182/cb?x=1"})
	r := e.postForm(t, e.ts.AuthorizeURL, url.Values{"client_id": {appKey}, "redirect_uri": {"https://127.0.0.1:8182/cb?x=1"}, "decision": {"deny"}})
	if got, want := r.header.Get("Location"), "https://127.0.0.1:8182/cb?x=1&error=access_denied"; got != want {
		t.Errorf("Location %q, want %q", got, want)
	}
}
