package daemon_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/daemon"
)

// gateBot is a bot whose first attempt starts, then finishes only once
// release is closed (or its delivery is cancelled). It notes what the log
// held when the attempt started, and logs its own line as
// delivery.Sender does once the attempt has finished.
type gateBot struct {
	h        *harness
	release  chan struct{}
	started  chan struct{} // closed when the first attempt starts
	mu       sync.Mutex
	calls    int
	finished int
	logAtRun string // the log when the first attempt started
}

func newGateBot(h *harness) *gateBot {
	return &gateBot{h: h, release: make(chan struct{}), started: make(chan struct{})}
}

var _ daemon.Deliverer = (*gateBot)(nil)

func (b *gateBot) Deliver(ctx context.Context, _ tokensender.Message) func() {
	b.mu.Lock()
	b.calls++
	if b.calls == 1 {
		b.logAtRun = b.h.logText()
		close(b.started)
	}
	b.mu.Unlock()
	select {
	case <-b.release:
		b.h.d.Logger.Info("Token successfully sent to trading bot")
	case <-ctx.Done():
	}
	b.mu.Lock()
	b.finished++
	b.mu.Unlock()
	return func() {}
}

// attempts is how many attempts have started and finished.
func (b *gateBot) attempts() (started, finished int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls, b.finished
}

// writeWatch is a Store that notes, when fn has returned and the token is
// about to be written, what the bot has seen so far. So that the check
// does not depend on how goroutines happen to be scheduled, it first waits
// until the bot's first attempt has started, or until ctx is done (the test
// stops the daemon): a daemon that delivers only after the write never
// starts the attempt while the write waits.
type writeWatch struct {
	*memStore
	bot *gateBot

	mu      sync.Mutex
	writes  int
	started []int // the bot's attempts started when each write began
	open    []int // of which not finished
}

func (s *writeWatch) Update(ctx context.Context, fn func(tokensender.Token) (tokensender.Token, error)) (tokensender.Token, error) {
	return s.memStore.Update(ctx, func(current tokensender.Token) (tokensender.Token, error) {
		tok, err := fn(current)
		if err != nil {
			return tok, err
		}
		select {
		case <-s.bot.started:
		case <-ctx.Done():
		}
		started, finished := s.bot.attempts()
		s.mu.Lock()
		defer s.mu.Unlock()
		s.writes++
		s.started = append(s.started, started)
		s.open = append(s.open, started-finished)
		return tok, nil
	})
}

// atWrites returns, for each write, the attempts started and still open.
func (s *writeWatch) atWrites() (started, open []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.started...), append([]int(nil), s.open...)
}

func newWriteWatch(h *harness) (*writeWatch, *gateBot) {
	bot := newGateBot(h)
	store := &writeWatch{memStore: h.store, bot: bot}
	h.d.Deliverer, h.d.Store = bot, store
	return store, bot
}

// inOrder reports whether log holds each of lines, in that order.
func inOrder(log string, lines ...string) bool {
	for _, l := range lines {
		i := strings.Index(log, l)
		if i < 0 {
			return false
		}
		log = log[i+len(l):]
	}
	return true
}

// The delivery to the bot starts as soon as Schwab has answered, before the
// token file is written: the file's fsyncs no longer stand in front of the
// first token.
func TestDaemon_Run_deliversBeforeTheFileIsWritten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		store, bot := newWriteWatch(h)
		close(bot.release) // the bot answers at once
		stop := h.start(t)
		synctest.Wait()
		stop()

		if started, _ := store.atWrites(); len(started) != 1 || started[0] != 1 {
			t.Errorf("bot attempts started when the file was written: %v, want [1] (the delivery before the write)", started)
		}
		if h.store.saves != 1 {
			t.Errorf("saves = %d, want 1", h.store.saves)
		}
		if !strings.Contains(bot.logAtRun, "INFO: Token refreshed successfully (expires in 30 minutes)") {
			t.Errorf("the delivery started before the refresh was logged; the log then:\n%s", bot.logAtRun)
		}
		if log := h.logText(); !inOrder(log,
			"INFO: Token refreshed successfully (expires in 30 minutes)",
			"INFO: Token successfully sent to trading bot",
			"INFO: Next refresh at ") {
			t.Errorf("log lines out of the seed's order:\n%s", log)
		}
	})
}

