package tokensender

import "time"

// EventKind names what just happened in the refresh loop.
type EventKind int

const (
	// EventStarted: the loop is configured and about to make its first refresh.
	EventStarted EventKind = iota + 1
	// EventRefreshed: a refresh succeeded (Token, Duration, Next are set).
	EventRefreshed
	// EventRefreshFailed: a transient failure (Err, Failures, Next are set).
	EventRefreshFailed
	// EventReloginRequired: Schwab no longer accepts the refresh token.
	EventReloginRequired
	// EventRecovered: a refresh succeeded after one or more failures.
	EventRecovered
	// EventStopping: the loop is shutting down.
	EventStopping
)

func (k EventKind) String() string {
	switch k {
	case EventStarted:
		return "started"
	case EventRefreshed:
		return "refreshed"
	case EventRefreshFailed:
		return "refresh_failed"
	case EventReloginRequired:
		return "relogin_required"
	case EventRecovered:
		return "recovered"
	case EventStopping:
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
	Token Token
	// RefreshTokenIssuedAt is when the refresh token was issued (login
	// time); zero when unknown.
	RefreshTokenIssuedAt time.Time
	Err                  error         // EventRefreshFailed, EventReloginRequired
	Failures             int           // consecutive failures so far
	Duration             time.Duration // how long the refresh request took
	Next                 time.Time     // when the next attempt is due
}
