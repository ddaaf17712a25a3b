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
	b.Jitter = func() float64 { return 0.999 }
	if got := b.Delay(1); got > 2*time.Second || got < 1600*time.Millisecond {
		t.Errorf("jittered Delay(1) = %v, want within 20%% below 2s", got)
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
