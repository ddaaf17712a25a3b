// Package schwab talks to Charles Schwab's OAuth token endpoint: it refreshes
// an access token and exchanges an authorization code, using
// golang.org/x/oauth2 for the requests.
//
// Every failure is a *Error whose Kind says what the caller should do:
// KindTransient (try again later) or KindRelogin (the refresh token or the
// app credentials are no longer accepted; a human must log in again).
// Classify is the single place that makes that decision; RetryAdvice gives
// the refresh loop its reading of any error. A token response is used only
// within bounds: tokens at most 4 KiB of printable ASCII, expires_in from 1 s
// to 24 h; anything else is a transient failure. Error texts never contain
// a token, an authorization code or the app secret.
package schwab