// A bot that accepts the connection but never answers holds its first
// attempt open (up to 5 s in delivery.Sender); the file is written, and
// its lock let go, meanwhile. The schedule's line still waits for the
// attempt.
func TestDaemon_Run_hungFirstAttemptDoesNotDelayTheWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		store, bot := newWriteWatch(h)
		start := time.Now()
		stop := h.start(t)
		synctest.Wait()

		if started, open := store.atWrites(); len(started) != 1 || started[0] != 1 || open[0] != 1 {
			t.Errorf("at the write: attempts started %v, still open %v; want [1] and [1]", started, open)
		}
		if h.store.saves != 1 || h.store.isLocked() {
			t.Errorf("while the attempt hangs: saves %d, lock held %v; want 1 and false", h.store.saves, h.store.isLocked())
		}
		if n, done := bot.attempts(); n != 1 || done != 0 {
			t.Fatalf("attempts started %d, finished %d; want 1 still open", n, done)
		}
		if log := h.logText(); strings.Contains(log, "Next refresh at") {
			t.Errorf("the schedule was logged before the first attempt finished:\n%s", log)
		}
		if !time.Now().Equal(start) {
			t.Errorf("%v passed, want none (nothing waited on a timer)", time.Since(start))
		}

		close(bot.release)
		synctest.Wait()
		stop()
		if log := h.logText(); !inOrder(log,
			"INFO: Token refreshed successfully",
			"INFO: Token successfully sent to trading bot",
			"INFO: Next refresh at ") {
			t.Errorf("log lines out of the seed's order:\n%s", log)
		}
	})
}

// A write that fails after a good refresh: the bot already has the token;
// the ERROR comes after the delivery's line.
func TestDaemon_Run_saveFailureAfterTheDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		store, bot := newWriteWatch(h)
		close(bot.release)
		h.store.saveErr = errors.New("write x.json: no space left on device")
		stop := h.start(t)
		synctest.Wait()
		stop()
		if started, _ := store.atWrites(); len(started) != 1 || started[0] != 1 {
			t.Errorf("bot attempts started at the failed write: %v, want [1]", started)
		}
		if log := h.logText(); !inOrder(log,
			"INFO: Token refreshed successfully",
			"ERROR: Could not save the new token: write x.json: no space left on device",
			"INFO: Next refresh at ") {
			t.Errorf("log:\n%s", log)
		}
	})
}

// Once (the refresh command) delivers before the write too, and waits for
// the delivery.
func TestDaemon_Once_deliversBeforeTheFileIsWritten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		store, bot := newWriteWatch(h)
		close(bot.release)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := h.d.Once(ctx)
			done <- err
		}()
		synctest.Wait()
		cancel() // releases a write still waiting for the attempt (old order)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if started, _ := store.atWrites(); len(started) != 1 || started[0] != 1 {
			t.Errorf("bot attempts started when the file was written: %v, want [1]", started)
		}
		if n, done := bot.attempts(); n != 1 || done != 1 {
			t.Errorf("attempts started %d, finished %d; want 1 and 1", n, done)
		}
	})
}

// The recovery line stays right after the success line, before the
// delivery's.
func TestDaemon_Run_recoveryIsLoggedBeforeTheDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		h.schwab.errs = []error{errors.New("HTTP 503")}
		_, bot := newWriteWatch(h)
		close(bot.release)
		stop := h.start(t)
		time.Sleep(3 * time.Second)
		synctest.Wait()
		stop()
		if !strings.Contains(bot.logAtRun, "INFO: Token refresh recovered after 1 failed attempt(s)") {
			t.Errorf("the delivery started before the recovery was logged; the log then:\n%s", bot.logAtRun)
		}
		if log := h.logText(); !inOrder(log,
			"INFO: Token refreshed successfully",
			"INFO: Token refresh recovered after 1 failed attempt(s)",
			"INFO: Token successfully sent to trading bot",
			"INFO: Next refresh at ") {
			t.Errorf("log:\n%s", log)
		}
	})
}

// Without a Deliverer (the cluster leader's loop: every instance delivers
// from the etcd record) the cycle ends at once, and a refresh request is
// heard right away.
func TestDaemon_Run_withoutADeliverer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		h.d.Deliverer = nil
		now := make(chan struct{})
		h.d.RefreshNow = now
		start := time.Now()
		stop := h.start(t)
		synctest.Wait()
		if log := h.logText(); !strings.Contains(log, "INFO: Next refresh at ") {
			t.Errorf("no schedule line without a Deliverer:\n%s", log)
		}
		now <- struct{}{}
		synctest.Wait()
		stop()
		if at := h.schwab.times(); len(at) != 2 || !at[1].Equal(start) {
			t.Errorf("refreshes at %v, want two at once", relative(at, start))
		}
		if h.store.saves != 2 {
			t.Errorf("saves = %d, want 2", h.store.saves)
		}
	})
}
