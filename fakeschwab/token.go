package fakeschwab

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Error bodies exactly as Schwab sends them.
const (
	// BodyUnauthorized answers a missing or wrong app key/secret (401).
	BodyUnauthorized = `{"error":"invalid_client","error_description":"Unauthorized"}`
	// BodySuperseded answers an unknown or superseded refresh token (400).
	BodySuperseded = `{"error":"unsupported_token_type","error_description":"400 Bad Request: \"{\\\"error_description\\\":\\\"Failed refresh token authentication\\\",\\\"error\\\":\\\"refresh_token_authentication_error\\\"}\""}`
	// BodyRefreshExpired answers a refresh token older than its lifetime (400).
	BodyRefreshExpired = `{"error":"invalid_client","error_description":"refresh token invalid"}`
	// BodyCodeExpired answers an authorization code exchanged too late (400).
	BodyCodeExpired = `{"error":"invalid_request","error_description":"Bad authorization code: AuthorizationCode has expired"}`
	// BodyCodeInvalid answers an unknown or already used code (400).
	BodyCodeInvalid = `{"error":"invalid_request","error_description":"Bad authorization code: AuthorizationCode is invalid or was already used"}`
	// BodyRedirectMismatch answers a redirect_uri other than the registered one (400).
	BodyRedirectMismatch = `{"error":"invalid_request","error_description":"Redirect URI mismatch"}`
	// BodyUnsupportedGrant answers a grant_type other than the two supported (400).
	BodyUnsupportedGrant = `{"error":"unsupported_grant_type","error_description":"Unsupported grant type"}`
	// BodyBadContentType answers a body that is not form-encoded (400).
	BodyBadContentType = `{"error":"invalid_request","error_description":"Content-Type must be application/x-www-form-urlencoded"}`
	// BodyBadForm answers an unparsable or oversized form (400).
	BodyBadForm = `{"error":"invalid_request","error_description":"Malformed request body"}`
	// BodyMissingRefreshToken answers a refresh grant without refresh_token (400).
	BodyMissingRefreshToken = `{"error":"invalid_request","error_description":"Missing refresh_token"}`
)

const maxFormBytes = 64 << 10

// answer is a complete token-endpoint response prepared under the lock and
// written after it is released.
type answer struct {
	status int
	body   []byte
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	form, formErr := readForm(r)

	s.mu.Lock()
	s.stats.TokenRequests++
	f, faulted := s.nextFaultLocked(form.Get("grant_type"))
	if faulted {
		s.stats.FaultsInjected[f.kind]++
	}
	s.mu.Unlock()

	if faulted {
		if !f.apply(w, r) {
			return // the fault was the whole answer
		}
	}

	a := s.tokenAnswer(r, form, formErr)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(a.body)))
	w.WriteHeader(a.status)
	if s.cfg.SplitWrites {
		http.NewResponseController(w).Flush() //nolint:errcheck // best effort: the body follows anyway
	}
	_, _ = w.Write(a.body)
}

// readForm reads a form-encoded body; errContentType means the body was not
// declared as a form.
func readForm(r *http.Request) (url.Values, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return url.Values{}, errContentType
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxFormBytes+1))
	if err != nil || len(b) > maxFormBytes {
		return url.Values{}, errBadForm
	}
	v, err := url.ParseQuery(string(b))
	if err != nil {
		return url.Values{}, errBadForm
	}
	return v, nil
}

type formError string

func (e formError) Error() string { return string(e) }

const (
	errContentType formError = "content type is not a form"
	errBadForm     formError = "malformed form"
)

// tokenAnswer applies Schwab's rules to one token request.
func (s *Server) tokenAnswer(r *http.Request, form url.Values, formErr error) answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	reject := func(body string) answer {
		s.stats.Rejected++
		return answer{http.StatusBadRequest, []byte(body)}
	}
	if !s.clientOK(r) {
		s.stats.Rejected++
		return answer{http.StatusUnauthorized, []byte(BodyUnauthorized)}
	}
	switch formErr {
	case nil:
	case errContentType:
		return reject(BodyBadContentType)
	default:
		return reject(BodyBadForm)
	}
	now := s.cfg.Now()
	switch form.Get("grant_type") {
	case "refresh_token":
		rt := form.Get("refresh_token")
		if rt == "" {
			return reject(BodyMissingRefreshToken)
		}
		e, ok := s.refresh[rt]
		if !ok || e.superseded {
			return reject(BodySuperseded)
		}
		if !now.Before(e.issued.Add(s.cfg.RefreshTokenLifetime)) {
			return reject(BodyRefreshExpired)
		}
		s.stats.Refreshes++
		return ok200(s.issueLocked(rt, now))
	case "authorization_code":
		code := form.Get("code")
		c, ok := s.codes[code]
		if !ok || c.used {
			return reject(BodyCodeInvalid)
		}
		if !now.Before(c.issued.Add(s.cfg.CodeLifetime)) {
			delete(s.codes, code)
			return reject(BodyCodeExpired)
		}
		if form.Get("redirect_uri") != s.cfg.CallbackURL {
			return reject(BodyRedirectMismatch)
		}
		c.used = true
		s.stats.Exchanges++
		return ok200(s.loginLocked(now))
	default:
		return reject(BodyUnsupportedGrant)
	}
}

func ok200(t tokenResponse) answer {
	b, _ := json.Marshal(t)
	return answer{http.StatusOK, b}
}

// clientOK checks HTTP Basic credentials against the app key and secret.
// RFC 6749 section 2.3.1 form-encodes both before Basic encoding (and
// golang.org/x/oauth2 does so), so the decoded form is accepted as well as
// the raw one.
func (s *Server) clientOK(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	return (eq(user, s.cfg.AppKey) && eq(pass, s.cfg.AppSecret)) ||
		(eq(unescape(user), s.cfg.AppKey) && eq(unescape(pass), s.cfg.AppSecret))
}

func eq(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func unescape(s string) string {
	u, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return u
}

// codeLocked issues a new single-use authorization code.
func (s *Server) codeLocked(now time.Time) string {
	if len(s.codes) > 1024 {
		for c, e := range s.codes {
			if e.used || !now.Before(e.issued.Add(s.cfg.CodeLifetime)) {
				delete(s.codes, c)
			}
		}
	}
	code := randomToken("C0.", 48) + "@"
	s.codes[code] = &codeEntry{issued: now}
	s.stats.CodesIssued++
	return code
}
