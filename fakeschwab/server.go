package fakeschwab

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
)

// Paths served by Server, relative to its base URL.
const (
	TokenPath     = "/v1/oauth/token"
	AuthorizePath = "/v1/oauth/authorize"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultAccessTokenLifetime  = 30 * time.Minute
	DefaultRefreshTokenLifetime = 7 * 24 * time.Hour
	DefaultCodeLifetime         = 30 * time.Second
)

// Config describes the one registered app the fake knows.
type Config struct {
	AppKey, AppSecret string
	// CallbackURL is the registered redirect URI; authorize and token
	// requests must send exactly this string.
	CallbackURL          string
	AccessTokenLifetime  time.Duration // default 30m
	RefreshTokenLifetime time.Duration // default 7*24h
	CodeLifetime         time.Duration // default 30s
	Now                  func() time.Time
	// SplitWrites answers token requests as many servers not written in Go
	// do: the headers and the body in two writes, with Nagle's algorithm
	// on (StartTLS). A client that reuses a connection then waits for its
	// own delayed ACK before the body arrives.
	SplitWrites bool
}

// Stats counts what the fake has seen since New.
type Stats struct {
	TokenRequests  int // every request to the token endpoint, faulted ones included
	Refreshes      int // successful refresh_token grants
	Exchanges      int // successful authorization_code grants
	Rejected       int // token requests answered with an OAuth error (4xx)
	Logins         int // calls to Login
	CodesIssued    int // authorization codes handed out by the consent page
	FaultsInjected map[FaultKind]int
}

type refreshEntry struct {
	issued     time.Time // login time; refreshing does not renew it
	superseded bool
}

type codeEntry struct {
	issued time.Time
	used   bool
}

// Server is the fake. It implements http.Handler and is safe for concurrent
// use.
type Server struct {
	cfg Config
	mux *http.ServeMux

	mu       sync.Mutex
	refresh  map[string]*refreshEntry
	access   map[string]time.Time // access token -> expiry
	codes    map[string]*codeEntry
	faults   []Fault
	every    int
	cycle    []Fault
	cycleAt  int
	refreshN int // refresh requests seen, for SetFaultEvery
	stats    Stats
}

// New returns a fake for the app in cfg, filling in defaults.
func New(cfg Config) *Server {
	if cfg.AccessTokenLifetime <= 0 {
		cfg.AccessTokenLifetime = DefaultAccessTokenLifetime
	}
	if cfg.RefreshTokenLifetime <= 0 {
		cfg.RefreshTokenLifetime = DefaultRefreshTokenLifetime
	}
	if cfg.CodeLifetime <= 0 {
		cfg.CodeLifetime = DefaultCodeLifetime
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{
		cfg:     cfg,
		mux:     http.NewServeMux(),
		refresh: make(map[string]*refreshEntry),
		access:  make(map[string]time.Time),
		codes:   make(map[string]*codeEntry),
		stats:   Stats{FaultsInjected: make(map[FaultKind]int)},
	}
	s.mux.HandleFunc("POST "+TokenPath, s.serveToken)
	s.mux.HandleFunc("GET "+AuthorizePath, s.serveAuthorize)
	s.mux.HandleFunc("POST "+AuthorizePath, s.serveConsent)
	return s
}

// ServeHTTP serves POST /v1/oauth/token and GET/POST /v1/oauth/authorize;
// anything else is 404 (or 405 for a wrong method on a known path).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// Login acts as if the user had just logged in through the browser: it
// issues a fresh token pair and supersedes every older refresh token, as a
// new Schwab login does.
func (s *Server) Login() tokensender.Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Logins++
	return s.loginLocked(s.cfg.Now()).token()
}

// RevokeAll makes every refresh token issued so far answer with the
// "superseded" error, as if the user had logged in elsewhere.
func (s *Server) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.refresh {
		e.superseded = true
	}
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.FaultsInjected = make(map[FaultKind]int, len(s.stats.FaultsInjected))
	for k, v := range s.stats.FaultsInjected {
		st.FaultsInjected[k] = v
	}
	return st
}

// ValidAccessToken reports whether tok was issued by this fake and has not
// expired yet.
func (s *Server) ValidAccessToken(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.access[tok]
	return ok && s.cfg.Now().Before(exp)
}

// tokenResponse is the 200 body of the token endpoint, in Schwab's key order.
type tokenResponse struct {
	ExpiresIn    int64  `json:"expires_in"`
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope"`
	RefreshToken string `json:"refresh_token"`
	AccessToken  string `json:"access_token"`
	IDToken      string `json:"id_token"`

	issued time.Time
}

func (t tokenResponse) token() tokensender.Token {
	return tokensender.Token{
		AccessToken:  t.AccessToken,
		RefreshToken: t.RefreshToken,
		IDToken:      t.IDToken,
		TokenType:    t.TokenType,
		Scope:        t.Scope,
		ExpiresIn:    t.ExpiresIn,
		ExpiresAt:    t.issued.Add(time.Duration(t.ExpiresIn) * time.Second).Truncate(time.Second),
	}
}

// loginLocked supersedes every refresh token and issues a new pair.
func (s *Server) loginLocked(now time.Time) tokenResponse {
	for _, e := range s.refresh {
		e.superseded = true
	}
	rt := randomToken("", 48) + "@"
	s.refresh[rt] = &refreshEntry{issued: now}
	return s.issueLocked(rt, now)
}

// issueLocked mints a new access token to go with refresh token rt.
func (s *Server) issueLocked(rt string, now time.Time) tokenResponse {
	if len(s.access) > 1024 {
		for tok, exp := range s.access {
			if !now.Before(exp) {
				delete(s.access, tok)
			}
		}
	}
	at := randomToken("I0.", 48) + "@"
	s.access[at] = now.Add(s.cfg.AccessTokenLifetime)
	return tokenResponse{
		ExpiresIn:    int64(s.cfg.AccessTokenLifetime / time.Second),
		TokenType:    "Bearer",
		Scope:        "api",
		RefreshToken: rt,
		AccessToken:  at,
		IDToken:      s.idToken(now),
		issued:       now,
	}
}

// idToken returns a JWT-shaped string (header.payload.signature); nothing
// verifies it, it only has to look like Schwab's.
func (s *Server) idToken(now time.Time) string {
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT"})
	payload, _ := json.Marshal(map[string]any{
		"iss": "https://api.schwabapi.com",
		"aud": s.cfg.AppKey,
		"sub": "fake-user",
		"iat": now.Unix(),
		"exp": now.Add(s.cfg.AccessTokenLifetime).Unix(),
	})
	sig := make([]byte, 64)
	_, _ = rand.Read(sig)
	return enc.EncodeToString(header) + "." + enc.EncodeToString(payload) + "." + enc.EncodeToString(sig)
}

// randomToken returns prefix followed by n random bytes in base64url.
func randomToken(prefix string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// newUUID returns a random (version 4) UUID string.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
