package login

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/schwabtools/token-refresh-sender/config"
)

// AuthorizeURL is the page that starts the login: app.AuthorizeURL
// (config.DefaultAuthorizeURL when empty) with client_id = app_key,
// redirect_uri = callback_url exactly as configured, response_type=code and,
// when state is not empty, state. The callback URL must pass
// app.Callback(). The URL holds no secret: the app key is public.
func AuthorizeURL(app *config.App, state string) (string, error) {
	if app == nil {
		return "", errors.New("login: no app config")
	}
	if _, err := app.Callback(); err != nil {
		return "", err
	}
	base := app.AuthorizeURL
	if base == "" {
		base = config.DefaultAuthorizeURL
	}
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("app config %s: authorize_url must be an https:// URL, got %q", app.Path, base)
	}
	q := u.Query()
	q.Set("client_id", app.AppKey)
	q.Set("redirect_uri", app.CallbackURL)
	q.Set("response_type", "code")
	if state != "" {
		q.Set("state", state)
	}
	u.RawQuery = q.Encode()
	u.Fragment = ""
	return u.String(), nil
}

// newState returns a random, unguessable state value.
func newState() string { return rand.Text() }

// errNoCode marks a callback request that carries neither a code nor an
// error (a favicon, a probe): it is not an answer from Schwab.
var errNoCode = errors.New("no code and no error in the address")

// stateError is a redirect (a code or an OAuth error) that does not carry
// this login's state: a stale login page's, or a forged one (login CSRF,
// RFC 6749 section 10.12). It matches ErrStateMismatch. Its text reads
// after a subject ("the request ...", "the pasted address ...") and never
// quotes the state or the code.
type stateError struct {
	has string // "an authorization code" or "an error"
	why string // "no state", "a state that does not match this login", ...
}

func (e *stateError) Error() string {
	return "has " + e.has + " but " + e.why + ", so it is not from this login"
}

func (e *stateError) Is(target error) bool { return target == ErrStateMismatch }

// checkState returns "" when q carries exactly one state equal to want
// (compared in constant time), or else what is wrong with it.
func checkState(q url.Values, want string) string {
	got := q["state"]
	switch {
	case want == "":
		return "this login has no state to compare it with"
	case len(got) == 0 || got[0] == "":
		return "no state"
	case len(got) > 1:
		return "more than one state"
	case subtle.ConstantTimeCompare([]byte(got[0]), []byte(want)) != 1:
		return "a state that does not match this login"
	}
	return ""
}

// readRedirect interprets the query of the address Schwab redirected the
// browser to. A redirect counts only with exactly this login's state
// (wantState): it returns the authorization code, or an error matching
// ErrDenied (an OAuth error with our state). A code or an error without
// our state gives a *stateError (ErrStateMismatch); a query with neither a
// code nor an error gives errNoCode.
func readRedirect(q url.Values, wantState string) (string, error) {
	hasErr := q.Has("error")
	code := q.Get("code")
	if !hasErr && code == "" {
		return "", errNoCode
	}
	if why := checkState(q, wantState); why != "" {
		has := "an authorization code"
		if hasErr {
			has = "an error"
		}
		return "", &stateError{has: has, why: why}
	}
	if hasErr {
		why := clean(q.Get("error"))
		if why == "" {
			why = "no reason given"
		}
		if d := clean(q.Get("error_description")); d != "" && d != why {
			why += ": " + d
		}
		return "", newError(ErrDenied, nil, "login was denied in the browser (%s); run login again and click Allow", why)
	}
	return code, nil
}

// ParseRedirect reads the address the browser was sent to after the user
// clicked Allow, as pasted into the terminal in manual mode, and returns the
// authorization code (decoded: Schwab's "%40" becomes "@").
//
// Surrounding whitespace and one pair of quotes ('...' or "...") are
// ignored, and a missing "https://" in front of the callback's host and
// port is supplied (address bars often hide it). The address must have the scheme, host and port of callback (any
// path) and exactly this login's state, wantState: an address without it
// (no state, another state, an error parameter without our state) gives an
// error matching ErrStateMismatch, and so does an empty wantState. An
// address with an error parameter and our state gives an error matching
// ErrDenied. Error texts never contain the code or a state.
func ParseRedirect(callback *url.URL, pasted string, wantState string) (code string, err error) {
	if callback == nil {
		return "", errors.New("login: no callback URL to compare the pasted address with")
	}
	want := callback.Scheme + "://" + callback.Host
	s := strings.TrimSpace(pasted)
	if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') && s[len(s)-1] == s[0] {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	if s == "" {
		return "", fmt.Errorf("nothing was pasted; paste the whole address from the browser's address bar (it starts with %s)", want)
	}
	if !strings.Contains(s, "://") && len(s) >= len(callback.Host) && strings.EqualFold(s[:len(callback.Host)], callback.Host) {
		s = callback.Scheme + "://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Scheme == "" || strings.ContainsAny(s, " \t\r\n") {
		return "", fmt.Errorf("the pasted text is not a web address; paste the whole address from the browser's address bar (it starts with %s)", want)
	}
	if !sameOrigin(u, callback) {
		return "", fmt.Errorf("the pasted address is for %s, not the callback URL %s (callback_url); paste the address the browser was sent to after you clicked Allow",
			clean(u.Scheme+"://"+u.Host), want)
	}
	q, qerr := url.ParseQuery(u.RawQuery)
	code, err = readRedirect(q, wantState)
	switch {
	case qerr != nil && (err == nil || errors.Is(err, errNoCode)):
		return "", fmt.Errorf("the pasted address is damaged (its query is malformed: %s); copy the whole address again", clean(queryErrText(qerr)))
	case errors.Is(err, errNoCode):
		return "", fmt.Errorf("the pasted address has no code; after you click Allow, copy the whole address the browser shows, which starts with %s/?code=", want)
	case errors.Is(err, ErrStateMismatch):
		return "", newError(ErrStateMismatch, err,
			"the pasted address %v; paste the address the browser shows after you click Allow on the login page printed above", err)
	case err != nil:
		return "", err
	}
	return code, nil
}

// queryErrText describes a url.ParseQuery error without quoting the query
// (which may hold the code).
func queryErrText(err error) string {
	var ee url.EscapeError
	if errors.As(err, &ee) {
		return "bad % escape"
	}
	return "invalid characters"
}

// sameOrigin compares scheme, host name (case-insensitively) and port, the
// port defaulting by scheme.
func sameOrigin(u, callback *url.URL) bool {
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		switch strings.ToLower(u.Scheme) {
		case "https":
			return "443"
		case "http":
			return "80"
		}
		return ""
	}
	return strings.EqualFold(u.Scheme, callback.Scheme) &&
		strings.EqualFold(u.Hostname(), callback.Hostname()) &&
		port(u) == port(callback)
}
