// Package status answers "will the trading bot keep getting tokens?" for a
// person and for monitoring systems, from the token file alone. It never
// refreshes and never writes anything.
//
// A [Report] says when the access token and the refresh token expire, when
// the last refresh happened, and whether each bot socket accepts
// connections. Its state follows the Nagios plugin convention, so the exit
// code can feed a monitoring system directly:
//
//	0 ok        the tokens are good
//	1 warning   the refresh token has less than 24 hours left, its age is
//	            unknown (no refresh_token_issued_at: its expiry cannot be
//	            tracked), or the access token has expired while the refresh
//	            token is still good
//	2 critical  the refresh token has expired
//	3 unknown   the token file is missing, unreadable or corrupt
//
// Sockets are shown but do not change the state: they are the bot's health,
// not the tokens'.
package status

import (
	"errors"
	"fmt"
	"strings"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/delivery"
	"github.com/schwabtools/token-refresh-sender/expiry"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// State is the overall verdict, as monitoring systems name it.
type State string

// The states, from best to worst (Unknown is reported apart).
const (
	OK       State = "ok"
	Warning  State = "warning"
	Critical State = "critical"
	Unknown  State = "unknown"
)

// ExitCode is the Nagios plugin exit code for s: 0, 1, 2 or 3.
func (s State) ExitCode() int {
	switch s {
	case OK:
		return 0
	case Warning:
		return 1
	case Critical:
		return 2
	}
	return 3
}

// WarnBefore is how much of the refresh token's life must be left for the
// state to stay ok.
const WarnBefore = 24 * time.Hour

// Report is the result of one Check.
type Report struct {
	State   State
	Message string // one line: the most important thing to know
	// TokenFile is the file that was read.
	TokenFile string
	// CheckedAt is the now passed to Check; relative times count from it.
	CheckedAt time.Time
	// AccessTokenExpiresAt is token.expires_at; nil when absent.
	AccessTokenExpiresAt *time.Time
	// RefreshTokenIssuedAt is refresh_token_issued_at; nil when unknown.
	RefreshTokenIssuedAt *time.Time
	// RefreshTokenExpiresAt is the issue time plus the lifetime; nil when
	// the issue time is unknown.
	RefreshTokenExpiresAt *time.Time
	// LastRefreshAt is creation_timestamp; nil when absent.
	LastRefreshAt *time.Time
	Sockets       []SocketStatus
	// loaded: the token file was read, so the times above mean something.
	loaded bool
}

// ExitCode is r.State's exit code.
func (r Report) ExitCode() int { return r.State.ExitCode() }

// Check reads tokenFile (and nothing else), probes each socket, and judges
// the tokens at now. lifetime is the refresh token's lifetime; zero means
// expiry.DefaultLifetime.
func Check(tokenFile string, sockets []delivery.Address, lifetime time.Duration, now time.Time) Report {
	r := judge(tokenFile, lifetime, now)
	r.Sockets = make([]SocketStatus, 0, len(sockets))
	for _, a := range sockets {
		r.Sockets = append(r.Sockets, Probe(a, ProbeTimeout))
	}
	return r
}

// judge is Check without the sockets.
func judge(tokenFile string, lifetime time.Duration, now time.Time) Report {
	now = now.Round(0)
	r := Report{TokenFile: tokenFile, CheckedAt: now}
	doc, err := tokenfile.Load(tokenFile)
	if err != nil {
		// No file, or a file without a refresh token: no usable token, and
		// only a login helps. Anything else: we cannot tell.
		r.State = Unknown
		r.Message = err.Error()
		if errors.Is(err, tokenfile.ErrNotFound) || errors.Is(err, tokenfile.ErrNoRefreshToken) {
			r.State = Critical
		}
		if errors.Is(err, tokenfile.ErrNotFound) {
			r.Message += "; run token-refresh-sender login to create it"
		}
		return r
	}
	r.loaded = true
	tok := doc.Token()
	if !tok.ExpiresAt.IsZero() && tok.AccessToken != "" {
		r.AccessTokenExpiresAt = ptr(tok.ExpiresAt)
	}
	if t := doc.CreatedAt(); !t.IsZero() {
		r.LastRefreshAt = ptr(t)
	}
	issued, known := doc.RefreshTokenIssuedAt()
	if known {
		r.RefreshTokenIssuedAt = ptr(issued)
		exp, _ := expiry.ExpiresAt(issued, lifetime)
		r.RefreshTokenExpiresAt = ptr(exp)
	}

	var access string // the access token's condition, as a clause
	accessGood := false
	switch {
	case r.AccessTokenExpiresAt == nil:
		access = "no access token in the file yet"
	case tok.Expired(now):
		access = fmt.Sprintf("the access token expired %s ago (is the daemon running?)", human(now.Sub(tok.ExpiresAt)))
	default:
		accessGood = true
		access = "access token valid for " + human(tok.ExpiresAt.Sub(now))
	}

	switch {
	case !known:
		// Not knowing when the refresh token dies is not OK: the bot would
		// stop without warning.
		r.State = Warning
		r.Message = fmt.Sprintf("Refresh token age unknown (refresh_token_issued_at missing): its expiry %s after the login cannot be tracked; "+
			"run token-refresh-sender login, or let the running daemon see the next login; %s",
			human(lifetimeOrDefault(lifetime)), access)
	case !now.Before(*r.RefreshTokenExpiresAt):
		r.State = Critical
		r.Message = expiry.Message(*r.RefreshTokenExpiresAt, now)
	case r.RefreshTokenExpiresAt.Sub(now) < WarnBefore:
		r.State = Warning
		r.Message = expiry.Message(*r.RefreshTokenExpiresAt, now)
		if !accessGood {
			r.Message += "; " + access
		}
	case !accessGood:
		r.State = Warning
		r.Message = capitalize(access) + "; the refresh token is good for " + human(r.RefreshTokenExpiresAt.Sub(now))
	default:
		r.State = OK
		r.Message = fmt.Sprintf("Tokens are good: %s, refresh token for %s", access, human(r.RefreshTokenExpiresAt.Sub(now)))
	}
	return r
}

// lifetimeOrDefault is lifetime, or expiry.DefaultLifetime when it is zero
// or less.
func lifetimeOrDefault(lifetime time.Duration) time.Duration {
	if lifetime <= 0 {
		return expiry.DefaultLifetime
	}
	return lifetime
}

func ptr(t time.Time) *time.Time { return &t }

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// human is d for people; "0 seconds" rather than "0 ms" when under a second.
func human(d time.Duration) string {
	if d.Abs() < time.Second {
		return "0 seconds"
	}
	return tokensender.HumanDuration(d)
}

// relative says how t relates to now: "in 23 minutes", or past "ago" / past
// "expired 5 minutes ago" (pastWord decides).
func relative(t, now time.Time, pastWord string) string {
	d := t.Sub(now)
	if d > 0 {
		return "in " + human(d)
	}
	if pastWord != "" {
		pastWord += " "
	}
	return pastWord + human(-d) + " ago"
}
