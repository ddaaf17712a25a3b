package daemon_test

import (
	"testing"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/daemon"
)

func TestNextRefresh(t *testing.T) {
	now := time.Unix(1762983055, 0)
	tok := func(lifetime, left time.Duration) tokensender.Token {
		return tokensender.Token{ExpiresIn: int64(lifetime / time.Second), ExpiresAt: now.Add(left)}
	}
	tests := []struct {
		name     string
		tok      tokensender.Token
		interval time.Duration
		want     time.Duration
	}{
		{"seed: 25 of 30 minutes", tok(30*time.Minute, 30*time.Minute), 25 * time.Minute, 25 * time.Minute},
		{"interval too long: 5 minutes before expiry", tok(30*time.Minute, 30*time.Minute), time.Hour, 25 * time.Minute},
		{"short tokens: a sixth of the lifetime before expiry", tok(10*time.Second, 10*time.Second), time.Minute, 8333333334 * time.Nanosecond},
		{"demo: 7 s of 10 s", tok(10*time.Second, 10*time.Second), 7 * time.Second, 7 * time.Second},
		{"already past the margin: after the minimum gap", tok(30*time.Minute, time.Minute), 25 * time.Minute, daemon.MinRefreshGap},
		{"expired on arrival (wrong clock): no hammering", tok(30*time.Minute, -time.Hour), 25 * time.Minute, daemon.MinRefreshGap},
		{"unknown lifetime: 5 minute margin", tok(0, 20*time.Minute), 25 * time.Minute, 15 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := daemon.NextRefresh(now, tt.tok, tt.interval).Sub(now)
			if got.Round(time.Millisecond) != tt.want.Round(time.Millisecond) {
				t.Errorf("NextRefresh in %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBackoff_Delay(t *testing.T) {
	b := daemon.Backoff{Min: 2 * time.Second, Max: 2 * time.Minute, Jitter: func() float64 { return 0 }}
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, 64 * time.Second, 2 * time.Minute, 2 * time.Minute}
	for i, w := range want {
		if got := b.Delay(i + 1); got != w {
			t.Errorf("Delay(%d) = %v, want %v", i+1, got, w)
		}
	}
	// The jitter takes up to 20% off, in proportion.
	for _, tt := range []struct {
		jitter   float64
		failures int
		want     time.Duration
	}{
		{0.5, 1, 1800 * time.Millisecond},
		{0.25, 3, 7600 * time.Millisecond},
		{0.999, 9, 96024 * time.Millisecond},
	} {
		b.Jitter = func() float64 { return tt.jitter }
		if got := b.Delay(tt.failures); got != tt.want {
			t.Errorf("Delay(%d) with jitter %v = %v, want %v", tt.failures, tt.jitter, got, tt.want)
		}
	}
}

func TestBackoff_Delay_defaultJitterSpreadsRetries(t *testing.T) {
	b := daemon.Backoff{Min: 10 * time.Second, Max: time.Minute}
	seen := map[time.Duration]bool{}
	for range 64 {
		d := b.Delay(1)
		if d > 10*time.Second || d <= 8*time.Second {
			t.Fatalf("Delay(1) = %v, want in (8s, 10s]", d)
		}
		seen[d] = true
	}
	// 64 draws of a random float64 landing on fewer than 2 distinct values
	// means no jitter at all.
	if len(seen) < 2 {
		t.Errorf("64 delays took %d distinct values: jitter is not applied", len(seen))
	}
}

func TestNextRetry(t *testing.T) {
	now := time.Unix(1762983055, 0)
	held := tokensender.Token{ExpiresAt: now.Add(30 * time.Second)}
	tests := []struct {
		name              string
		delay, retryAfter time.Duration
		held              tokensender.Token
		want              time.Duration
	}{
		{"backoff", 2 * time.Second, 0, held, 2 * time.Second},
		{"Retry-After is honoured", 2 * time.Second, 10 * time.Second, held, 10 * time.Second},
		{"never after the held token expires", 2 * time.Minute, 0, held, 29 * time.Second},
		{"Retry-After yields to expiry too", time.Second, time.Minute, held, 29 * time.Second},
		{"expired token: plain backoff", 2 * time.Minute, 0, tokensender.Token{ExpiresAt: now.Add(-time.Second)}, 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := daemon.NextRetry(now, tt.delay, tt.retryAfter, tt.held).Sub(now); got != tt.want {
				t.Errorf("NextRetry in %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLimitRetryAfter(t *testing.T) {
	now := time.Unix(1762983055, 0)
	limit := 2 * time.Minute
	token := func(left time.Duration) tokensender.Token {
		return tokensender.Token{ExpiresIn: 1800, ExpiresAt: now.Add(left)}
	}
	tests := []struct {
		name       string
		retryAfter time.Duration
		held       tokensender.Token
		want       time.Duration
		capped     bool
	}{
		{"expired: a day is cut to the limit", 24 * time.Hour, token(-time.Second), limit, true},
		{"expiring now: cut", time.Hour, token(0), limit, true},
		{"within the margin: cut", time.Hour, token(5 * time.Minute), limit, true},
		{"just outside the margin: honoured", time.Hour, token(5*time.Minute + time.Second), time.Hour, false},
		{"no token held at all: cut", time.Hour, tokensender.Token{}, limit, true},
		{"short token, margin a sixth of 60 s: outside", time.Hour, tokensender.Token{ExpiresIn: 60, ExpiresAt: now.Add(11 * time.Second)}, time.Hour, false},
		{"short token, margin a sixth of 60 s: inside", time.Hour, tokensender.Token{ExpiresIn: 60, ExpiresAt: now.Add(10 * time.Second)}, limit, true},
		{"exactly the limit: not cut", limit, token(-time.Second), limit, false},
		{"below the limit: honoured", time.Minute, token(-time.Second), time.Minute, false},
		{"none asked", 0, token(-time.Second), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, capped := daemon.LimitRetryAfter(now, tt.retryAfter, limit, tt.held)
			if got != tt.want || capped != tt.capped {
				t.Errorf("LimitRetryAfter = %v, %v; want %v, %v", got, capped, tt.want, tt.capped)
			}
		})
	}
}
