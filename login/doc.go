// Package login performs the browser login that gives token-refresh-sender
// its first tokens: Schwab's OAuth authorization-code flow.
//
// Run builds the authorize URL from the app config (client_id = app_key,
// redirect_uri = callback_url exactly as configured, response_type=code and
// a random state), prints it, optionally opens a browser, and then either
//
//   - serves the callback URL over HTTPS on this machine with a self-signed
//     certificate made in memory, and waits for Schwab's redirect; or
//   - in manual mode (SSH, headless machines), reads the address the browser
//     was sent to from an io.Reader (the terminal) instead.
//
// A redirect counts only when it carries exactly the state this login sent
// (compared in constant time): a code or an error without it (a stale login
// page, or another local user's own code sent to our callback, RFC 6749
// section 10.12) is refused with a 400 page and a WARNING, and the login
// keeps waiting until its timeout; a pasted address without it is refused
// and asked for again.
//
// The authorization code lives about 30 seconds and is single use, so it is
// exchanged for tokens at once. Only when the new tokens are in hand is the
// token file rewritten (atomically, under the token file's lock): the new
// token is applied to the existing document, so other tools' keys survive,
// and refresh_token_issued_at becomes the login time. On every failure the
// old file is left as it was.
//
// No token, authorization code or app secret appears in a log line, an
// error or a browser page.
package login
