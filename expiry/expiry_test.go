package expiry_test

import (
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/schwabtools/token-refresh-sender/expiry"
)

func TestMain(m *testing.M) {
	time.Local = time.UTC // messages show local time
	os.Exit(m.Run())
}

var issued = time.Date(2025, 11, 13, 8, 44, 24, 0, time.UTC)

// expires is when a token issued at `issued` expires with the default lifetime.
var expires = issued.Add(7 * 24 * time.Hour)

// step is one Check, made when left remains of the token issued at iss.
type step struct {
	left time.Duration
	iss  time.Time // the issue time passed to Check; issued when zero, unless unknown is set
	// unknown passes the zero issue time; left then counts to `expires`.
	unknown bool
	want    string // the warning's message, "" for none
}

// check runs s on tr.
func (s step) check(tr *expiry.Tracker) []expiry.Warning {
	if s.unknown {
		return tr.Check(time.Time{}, expires.Add(-s.left))
	}
	iss := s.iss
	if iss.IsZero() {
		iss = issued
	}
	return tr.Check(iss, iss.Add(7*24*time.Hour-s.left))
}

func TestTracker_Check(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "fresh token says nothing",
			steps: []step{
				{left: 7 * 24 * time.Hour},
				{left: 3 * 24 * time.Hour},
				{left: 24 * time.Hour}, // exactly 24 h is not "less than"
			},
		},
		{
			name: "each threshold once while the daemon runs",
			steps: []step{
				{left: 30 * time.Hour},
				{left: 24*time.Hour - time.Second, want: "Refresh token expires in 23 hours 59 minutes (at 2025-11-20 08:44:24): run token-refresh-sender login before then"},
				{left: 23 * time.Hour},
				{left: 13 * time.Hour},
				{left: 11*time.Hour + 58*time.Minute, want: "Refresh token expires in 11 hours 58 minutes (at 2025-11-20 08:44:24): run token-refresh-sender login before then"},
				{left: 11 * time.Hour},
				{left: 5 * time.Hour, want: "Refresh token expires in 5 hours (at 2025-11-20 08:44:24): run token-refresh-sender login before then"},
				{left: 4 * time.Hour},
				{left: 59 * time.Minute, want: "Refresh token expires in 59 minutes (at 2025-11-20 08:44:24): run token-refresh-sender login before then"},
				{left: 30 * time.Minute},
				{left: -2*time.Hour - 5*time.Minute, want: "Refresh token expired at 2025-11-20 08:44:24 (2 hours 5 minutes ago): run token-refresh-sender login"},
				{left: -3 * time.Hour},
			},
		},
		{
			name: "start-up under 24 h fires once, for the smallest threshold crossed",
			steps: []step{
				{left: 10 * time.Hour, want: "Refresh token expires in 10 hours (at 2025-11-20 08:44:24): run token-refresh-sender login before then"},
				{left: 9 * time.Hour},
				{left: 7 * time.Hour},
				{left: 5 * time.Hour, want: "Refresh token expires in 5 hours (at 2025-11-20 08:44:24): run token-refresh-sender login before then"},
			},
		},
		{
			name: "start-up under 1 h fires once",
			steps: []step{
				{left: 20 * time.Minute, want: "Refresh token expires in 20 minutes (at 2025-11-20 08:44:24): run token-refresh-sender login before then"},
				{left: 10 * time.Minute},
				{left: 0, want: "Refresh token expired at 2025-11-20 08:44:24: run token-refresh-sender login"},
			},
		},
		{
			name: "start-up after expiry fires once",
			steps: []step{
				{left: -24 * time.Hour, want: "Refresh token expired at 2025-11-20 08:44:24 (1 day ago): run token-refresh-sender login"},
				{left: -25 * time.Hour},
			},
		},
		{
			name: "a suspend across several thresholds fires once",
			steps: []step{
				{left: 20 * time.Hour, want: "Refresh token expires in 20 hours (at 2025-11-20 08:44:24): run token-refresh-sender login before then"},
				{left: 2 * time.Hour, want: "Refresh token expires in 2 hours (at 2025-11-20 08:44:24): run token-refresh-sender login before then"},
				{left: 90 * time.Minute},
			},
		},
		{
			name: "a new login resets the thresholds",
			steps: []step{
				{left: 3 * time.Hour, want: "Refresh token expires in 3 hours (at 2025-11-20 08:44:24): run token-refresh-sender login before then"},
				// Logged in again 2 hours before the old token's expiry.
				{left: 7 * 24 * time.Hour, iss: expires.Add(-2 * time.Hour)},
				{left: 25 * time.Hour, iss: expires.Add(-2 * time.Hour)},
				{left: 23 * time.Hour, iss: expires.Add(-2 * time.Hour),
					want: "Refresh token expires in 23 hours (at 2025-11-27 06:44:24): run token-refresh-sender login before then"},
				{left: 3 * time.Hour, iss: expires.Add(-2 * time.Hour),
					want: "Refresh token expires in 3 hours (at 2025-11-27 06:44:24): run token-refresh-sender login before then"},
			},
		},
		{
			name: "unknown age gives one notice",
			steps: []step{
				{left: 5 * time.Hour, unknown: true, want: "Refresh token age unknown (refresh_token_issued_at missing in /srv/tokens.json): its expiry cannot be predicted; run token-refresh-sender login to start tracking it"},
				{left: 2 * time.Hour, unknown: true},
				{left: 0, unknown: true},
				// A login makes it known: thresholds apply from then on.
				{left: 3 * time.Hour, want: "Refresh token expires in 3 hours (at 2025-11-20 08:44:24): run token-refresh-sender login before then"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &expiry.Tracker{TokenFile: "/srv/tokens.json"}
			for i, s := range tt.steps {
				got := s.check(tr)
				if s.want == "" {
					if len(got) != 0 {
						t.Fatalf("step %d (left %v): got %q, want no warning", i, s.left, got[0].Message)
					}
					continue
				}
				if len(got) != 1 {
					t.Fatalf("step %d (left %v): got %d warnings, want 1: %q", i, s.left, len(got), s.want)
				}
				if got[0].Message != s.want {
					t.Fatalf("step %d (left %v):\n got %q\nwant %q", i, s.left, got[0].Message, s.want)
				}
			}
		})
	}
}

