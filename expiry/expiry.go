// Package expiry tracks the refresh token's 7-day lifetime and decides when
// to warn the operator that a new browser login is due.
//
// Schwab's refresh token expires a fixed time after the login that issued it
// (7 days by default). The token file records that login time in
// refresh_token_issued_at; when the key is absent the age is unknown and is
// reported as unknown, never guessed from creation_timestamp.
//
// A [Tracker] is fed the current issue time and the wall clock on every
// daemon event and at least hourly. It returns each warning once: when less
// than 24 h, 12 h, 6 h and 1 h remain, and once more when the token has
// expired. A new login (a different issue time) starts over.
package expiry

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/logging"
)

// DefaultLifetime is how long Schwab accepts a refresh token after the
// login that issued it.
const DefaultLifetime = tokensender.RefreshTokenLifetime

// DefaultThresholds are the times left at which a Tracker warns, unless
// Tracker.Thresholds says otherwise.
func DefaultThresholds() []time.Duration {
	return []time.Duration{24 * time.Hour, 12 * time.Hour, 6 * time.Hour, time.Hour}
}

// ExpiresAt is when a refresh token issued at issuedAt stops working. ok is
// false when issuedAt is the zero time (age unknown). A lifetime of zero or
// less means DefaultLifetime.
func ExpiresAt(issuedAt time.Time, lifetime time.Duration) (time.Time, bool) {
	if issuedAt.IsZero() {
		return time.Time{}, false
	}
	if lifetime <= 0 {
		lifetime = DefaultLifetime
	}
	return issuedAt.Add(lifetime), true
}

// Warning is one message for the operator, to log at Level and, when it is a
// warning, to pass on to the alert hooks.
type Warning struct {
	// Level is slog.LevelWarn when the refresh token expires soon or has
	// expired, and slog.LevelInfo for the one-time notice that its age is
	// unknown.
	Level slog.Level
	// Left is the time left at the check (zero or less once expired; zero
	// when the age is unknown).
	Left time.Duration
	// ExpiresAt is when the refresh token expires; the zero time when the
	// age is unknown.
	ExpiresAt time.Time
	// Message is the log line, without level or timestamp. It names
	// `token-refresh-sender login` and never contains a token.
	Message string
}

// Known reports whether the warning is about a known expiry time, rather
// than the notice that the refresh token's age is unknown.
func (w Warning) Known() bool { return !w.ExpiresAt.IsZero() }

// Tracker remembers which warnings it already gave for the current refresh
// token. The zero Tracker is ready to use with the defaults; set the fields
// before the first Check. It is safe for concurrent use.
type Tracker struct {
	// Lifetime is the refresh token's lifetime (--refresh-token-lifetime);
	// zero means DefaultLifetime.
	Lifetime time.Duration
	// Thresholds are the times left at which to warn; nil means
	// DefaultThresholds. Expiry itself always warns once more.
	Thresholds []time.Duration
	// TokenFile is named in the notice about an unknown age.
	TokenFile string

	mu      sync.Mutex
	started bool
	issued  time.Time // the issue time the state below belongs to
	done    map[time.Duration]bool
}

// Check returns the warnings due at now for a refresh token issued at
// issuedAt (the zero time: unknown). Each threshold fires at most once per
// issue time, and a call fires at most one warning: when several thresholds
// were crossed since the last call (at start-up, or after a suspend), only
// the smallest one is reported and the larger ones count as done. An unknown
// issue time gives one informational notice, once until the issue time
// changes. A new issue time (a new login) starts over.
func (t *Tracker) Check(issuedAt, now time.Time) []Warning {
	t.mu.Lock()
	defer t.mu.Unlock()
	issuedAt = issuedAt.Round(0) // compare wall clock only
	if !t.started || !issuedAt.Equal(t.issued) {
		t.started = true
		t.issued = issuedAt
		t.done = map[time.Duration]bool{}
	}

	expires, ok := ExpiresAt(issuedAt, t.Lifetime)
	if !ok {
		if t.done[unknownKey] {
			return nil
		}
		t.done[unknownKey] = true
		return []Warning{{Level: slog.LevelInfo, Message: unknownMessage(t.TokenFile)}}
	}

	left := expires.Sub(now.Round(0))
	thresholds := t.Thresholds
	if thresholds == nil {
		thresholds = DefaultThresholds()
	}
	// Expiry is the last threshold: "less than nothing left".
	all := append(slices.Clone(thresholds), 0)
	fire := false
	for _, th := range all {
		if th < 0 {
			continue // meaningless; and -1 is unknownKey
		}
		if crossed(left, th) && !t.done[th] {
			t.done[th] = true
			fire = true
		}
	}
	if !fire {
		return nil
	}
	return []Warning{{Level: slog.LevelWarn, Left: left, ExpiresAt: expires, Message: Message(expires, now)}}
}

// unknownKey marks the unknown-age notice as given; thresholds are positive
// or zero, so it never collides with one.
const unknownKey = time.Duration(-1)

// crossed reports whether left is under threshold th; the zero threshold
// (expiry) is crossed once nothing is left.
func crossed(left, th time.Duration) bool {
	if th <= 0 {
		return left <= 0
	}
	return left < th
}

// Message is the operator's line for a refresh token expiring at expires,
// seen at now:
//
//	Refresh token expires in 11 hours 58 minutes (at 2025-11-20 08:44:24): run token-refresh-sender login before then
//	Refresh token expired at 2025-11-20 08:44:24 (2 hours 5 minutes ago): run token-refresh-sender login
//
// Times are local, in the log's layout.
func Message(expires, now time.Time) string {
	at := logging.LocalTime(expires)
	left := expires.Sub(now.Round(0))
	if left <= 0 {
		ago := ""
		if -left >= time.Second {
			ago = " (" + tokensender.HumanDuration(-left) + " ago)"
		}
		return fmt.Sprintf("Refresh token expired at %s%s: run token-refresh-sender login", at, ago)
	}
	return fmt.Sprintf("Refresh token expires in %s (at %s): run token-refresh-sender login before then",
		tokensender.HumanDuration(left), at)
}

func unknownMessage(file string) string {
	where := "the token file"
	if file != "" {
		where = file
	}
	return fmt.Sprintf("Refresh token age unknown (refresh_token_issued_at missing in %s): "+
		"its expiry cannot be predicted; run token-refresh-sender login to start tracking it", where)
}
