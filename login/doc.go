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
// The authorization code lives about 30 seconds and is single use, so it is
// exchanged for tokens at once. Only when the new tokens are in hand is the
// token file replaced (atomically, mode 0600, under the token file's lock);
// on every failure the old file is left as it was.
//
// No token, authorization code or app secret appears in a log line, an
// error or a browser page.
package login
