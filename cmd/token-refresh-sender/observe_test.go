package main

import (
	"io"
	"log/slog"
	"testing"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/alert"
	"github.com/schwabtools/token-refresh-sender/expiry"
	"github.com/schwabtools/token-refresh-sender/systemd"
)

// TestObservers_freeMemory: every event that ends a refresh attempt hands
// the heap's garbage back to the OS; the others do not.
func TestObservers_freeMemory(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cases := map[tokensender.EventKind]bool{
		tokensender.EventStarted:         false,
		tokensender.EventRefreshed:       true,
		tokensender.EventRefreshFailed:   true,
		tokensender.EventReloginRequired: true,
		tokensender.EventRecovered:       false, // a refreshed event follows
		tokensender.EventStopping:        false,
	}
	for kind, want := range cases {
		t.Run(kind.String(), func(t *testing.T) {
			freed := 0
			o := &observers{
				log:        log,
				expiry:     &expiry.Tracker{Lifetime: 7 * 24 * time.Hour},
				policy:     &alert.Policy{Lifetime: 7 * 24 * time.Hour},
				hooks:      &alert.Notifier{Logger: log},
				systemd:    systemd.New(log),
				freeMemory: func() { freed++ },
			}
			o.event(tokensender.Event{Kind: kind, At: time.Unix(1762983055, 0)})
			if got := freed == 1; got != want || freed > 1 {
				t.Errorf("%v: freeMemory called %d times, want %v", kind, freed, want)
			}
		})
	}
}
