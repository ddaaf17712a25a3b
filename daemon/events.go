package daemon

import (
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
)

// EventKind names what just happened in the loop.
type EventKind int

const (
	// Started: the loop is configured and about to make its first refresh.
	Started EventKind = iota + 1
	// Refreshed: a refresh succeeded (Token, Duration, Next are set).
	Refreshed
	// RefreshFailed: a transient failure (Err, Failures, Next are set).
	RefreshFailed
	// ReloginRequired: Schwab no longer accepts the refresh token.
	ReloginRequired
	// Recovered: a refresh succeeded after one or more failures.
	Recovered
	// Stopping: the loop is shutting down.
	Stopping
)

func (k EventKind) String() string {
	switch k {
	case Started:
		return "started"
	case Refreshed:
		return "refreshed"
	case RefreshFailed:
		return "refresh_failed"
	case ReloginRequired:
		return "relogin_required"
	case Recovered:
		return "recovered"
	case Stopping:
		return "stopping"
	}
	return "unknown"
}

// Event is what observers (metrics, alert hooks, systemd) hear from the
// loop. It never carries a secret except inside Token, which observers
// must not print.
type Event struct {
	Kind EventKind
	At   time.Time
	// Token is the newest good token the loop holds (zero before the
	// first successful load).
	Token tokensender.Token
	// RefreshTokenIssuedAt is when the refresh token was issued (login
	// time); zero when unknown.
	RefreshTokenIssuedAt time.Time
	Err                  error         // RefreshFailed, ReloginRequired
	Failures             int           // consecutive failures so far
	Duration             time.Duration // how long the refresh request took
	Next                 time.Time     // when the next attempt is due
}
