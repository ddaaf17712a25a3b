package login

import (
	"crypto/rand"
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

// readRedirect interprets the query of the address Schwab redirected the
// browser to. It returns the authorization code, or errNoCode, or an error
// matching ErrDenied or ErrStateMismatch. wantState is checked only when the
// query has a state (Schwab may not echo it).
func readRedirect(q url.Values, wantState string) (string, error) {
	if e := q.Get("error"); e != "" || q.Has("error") {
		why := clean(e)
		if why == "" {
			why = "no reason given"
		}
		if d := clean(q.Get("error_description")); d != "" && d != why {
			why += ": " + d
		}
		return "", newError(ErrDenied, nil, "login was denied in the browser (%s); run login again and click Allow", why)
	}
	code := q.Get("code")
	if code == "" {
		return "", errNoCode
	}
	if q.Has("state") && wantState != "" && q.Get("state") != wantState {
		return "", newError(ErrStateMismatch, nil,
			"the redirect belongs to a different login attempt (its state does not match this one); run login again and use only the newest login page")
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
// path); its state, when present, must equal wantState (unless wantState is
// empty). An address with an error parameter gives an error matching
// ErrDenied. Error texts never contain the code.
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
