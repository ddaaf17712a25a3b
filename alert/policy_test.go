package alert_test

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/alert"
	"github.com/schwabtools/token-refresh-sender/expiry"
)

func TestPolicy_FromEvent(t *testing.T) {
	ev := func(kind tokensender.EventKind, failures int) tokensender.Event {
		e := failedEvent()
		e.Kind = kind
		e.Failures = failures
		if kind == tokensender.EventRecovered || kind == tokensender.EventRefreshed || kind == tokensender.EventStarted || kind == tokensender.EventStopping {
			e.Err = nil
			e.Token.ExpiresAt = now.Add(30 * time.Minute)
		}
		return e
	}
	tests := []struct {
		name   string
		events []tokensender.Event
		want   []string // event name per input, "" when not notified
	}{
		{
			name:   "quiet when all is well",
			events: []tokensender.Event{ev(tokensender.EventStarted, 0), ev(tokensender.EventRefreshed, 0), ev(tokensender.EventStopping, 0)},
			want:   []string{"", "", ""},
		},
		{
			name: "refresh_failed on the first failure of each streak",
			events: []tokensender.Event{
				ev(tokensender.EventRefreshFailed, 1), ev(tokensender.EventRefreshFailed, 2), ev(tokensender.EventRefreshFailed, 3),
				ev(tokensender.EventRecovered, 3), ev(tokensender.EventRefreshed, 0),
				ev(tokensender.EventRefreshFailed, 1),
			},
			want: []string{"refresh_failed", "", "", "recovered", "", "refresh_failed"},
		},
		{
			name: "relogin_required once per streak",
			events: []tokensender.Event{
				ev(tokensender.EventRefreshFailed, 1), ev(tokensender.EventReloginRequired, 2), ev(tokensender.EventReloginRequired, 3),
				ev(tokensender.EventRefreshFailed, 4), ev(tokensender.EventReloginRequired, 5),
				ev(tokensender.EventRecovered, 5), ev(tokensender.EventRefreshed, 0),
				ev(tokensender.EventReloginRequired, 1), ev(tokensender.EventReloginRequired, 2),
			},
			want: []string{"refresh_failed", "relogin_required", "", "", "", "recovered", "", "relogin_required", ""},
		},
		{
			name: "a streak that starts with relogin",
			events: []tokensender.Event{
				ev(tokensender.EventReloginRequired, 1), ev(tokensender.EventReloginRequired, 2),
				// The daemon restarted its count without a success event
				// (a new Policy would too): a new streak.
				ev(tokensender.EventReloginRequired, 1),
			},
			want: []string{"relogin_required", "", "relogin_required"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p alert.Policy
			for i, e := range tt.events {
				n, ok := p.FromEvent(e)
				got := ""
				if ok {
					got = n.Event
				}
				if got != tt.want[i] {
					t.Fatalf("event %d (%v, failures %d): got %q, want %q", i, e.Kind, e.Failures, got, tt.want[i])
				}
				if ok {
					assertNoSecret(t, "message", n.Message)
				}
			}
		})
	}
}

func TestPolicy_FromEvent_messages(t *testing.T) {
	tests := []struct {
		name     string
		lifetime time.Duration
		ev       tokensender.Event
		want     alert.Notification
	}{
		{
			name: "recovered",
			ev: tokensender.Event{
				Kind: tokensender.EventRecovered, At: now, Failures: 3,
				RefreshTokenIssuedAt: issued,
			},
			want: alert.Notification{
				Event:                 "recovered",
				Message:               "Token refresh recovered after 3 failed attempt(s); no access token is held",
				RefreshTokenExpiresAt: issued.Add(7 * 24 * time.Hour),
			},
		},
		{
			name:     "refresh failed with the access token expired, custom lifetime, unknown age",
			lifetime: time.Hour,
			ev: tokensender.Event{
				Kind: tokensender.EventRefreshFailed, At: now, Failures: 1,
				Err:  errors.New("schwab: HTTP 429 Rate Limit Exceeded"),
				Next: now.Add(time.Minute),
			},
			want: alert.Notification{
				Event:   "refresh_failed",
				Message: "Token refresh failed: schwab: HTTP 429 Rate Limit Exceeded. Retrying at 2025-11-13 08:45:24; no access token is held",
			},
		},
		{
			name: "relogin with an expired access token",
			ev: func() tokensender.Event {
				e := failedEvent()
				e.Kind = tokensender.EventReloginRequired
				e.Token.ExpiresAt = now.Add(-time.Minute)
				e.Err = nil
				return e
			}(),
			want: alert.Notification{
				Event:                 "relogin_required",
				Message:               "Re-login required: Schwab no longer accepts the refresh token (unknown error). Run token-refresh-sender login; the access token expired at 2025-11-13 08:43:24",
				RefreshTokenExpiresAt: issued.Add(7 * 24 * time.Hour),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := alert.Policy{Lifetime: tt.lifetime}
			got, ok := p.FromEvent(tt.ev)
			if !ok {
				t.Fatal("not notified")
			}
			if got.Event != tt.want.Event || got.Message != tt.want.Message || !got.RefreshTokenExpiresAt.Equal(tt.want.RefreshTokenExpiresAt) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestExpiring(t *testing.T) {
	tr := &expiry.Tracker{}
	ws := tr.Check(issued, now) // 12 hours left
	if len(ws) != 1 {
		t.Fatalf("tracker gave %d warnings, want 1", len(ws))
	}
	got, ok := alert.Expiring(ws[0])
	want := alert.Notification{
		Event:                 "refresh_token_expiring",
		Message:               "Refresh token expires in 12 hours (at 2025-11-13 20:44:24): run token-refresh-sender login before then",
		RefreshTokenExpiresAt: issued.Add(7 * 24 * time.Hour),
	}
	if !ok || got != want {
		t.Errorf("Expiring = %+v, %v; want %+v, true", got, ok, want)
	}

	unknown := (&expiry.Tracker{}).Check(time.Time{}, now)
	if len(unknown) != 1 || unknown[0].Level != slog.LevelInfo {
		t.Fatalf("tracker gave %+v for an unknown age, want one notice", unknown)
	}
	if n, ok := alert.Expiring(unknown[0]); ok {
		t.Errorf("unknown-age notice notified as %+v", n)
	}
}
