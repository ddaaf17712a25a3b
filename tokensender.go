// Package tokensender holds the domain words shared by every part of
// token-refresh-sender: the OAuth token the daemon keeps alive, the message it
// pushes to the trading bot, and the redaction rule that keeps secrets out of
// logs.
//
// Data flows one way: config -> schwab (HTTPS) -> tokenfile (atomic write) ->
// delivery (sockets), driven by daemon. Each of those lives in a package of
// its own; this package depends on none of them.
package tokensender

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// DefaultSocketPath is where the trading bot listens for new tokens.
const DefaultSocketPath = "/tmp/bigbrother_token.sock"

// Token is one set of OAuth tokens as Schwab issued them.
type Token struct {
	AccessToken  string
	RefreshToken string
	IDToken      string
	TokenType    string
	Scope        string
	// ExpiresIn is the access token's lifetime in seconds, as Schwab reported it.
	ExpiresIn int64
	// ExpiresAt is when the access token stops working (whole seconds).
	ExpiresAt time.Time
	// RefreshTokenIssuedAt is when the refresh token was issued, i.e. the
	// browser login; zero when unknown (never guessed).
	RefreshTokenIssuedAt time.Time
}

// Expired reports whether the access token is no longer valid at now.
func (t Token) Expired(now time.Time) bool {
	return !now.Before(t.ExpiresAt)
}

// LoginTime is when t's refresh token was issued (the browser login),
// worked out from what is known. It is the one place that rule lives:
//
//   - t's own RefreshTokenIssuedAt, when set (a login, or a file that
//     recorded it, says so);
//   - otherwise, when t keeps the refresh token of prev (the token held
//     before; an empty refresh token means "unchanged", as in a refresh
//     response without one), prev's login time;
//   - otherwise t brings a new refresh token: it was issued no later than
//     seen, the moment it was first seen, in whole seconds like the file.
//
// With nothing held before (prev has no refresh token), an unknown login
// time stays unknown (the zero time): it is never guessed.
func (t Token) LoginTime(prev Token, seen time.Time) time.Time {
	if !t.RefreshTokenIssuedAt.IsZero() {
		return t.RefreshTokenIssuedAt
	}
	if t.RefreshToken == "" || t.RefreshToken == prev.RefreshToken {
		return prev.RefreshTokenIssuedAt
	}
	if prev.RefreshToken == "" {
		return time.Time{}
	}
	return seen.Truncate(time.Second)
}

// Lifetime is the access token's full lifetime, from ExpiresIn.
func (t Token) Lifetime() time.Duration {
	return time.Duration(t.ExpiresIn) * time.Second
}

// Message is what the bot receives over its socket for one token.
func (t Token) Message() Message {
	return Message{
		AccessToken:  t.AccessToken,
		RefreshToken: t.RefreshToken,
		ExpiresAt:    t.ExpiresAt.Unix(),
	}
}

// Message is the payload pushed to the trading bot: one JSON object with
// exactly these three keys, in this order.
type Message struct {
	AccessToken  string
	RefreshToken string
	ExpiresAt    int64 // Unix seconds
}

// Wire returns the exact bytes sent to the bot. They match Python's
// json.dumps with default settings (", " and ": " separators, ASCII-only
// output), which the existing C++ bots parse:
//
//	{"access_token": "...", "refresh_token": "...", "expires_at": 1762984855}
//
// No trailing newline is added: the sender half-closes the connection to
// mark the end of the message.
func (m Message) Wire() []byte {
	b := make([]byte, 0, 64+len(m.AccessToken)+len(m.RefreshToken))
	b = append(b, `{"access_token": `...)
	b = appendPythonString(b, m.AccessToken)
	b = append(b, `, "refresh_token": `...)
	b = appendPythonString(b, m.RefreshToken)
	b = append(b, `, "expires_at": `...)
	b = strconv.AppendInt(b, m.ExpiresAt, 10)
	return append(b, '}')
}

// appendPythonString appends s as a JSON string the way Python's json.dumps
// does with ensure_ascii=True: printable ASCII is copied, everything else is
// escaped, non-BMP runes as UTF-16 surrogate pairs.
func appendPythonString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	u := func(b []byte, r rune) []byte {
		return append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
	}
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, `\n`...)
		case r == '\r':
			b = append(b, `\r`...)
		case r == '\t':
			b = append(b, `\t`...)
		case r == '\b':
			b = append(b, `\b`...)
		case r == '\f':
			b = append(b, `\f`...)
		case r >= ' ' && r <= '~':
			b = append(b, byte(r))
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			b = u(u(b, r1), r2)
		default:
			// Control characters, DEL, BMP runes, and invalid UTF-8
			// (utf8.RuneError, as Python would have refused to hold it).
			b = u(b, r)
		}
	}
	return append(b, '"')
}

// Redact returns a short, safe prefix of a secret for logs and messages: at
// most 8 characters and never more than a quarter of the secret, followed by
// "...". An empty secret is shown as "(empty)".
func Redact(secret string) string {
	if secret == "" {
		return "(empty)"
	}
	n := min(8, utf8.RuneCountInString(secret)/4)
	var sb strings.Builder
	for _, r := range secret {
		if n == 0 {
			break
		}
		sb.WriteRune(r)
		n--
	}
	return sb.String() + "..."
}

// String shows the token with its secrets redacted, so that a stray %v in a
// log line or error never prints a whole token.
func (t Token) String() string {
	return fmt.Sprintf("Token{access %s, refresh %s, expires %s}",
		Redact(t.AccessToken), Redact(t.RefreshToken), t.ExpiresAt.UTC().Format(time.RFC3339))
}

// GoString is String, for %#v.
func (t Token) GoString() string { return t.String() }

// LogValue keeps slog from printing the secrets.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// String shows the message with its secrets redacted.
func (m Message) String() string {
	return fmt.Sprintf("Message{access %s, refresh %s, expires_at %d}", Redact(m.AccessToken), Redact(m.RefreshToken), m.ExpiresAt)
}

// GoString is String, for %#v.
func (m Message) GoString() string { return m.String() }

// LogValue keeps slog from printing the secrets.
func (m Message) LogValue() slog.Value { return slog.StringValue(m.String()) }
