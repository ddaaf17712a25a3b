package daemon

import (
	"math/rand/v2"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
)

// MaxExpiryMargin is how long before the access token's expiry the daemon
// refreshes at the latest, for Schwab's 30-minute tokens.
const MaxExpiryMargin = 5 * time.Minute

// ExpiryMargin is how long before tok expires a refresh must have happened:
// five minutes, or a sixth of the token's lifetime for short-lived tokens
// (the same proportion as 5 of Schwab's 30 minutes).
func ExpiryMargin(tok tokensender.Token) time.Duration {
	if tok.ExpiresIn <= 0 {
		return MaxExpiryMargin
	}
	return min(MaxExpiryMargin, tok.Lifetime()/6)
}

// MinRefreshGap is the shortest wait after a successful refresh, so that a
// token that looks expired on arrival (a wrong clock) cannot make the
// daemon hammer Schwab.
const MinRefreshGap = time.Second

// NextRefresh is when the next regular refresh is due after a successful one
// at now: one interval later, but never later than ExpiryMargin before the
// access token expires, and never sooner than MinRefreshGap.
func NextRefresh(now time.Time, tok tokensender.Token, interval time.Duration) time.Time {
	next := now.Add(interval)
	if !tok.ExpiresAt.IsZero() {
		if latest := tok.ExpiresAt.Add(-ExpiryMargin(tok)); latest.Before(next) {
			next = latest
		}
	}
	return later(next, now.Add(MinRefreshGap))
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Backoff chooses the delay before retry number failures (1 for the first
// retry) after a transient failure: exponential from Min, capped at Max,
// with up to 20% random jitter subtracted so that many daemons restarted
// together do not retry in lockstep.
type Backoff struct {
	Min, Max time.Duration
	// Jitter returns a number in [0, 1); nil means math/rand.
	Jitter func() float64
}

// Delay returns the wait before the next attempt after the given number of
// consecutive failures (>= 1).
func (b Backoff) Delay(failures int) time.Duration {
	d := b.Min
	for i := 1; i < failures && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	jitter := b.Jitter
	if jitter == nil {
		jitter = rand.Float64
	}
	return d - time.Duration(float64(d)*0.2*jitter())
}

// NextRetry is when to try again after a transient failure at now: after the
// backoff delay, later if the server asked for it with Retry-After, but
// never after the access token we hold expires (while it still works, one
// more attempt before it lapses beats a polite wait).
func NextRetry(now time.Time, delay, retryAfter time.Duration, held tokensender.Token) time.Time {
	next := now.Add(max(delay, retryAfter))
	if expires := held.ExpiresAt; !expires.IsZero() && now.Before(expires) && expires.Before(next) {
		next = expires.Add(-time.Second)
		if next.Before(now) {
			next = now
		}
	}
	return next
}

// LimitRetryAfter bounds a server-requested wait (Retry-After): while the
// bot holds no valid token, or the held one is within its refresh margin
// (see ExpiryMargin), no wait longer than limit (--retry-max) is honoured, so
// a hostile or mistaken "come back tomorrow" cannot leave the bot without
// a token. capped reports that the wait was cut.
func LimitRetryAfter(now time.Time, retryAfter, limit time.Duration, held tokensender.Token) (wait time.Duration, capped bool) {
	needed := !now.Before(held.ExpiresAt.Add(-ExpiryMargin(held)))
	if needed && retryAfter > limit {
		return limit, true
	}
	return retryAfter, false
}