func TestTracker_Check_fields(t *testing.T) {
	tr := &expiry.Tracker{}
	now := expires.Add(-90 * time.Minute)
	got := tr.Check(issued, now)
	if len(got) != 1 {
		t.Fatalf("got %d warnings, want 1", len(got))
	}
	w := got[0]
	if w.Level != slog.LevelWarn || w.Left != 90*time.Minute || !w.ExpiresAt.Equal(expires) || !w.Known() {
		t.Errorf("got %+v, want Level WARN, Left 1h30m, ExpiresAt %v, Known", w, expires)
	}

	got = (&expiry.Tracker{}).Check(time.Time{}, now)
	if len(got) != 1 || got[0].Level != slog.LevelInfo || got[0].Known() || !got[0].ExpiresAt.IsZero() {
		t.Errorf("unknown age: got %+v, want one INFO notice without expiry", got)
	}
	if !strings.Contains(got[0].Message, "missing in the token file") {
		t.Errorf("unknown age without TokenFile: %q should say \"the token file\"", got[0].Message)
	}
}

func TestTracker_Check_customLifetimeAndThresholds(t *testing.T) {
	tr := &expiry.Tracker{Lifetime: 2 * time.Hour, Thresholds: []time.Duration{30 * time.Minute}}
	if got := tr.Check(issued, issued.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("1 h of 2 h left: got %q, want nothing", got[0].Message)
	}
	got := tr.Check(issued, issued.Add(95*time.Minute))
	want := "Refresh token expires in 25 minutes (at 2025-11-13 10:44:24): run token-refresh-sender login before then"
	if len(got) != 1 || got[0].Message != want {
		t.Fatalf("got %v, want %q", got, want)
	}
}

func TestTracker_Check_concurrent(t *testing.T) {
	tr := &expiry.Tracker{}
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		n  int
	)
	for range 8 {
		wg.Go(func() {
			w := tr.Check(issued, expires.Add(-time.Hour+time.Minute))
			mu.Lock()
			n += len(w)
			mu.Unlock()
		})
	}
	wg.Wait()
	if n != 1 {
		t.Errorf("8 concurrent checks gave %d warnings, want exactly 1", n)
	}
}

func TestExpiresAt(t *testing.T) {
	tests := []struct {
		name     string
		issued   time.Time
		lifetime time.Duration
		want     time.Time
		wantOK   bool
	}{
		{"default lifetime", issued, 0, expires, true},
		{"custom lifetime", issued, time.Hour, issued.Add(time.Hour), true},
		{"unknown", time.Time{}, time.Hour, time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := expiry.ExpiresAt(tt.issued, tt.lifetime)
			if !got.Equal(tt.want) || ok != tt.wantOK {
				t.Errorf("ExpiresAt(%v, %v) = %v, %v; want %v, %v", tt.issued, tt.lifetime, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
