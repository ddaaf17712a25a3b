package alert

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/expiry"
	"github.com/schwabtools/token-refresh-sender/logging"
)

// Policy decides which daemon events a person hears about:
//
//   - refresh_failed on the first failure of a streak only (Failures == 1);
//   - relogin_required once per streak of failures;
//   - recovered when a refresh succeeds after failures;
//   - refresh_token_expiring for each expiry.Tracker warning (see Expiring).
//
// Started, Refreshed and Stopping are not notified. The zero Policy uses
// expiry.DefaultLifetime; it is safe for concurrent use.
type Policy struct {
	// Lifetime is the refresh token's lifetime, for
	// RefreshTokenExpiresAt; zero means expiry.DefaultLifetime.
	Lifetime time.Duration

	mu          sync.Mutex
	reloginSent bool
}

// FromEvent returns the notification for ev, and false when ev is not
// notified. Messages are built from ev.Err (which never holds a token) and
// times only.
func (p *Policy) FromEvent(ev tokensender.Event) (Notification, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := Notification{Event: ev.Kind.String()}
	n.RefreshTokenExpiresAt, _ = expiry.ExpiresAt(ev.RefreshTokenIssuedAt, p.Lifetime)
	switch ev.Kind {
	case tokensender.EventRefreshFailed:
		if ev.Failures == 1 {
			p.reloginSent = false // a new streak
		}
		if ev.Failures != 1 {
			return Notification{}, false
		}
		n.Event = EventRefreshFailed
		n.Message = fmt.Sprintf("Token refresh failed: %s. Retrying at %s; %s",
			errText(ev.Err), clock(ev.Next), accessState(ev))
	case tokensender.EventReloginRequired:
		if ev.Failures == 1 {
			p.reloginSent = false
		}
		if p.reloginSent {
			return Notification{}, false
		}
		p.reloginSent = true
		n.Event = EventReloginRequired
		n.Message = fmt.Sprintf("Re-login required: Schwab no longer accepts the refresh token (%s). Run token-refresh-sender login; %s",
			errText(ev.Err), accessState(ev))
	case tokensender.EventRecovered:
		p.reloginSent = false
		n.Event = EventRecovered
		n.Message = fmt.Sprintf("Token refresh recovered after %d failed attempt(s); %s", ev.Failures, accessState(ev))
	case tokensender.EventRefreshed:
		p.reloginSent = false
		return Notification{}, false
	default:
		return Notification{}, false
	}
	return n, true
}

// Expiring is the refresh_token_expiring notification for a Tracker
// warning; false for the informational unknown-age notice.
func Expiring(w expiry.Warning) (Notification, bool) {
	if !w.Known() || w.Level < slog.LevelWarn {
		return Notification{}, false
	}
	return Notification{
		Event:                 EventRefreshTokenExpiring,
		Message:               w.Message,
		RefreshTokenExpiresAt: w.ExpiresAt,
	}, true
}

func errText(err error) string {
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}

// clock is t in the log's layout, local time.
func clock(t time.Time) string {
	if t.IsZero() {
		return "an unknown time"
	}
	return logging.LocalTime(t)
}

// accessState says how long the bot can still trade on the token it holds.
func accessState(ev tokensender.Event) string {
	exp := ev.Token.ExpiresAt
	switch {
	case exp.IsZero():
		return "no access token is held"
	case !ev.At.IsZero() && !ev.At.Before(exp):
		return "the access token expired at " + clock(exp)
	case !ev.At.IsZero():
		return fmt.Sprintf("the access token is valid until %s (%s from now)", clock(exp), tokensender.HumanDuration(exp.Sub(ev.At)))
	}
	return "the access token is valid until " + clock(exp)
}
