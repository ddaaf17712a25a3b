package login

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/schwabtools/token-refresh-sender/schwab"
)

// Errors Run's failures match with errors.Is, for callers that pick an exit
// status or a hint by cause. The texts are for the operator.
var (
	// ErrDenied: the browser came back with an OAuth error (the user clicked
	// Deny, or Schwab refused the request).
	ErrDenied = errors.New("login denied in the browser")
	// ErrStateMismatch: a redirect (a code or an error) without this
	// login's state: none, another login's, or a forged one. Run refuses
	// such a redirect and keeps waiting; ParseRedirect returns it.
	ErrStateMismatch = errors.New("login state mismatch")
	// ErrTimeout: no callback (or pasted address) arrived in time.
	ErrTimeout = errors.New("login timed out")
	// ErrExchange: Schwab did not trade the authorization code for tokens.
	ErrExchange = errors.New("authorization code exchange failed")
	// ErrNotSaved: Schwab issued tokens but the token file could not be
	// written; the previous refresh token is no longer valid.
	ErrNotSaved = errors.New("new tokens not saved")
)

// loginError is one line for the operator that matches a sentinel (kind) and
// unwraps to its cause.
type loginError struct {
	msg  string
	kind error // one of the sentinels above, or nil
	err  error
}

func (e *loginError) Error() string { return e.msg }

func (e *loginError) Is(target error) bool { return e.kind != nil && target == e.kind }

func (e *loginError) Unwrap() error { return e.err }

func newError(kind error, cause error, format string, args ...any) error {
	return &loginError{msg: fmt.Sprintf(format, args...), kind: kind, err: cause}
}

// exchangeError explains a failed code exchange: which problem it was and
// what to do. configPath and tokenFile are named in the message.
func exchangeError(err error, configPath, tokenFile string) error {
	kept := "; token file " + tokenFile + " was not changed"
	var se *schwab.Error
	if !errors.As(err, &se) {
		return newError(ErrExchange, err, "could not exchange the authorization code for tokens: %v; run login again%s", err, kept)
	}
	desc := strings.ToLower(se.Description)
	var why string
	switch {
	case strings.Contains(desc, "expired"):
		why = "the authorization code expired before it could be exchanged (it lives about 30 seconds); run login again and finish within 30 seconds"
	case strings.Contains(desc, "redirect"):
		why = "Schwab rejected the redirect URI: callback_url in " + configPath +
			" must match your app's registered callback URL exactly; fix it and run login again"
	case se.StatusCode == 401 || se.Code == "invalid_client":
		why = "Schwab rejected the app key/secret: check app_key and app_secret in " + configPath +
			" (or SCHWAB_APP_KEY/SCHWAB_APP_SECRET) and run login again"
	case strings.Contains(desc, "authorization code") || strings.Contains(desc, "authorizationcode"):
		why = "Schwab did not accept the authorization code (it is single use and may have been used already); run login again"
	case se.Kind == schwab.KindTransient:
		why = "could not get tokens from Schwab (the code cannot be retried later: it lives about 30 seconds); run login again"
	default:
		why = "Schwab refused the authorization code; run login again"
	}
	return newError(ErrExchange, err, "%s (Schwab: %v)%s", why, se, kept)
}

// clean makes an untrusted value (a query parameter from the browser) safe
// to print on one line: control characters become spaces and it is cut to
// 100 characters.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > 100 {
		s = string(r[:100]) + "..."
	}
	return s
}
