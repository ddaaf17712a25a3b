package status

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/schwabtools/token-refresh-sender/delivery"
	"github.com/schwabtools/token-refresh-sender/internal/testproc"
	"github.com/schwabtools/token-refresh-sender/receiver"
)

// A status check must not look like a bad token to the bot: a listening
// receiver is found in /proc/net/unix and never gets a connection.
func TestProbe_listeningBotIsNotDisturbed(t *testing.T) {
	sock := filepath.Join(testproc.ShortDir(t), "bot.sock")
	var mu sync.Mutex
	var errs []error
	r := &receiver.Receiver{Addr: sock, OnError: func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}}
	if err := r.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx) }()

	got := Probe(delivery.Address{Network: "unix", Addr: sock}, ProbeTimeout)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !got.Present || !got.Accepting {
		t.Errorf("Probe = %+v, want present and accepting", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 0 {
		t.Errorf("the receiver saw the probe: %v", errs)
	}
}
