package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/daemon"
	"github.com/schwabtools/token-refresh-sender/internal/testkit"
	"github.com/schwabtools/token-refresh-sender/logging"
)

// fakeSchwab hands out tokens living `lifetime`, or the scripted errors first.
type fakeSchwab struct {
	mu       sync.Mutex
	lifetime time.Duration
	errs     []error // returned, in order, before tokens are issued again
	seen     []string
	n        int
	now      func() time.Time // the daemon's clock, so tokens expire on it
	store    *memStore        // records whether its lock was held at each call
	locked   []bool
	took     time.Duration // how long each request takes (fake time)
	rotate   bool          // issue a new refresh token with each access token
	at       []time.Time   // when each request was made (the bubble's clock)
}

// times returns when each request was made.
func (f *fakeSchwab) times() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.at...)
}

// calls returns the refresh tokens seen so far.
func (f *fakeSchwab) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.seen...)
}

func (f *fakeSchwab) Refresh(_ context.Context, refreshToken string) (tokensender.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, refreshToken)
	f.at = append(f.at, time.Now())
	if f.store != nil {
		f.locked = append(f.locked, f.store.isLocked())
	}
	time.Sleep(f.took)
	// The expiry counts from when the answer arrived (as oauth2 counts
	// it); the daemon counts it from its own instant instead.
	now := time.Now()
	if f.now != nil {
		now = f.now()
	}
	now = now.Truncate(time.Second)
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		if err != nil {
			return tokensender.Token{}, err
		}
	}
	f.n++
	if f.rotate {
		refreshToken = fmt.Sprintf("refresh-rotated-%d", f.n)
	}
	return tokensender.Token{
		AccessToken:  fmt.Sprintf("access-%d", f.n),
		RefreshToken: refreshToken,
		ExpiresIn:    int64(f.lifetime / time.Second),
		ExpiresAt:    now.Add(f.lifetime),
	}, nil
}

// memStore is a token file in memory with a lock that Update holds while
// it loads, runs fn and saves, as tokenfile.Store does.
type memStore struct {
	mu       sync.Mutex
	tok      tokensender.Token
	loadErr  error
	lockErr  error
	saveErr  error
	lockHeld bool // Update waits for the lock until ctx is done
	locked   bool
	saves    int
	saved    []tokensender.Token
	loads    int
}

var _ daemon.Store = (*memStore)(nil)

func (s *memStore) Load(context.Context) (tokensender.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loads++
	return s.tok, s.loadErr
}

func (s *memStore) Update(ctx context.Context, fn func(tokensender.Token) (tokensender.Token, error)) (tokensender.Token, error) {
	s.mu.Lock()
	if s.lockHeld {
		// Another process holds the lock until we give up.
		s.mu.Unlock()
		<-ctx.Done()
		return tokensender.Token{}, ctx.Err()
	}
	if s.lockErr != nil {
		defer s.mu.Unlock()
		return tokensender.Token{}, s.lockErr
	}
	if s.locked {
		panic("memStore: Update while locked")
	}
	s.locked = true
	current, err := s.tok, s.loadErr
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.locked = false
		s.mu.Unlock()
	}()
	if err != nil {
		return tokensender.Token{}, err
	}
	tok, err := fn(current)
	if err != nil {
		return tokensender.Token{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.saveErr != nil {
		return tok, s.saveErr
	}
	s.saves++
	s.tok = tok
	s.saved = append(s.saved, tok)
	return tok, nil
}

func (s *memStore) isLocked() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.locked
}

// set changes the file as another program would.
func (s *memStore) set(change func(tok *tokensender.Token)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	change(&s.tok)
}

func (s *memStore) lastSaved() tokensender.Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.saved) == 0 {
		return tokensender.Token{}
	}
	return s.saved[len(s.saved)-1]
}

// wallClock is the daemon's wall clock in tests: the bubble's clock plus
// the time spent suspended. Its alarms behave like a timerfd on
// CLOCK_REALTIME with TFD_TIMER_CANCEL_ON_SET: each fires when the wall
// clock reaches its time, and every pending one wakes when the clock jumps.
// It counts what the daemon asks of it, to show that an idle daemon does
// nothing at all.
type wallClock struct {
	mu        sync.Mutex
	suspended time.Duration
	reads     int
	alarms    []time.Time
	pending   map[int]chan struct{}
	ids       int
}

func newWallClock() *wallClock { return &wallClock{pending: map[int]chan struct{}{}} }

func (c *wallClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	return time.Now().Add(c.suspended)
}

func (c *wallClock) Alarm(at time.Time) (<-chan struct{}, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.alarms = append(c.alarms, at)
	ch := make(chan struct{}, 1)
	c.ids++
	id := c.ids
	c.pending[id] = ch
	t := time.AfterFunc(at.Sub(time.Now().Add(c.suspended)), func() { c.fire(id) })
	return ch, func() {
		t.Stop()
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.pending, id)
	}
}

func (c *wallClock) fire(id int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.pending[id]; ok {
		delete(c.pending, id)
		ch <- struct{}{}
	}
}

// suspend moves the wall clock forward by d while the bubble's timers
// stand still, and wakes every pending alarm as the kernel does on resume.
func (c *wallClock) suspend(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.suspended += d
	for id, ch := range c.pending {
		delete(c.pending, id)
		ch <- struct{}{}
	}
}

// activity is how often the daemon has read the clock and set an alarm.
func (c *wallClock) activity() (reads int, alarms []time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads, append([]time.Time(nil), c.alarms...)
}

// recorder is a bot that receives every message at once.
type recorder struct {
	mu   sync.Mutex
	msgs []tokensender.Message
	at   []time.Time
}

func (r *recorder) Deliver(_ context.Context, msg tokensender.Message) func() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, msg)
	r.at = append(r.at, time.Now())
	return func() {}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// syncBuffer collects log output from several goroutines.
type syncBuffer struct{ testkit.Buffer }

// messages returns the logged lines without their timestamps.
func (b *syncBuffer) messages() []string {
	var out []string
	for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		if i := strings.Index(line, "] "); i >= 0 {
			line = line[i+2:]
		}
		out = append(out, line)
	}
	return out
}

var errRelogin = errors.New("HTTP 400: refresh_token_authentication_error: Failed refresh token authentication")

type harness struct {
	d      *daemon.Daemon
	schwab *fakeSchwab
	store  *memStore
	bot    *recorder
	log    *syncBuffer
	clock  *wallClock
}

func newHarness(lifetime, interval time.Duration) *harness {
	h := &harness{
		schwab: &fakeSchwab{lifetime: lifetime},
		store: &memStore{tok: tokensender.Token{
			AccessToken: "old-access", RefreshToken: "refresh-1",
			ExpiresIn: int64(lifetime / time.Second), ExpiresAt: time.Now().Add(time.Minute),
		}},
		bot:   &recorder{},
		log:   &syncBuffer{},
		clock: newWallClock(),
	}
	h.schwab.store = h.store
	h.schwab.now = h.clock.Now
	h.d = &daemon.Daemon{
		Refresher: h.schwab,
		Store:     h.store,
		Deliverer: h.bot,
		Classify: func(err error) (bool, time.Duration) {
			return errors.Is(err, errRelogin), 0
		},
		Logger:   slog.New(logging.NewTextHandler(h.log, slog.LevelInfo)),
		Interval: interval,
		Backoff:  daemon.Backoff{Min: 2 * time.Second, Max: 2 * time.Minute, Jitter: func() float64 { return 0 }},
		Settings: [][2]string{{"Socket path", "/tmp/bigbrother_token.sock"}},
		Now:      h.clock.Now,
		Alarm:    h.clock.Alarm,
	}
	return h
}

// start runs the daemon in the bubble and returns a stop function that
// cancels it and waits for Run to return.
func (h *harness) start(t *testing.T) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.d.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v", err)
		}
	}
}

// logText is everything logged so far, without timestamps.
func (h *harness) logText() string { return strings.Join(h.log.messages(), "\n") }

func TestDaemon_Run_logsTheSeedLinesInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		stop := h.start(t)
		synctest.Wait()
		stop()

		want := []string{
			"INFO: " + logging.Banner,
			"INFO: Token Refresh Sender Initialized",
			"INFO: " + logging.Banner,
			"INFO: " + logging.Banner,
			"INFO: Token Refresh Sender Started",
			"INFO: " + logging.Banner,
			"INFO: Refresh interval: 25 minutes",
			"INFO: Socket path: /tmp/bigbrother_token.sock",
			"INFO:",
			"INFO: --- Refresh Cycle 1 ---",
			"INFO: Refreshing OAuth token...",
			"INFO: Token refreshed successfully (expires in 30 minutes)",
			"INFO: Next refresh at 2000-01-01 00:25:00 (25 minutes)",
			"INFO: " + logging.Banner,
			"INFO: Token Refresh Sender Stopped",
			"INFO: " + logging.Banner,
		}
		got := h.log.messages()
		// The bubble's clock starts at 2000-01-01 00:00:00 UTC; show it in local time like the daemon.
		want[12] = "INFO: Next refresh at " + time.Date(2000, 1, 1, 0, 25, 0, 0, time.UTC).Local().Format(logging.TimeLayout) + " (25 minutes)"
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("log lines:\n%s\n\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if h.bot.count() != 1 || h.bot.msgs[0].AccessToken != "access-1" {
			t.Errorf("bot got %+v, want access-1 once", h.bot.msgs)
		}
		if h.store.saves != 1 {
			t.Errorf("saves = %d, want 1", h.store.saves)
		}
	})
}

func TestDaemon_Run_refreshesEveryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		start := time.Now()
		stop := h.start(t)
		time.Sleep(2*time.Hour + time.Minute) // fake time: the bubble's clock only
		synctest.Wait()
		stop()

		if n := h.bot.count(); n != 5 { // at 0, 25, 50, 75, 100 minutes
			t.Fatalf("deliveries = %d, want 5", n)
		}
		for i, at := range h.bot.at {
			if want := start.Add(time.Duration(i) * 25 * time.Minute); !at.Equal(want) {
				t.Errorf("delivery %d at %v, want %v", i+1, at.Sub(start), want.Sub(start))
			}
		}
	})
}

func TestDaemon_Run_shortTokensRefreshBeforeExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 10 s tokens with a 25 min interval: refresh a sixth of the
		// lifetime before expiry, i.e. every 8.33 s, never letting it lapse.
		h := newHarness(10*time.Second, 25*time.Minute)
		stop := h.start(t)
		time.Sleep(time.Minute)
		synctest.Wait()
		stop()
		for i := 1; i < len(h.bot.at); i++ {
			if gap := h.bot.at[i].Sub(h.bot.at[i-1]); gap >= 10*time.Second {
				t.Errorf("gap between deliveries %d and %d is %v, token lives 10s", i, i+1, gap)
			}
		}
		if n := h.bot.count(); n < 7 {
			t.Errorf("deliveries = %d in a minute of 10 s tokens, want >= 7", n)
		}
	})
}

func TestDaemon_Run_retriesTransientFailuresWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		h.schwab.errs = []error{errors.New("HTTP 503"), errors.New("HTTP 503"), nil}
		start := time.Now()
		stop := h.start(t)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		stop()

		if n := h.bot.count(); n != 1 {
			t.Fatalf("deliveries = %d, want 1 after two failures", n)
		}
		if got := h.bot.at[0].Sub(start); got != 6*time.Second { // 2 s, then 4 s
			t.Errorf("recovered after %v, want 6s (backoff 2s then 4s)", got)
		}
		log := strings.Join(h.log.messages(), "\n")
		for _, want := range []string{
			"ERROR: Token refresh failed: HTTP 503; retrying at ",
			"(in 2 seconds, attempt 1 failed; the current access token is still valid until ",
			"(in 4 seconds, attempt 2 failed;",
			"INFO: Token refresh recovered after 2 failed attempt(s)",
		} {
			if !strings.Contains(log, want) {
				t.Errorf("log lacks %q:\n%s", want, log)
			}
		}
	})
}

func TestDaemon_Run_reloginErrorStopsHammeringAndDeliversNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		h.schwab.errs = []error{errRelogin, errRelogin, errRelogin}
		stop := h.start(t)
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		stop()

		if n := len(h.schwab.seen); n != 3 { // at 0, 2 and 4 minutes
			t.Errorf("refresh attempts in 5 minutes = %d, want 3 (one per retry-max)", n)
		}
		if n := h.bot.count(); n != 0 {
			t.Errorf("bot got %d stale tokens, want none", n)
		}
		if log := strings.Join(h.log.messages(), "\n"); !strings.Contains(log, "run `token-refresh-sender login`") {
			t.Errorf("log does not tell the operator to log in:\n%s", log)
		}
	})
}

func TestDaemon_Run_corruptFileKeepsTheTokenInMemory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		stop := h.start(t)
		synctest.Wait()
		h.store.mu.Lock()
		h.store.loadErr = errors.New("token file x.json: malformed JSON at line 1, column 2")
		h.store.mu.Unlock()
		time.Sleep(25 * time.Minute)
		synctest.Wait()
		stop()

		if n := h.bot.count(); n != 2 {
			t.Fatalf("deliveries = %d, want 2", n)
		}
		if h.store.saves != 1 {
			t.Errorf("saves = %d: the daemon wrote over a file it could not parse", h.store.saves)
		}
		if got := h.schwab.seen[1]; got != "refresh-1" {
			t.Errorf("second refresh used %q, want the refresh token held in memory", got)
		}
	})
}

func TestDaemon_Run_saveFailureStillDelivers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		h.store.saveErr = errors.New("write configs/schwab_tokens.json: no space left on device")
		stop := h.start(t)
		synctest.Wait()
		stop()
		if n := h.bot.count(); n != 1 {
			t.Errorf("deliveries = %d, want 1 despite the failed write", n)
		}
		if log := strings.Join(h.log.messages(), "\n"); !strings.Contains(log, "ERROR: Could not save the new token: write configs/schwab_tokens.json: no space left on device") {
			t.Errorf("log lacks the save error:\n%s", log)
		}
	})
}

// newLoginErr is a Store error saying the save was skipped to keep another
// program's new login (as tokenfile's ErrNewLogin errors say).
type newLoginErr struct{ is bool }

func (e newLoginErr) Error() string {
	return "token file x.json: another program wrote a new refresh token into it meanwhile"
}
func (e newLoginErr) NewLogin() bool { return e.is }

// A save skipped to keep another program's login is a warning, not an
// error; the token still reaches the bot.
func TestDaemon_Run_saveSkippedForANewLogin(t *testing.T) {
	for _, tt := range []struct {
		is   bool
		want string
	}{
		{true, "WARNING: save: token file x.json: another program wrote a new refresh token into it meanwhile"},
		{false, "ERROR: Could not save the new token: save: token file x.json: another program wrote"},
	} {
		t.Run(fmt.Sprint(tt.is), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(30*time.Minute, 25*time.Minute)
				h.store.saveErr = fmt.Errorf("save: %w", newLoginErr{tt.is})
				stop := h.start(t)
				synctest.Wait()
				stop()
				if n := h.bot.count(); n != 1 {
					t.Errorf("deliveries = %d, want 1", n)
				}
				log := strings.Join(h.log.messages(), "\n")
				if !strings.Contains(log, tt.want) {
					t.Errorf("log lacks %q:\n%s", tt.want, log)
				}
				if tt.is && strings.Contains(log, "ERROR") {
					t.Errorf("an ERROR for a save skipped to keep a new login:\n%s", log)
				}
			})
		})
	}
}

func TestDaemon_Run_refreshesAtOnceAfterSuspend(t *testing.T) {
	// The laptop sleeps for two hours, 3 minutes after a refresh: timers
	// stood still, the wall clock did not.
	t.Run("wall-clock alarm", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHarness(30*time.Minute, 25*time.Minute)
			stop := h.start(t)
			time.Sleep(3 * time.Minute)
			h.clock.suspend(2 * time.Hour)
			synctest.Wait()
			// The alarm woke on resume: the refresh happens without any
			// time passing on the (stood still) timers.
			if n := h.bot.count(); n != 2 {
				t.Errorf("deliveries = %d right after the resume, want 2", n)
			}
			stop()
		})
	})
	t.Run("portable alarm", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHarness(30*time.Minute, 25*time.Minute)
			var mu sync.Mutex
			var suspended time.Duration
			h.d.Now = func() time.Time {
				mu.Lock()
				defer mu.Unlock()
				return time.Now().Add(suspended)
			}
			h.d.Alarm = daemon.PollAlarm(h.d.Now) // re-reads the clock every minute
			h.schwab.now = h.d.Now
			stop := h.start(t)
			time.Sleep(3 * time.Minute)
			mu.Lock()
			suspended = 2 * time.Hour
			mu.Unlock()
			before := time.Now()
			time.Sleep(61 * time.Second)
			synctest.Wait()
			stop()

			if n := h.bot.count(); n != 2 {
				t.Fatalf("deliveries = %d, want 2 (the second right after the resume)", n)
			}
			if lag := h.bot.at[1].Sub(before); lag > time.Minute {
				t.Errorf("refreshed %v after the resume, want within a minute", lag)
			}
		})
	})
}

func TestDaemon_Run_refreshNowChannel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		now := make(chan struct{})
		h.d.RefreshNow = now
		stop := h.start(t)
		synctest.Wait()
		now <- struct{}{}
		synctest.Wait()
		stop()
		if n := h.bot.count(); n != 2 {
			t.Errorf("deliveries = %d, want 2", n)
		}
	})
}

func TestDaemon_Run_stopsAfterMaxCycles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(10*time.Second, 7*time.Second)
		h.d.MaxCycles = 3
		if err := h.d.Run(t.Context()); err != nil {
			t.Fatal(err)
		}
		if n := h.bot.count(); n != 3 {
			t.Errorf("deliveries = %d, want 3", n)
		}
	})
}

func TestDaemon_Run_failsToStartWithoutATokenFile(t *testing.T) {
	h := newHarness(30*time.Minute, 25*time.Minute)
	h.store.loadErr = errors.New("Token file not found: configs/schwab_tokens.json")
	if err := h.d.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "Token file not found") {
		t.Errorf("Run = %v, want the load error", err)
	}
	if len(h.schwab.seen) != 0 {
		t.Error("refreshed without a token file")
	}
}

func TestDaemon_Once(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		tok, err := h.d.Once(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if tok.AccessToken != "access-1" || h.bot.count() != 1 || h.store.saves != 1 {
			t.Errorf("Once: token %q, deliveries %d, saves %d", tok.AccessToken, h.bot.count(), h.store.saves)
		}
		h.schwab.errs = []error{errRelogin}
		if _, err := h.d.Once(t.Context()); !errors.Is(err, errRelogin) {
			t.Errorf("Once = %v, want the refresh error", err)
		}
		if log := strings.Join(h.log.messages(), "\n"); !strings.Contains(log, "ERROR: Token refresh failed: HTTP 400") || !strings.Contains(log, "token-refresh-sender login") {
			t.Errorf("log:\n%s", log)
		}
	})
}

func TestDaemon_Run_emitsEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		h.schwab.errs = []error{nil, errors.New("HTTP 503"), nil, errRelogin}
		var kinds []string
		h.d.OnEvent = func(ev tokensender.Event) { kinds = append(kinds, ev.Kind.String()) }
		stop := h.start(t)
		time.Sleep(51 * time.Minute)
		synctest.Wait()
		stop()
		want := "started refreshed refresh_failed recovered refreshed relogin_required stopping"
		if got := strings.Join(kinds, " "); got != want {
			t.Errorf("events = %s\nwant     %s", got, want)
		}
	})
}

func TestDaemon_Run_newLoginInFileRefreshesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		h.schwab.errs = []error{nil, errRelogin}
		changed := make(chan struct{}, 1)
		h.d.FileChanged = changed
		stop := h.start(t)
		synctest.Wait()

		// Our own write (same refresh token) is not a new login.
		changed <- struct{}{}
		synctest.Wait()
		if n := len(h.schwab.calls()); n != 1 {
			t.Fatalf("refreshes after our own write = %d, want 1", n)
		}

		// Schwab stops accepting the token; then the operator logs in.
		time.Sleep(25 * time.Minute)
		synctest.Wait()
		h.store.mu.Lock()
		h.store.tok.RefreshToken = "refresh-2"
		h.store.mu.Unlock()
		changed <- struct{}{}
		synctest.Wait()
		stop()

		if seen := h.schwab.calls(); len(seen) != 3 || seen[2] != "refresh-2" {
			t.Fatalf("refreshes = %v, want a third one right after the login with refresh-2", seen)
		}
		if n := h.bot.count(); n != 2 {
			t.Errorf("deliveries = %d, want 2", n)
		}
		if log := strings.Join(h.log.messages(), "\n"); !strings.Contains(log, "INFO: The token file has a new refresh token (a new login); refreshing now") {
			t.Errorf("log:\n%s", log)
		}
	})
}

func TestDaemon_Run_heartbeatWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		var beats []time.Time
		h.d.Heartbeat = func() { beats = append(beats, time.Now()) }
		h.d.HeartbeatEvery = 10 * time.Second
		stop := h.start(t)
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		stop()
		for i := 1; i < len(beats); i++ {
			if gap := beats[i].Sub(beats[i-1]); gap > 10*time.Second {
				t.Fatalf("heartbeat gap %v > 10s", gap)
			}
		}
		if len(beats) < 30 {
			t.Errorf("%d heartbeats in 5 minutes, want >= 30", len(beats))
		}
	})
}

// Quiet: no start or stop banner and no settings lines (cluster mode runs
// one loop per term of leadership and prints them once per process); the
// cycle's own lines stay.
func TestDaemon_Run_quietLeavesOutTheBanners(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		h.d.Quiet = true
		stop := h.start(t)
		synctest.Wait()
		stop()
		got := h.logText()
		for _, banner := range []string{logging.Banner, "Initialized", "Started", "Stopped", "Refresh interval", "Socket path"} {
			if strings.Contains(got, banner) {
				t.Errorf("quiet loop logged %q:\n%s", banner, got)
			}
		}
		if !strings.Contains(got, "Token refreshed successfully") || h.bot.count() != 1 {
			t.Errorf("quiet loop did not refresh and deliver once (%d deliveries):\n%s", h.bot.count(), got)
		}
	})
}

// FirstRefresh: the first refresh waits until it; one in the past is due
// at once.
func TestDaemon_Run_firstRefresh(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after time.Duration // FirstRefresh relative to the start
		want  time.Duration // the first delivery relative to the start
	}{
		{"later", 10 * time.Minute, 10 * time.Minute},
		{"passed", -time.Minute, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(30*time.Minute, 25*time.Minute)
				start := time.Now()
				h.d.FirstRefresh = start.Add(tc.after)
				stop := h.start(t)
				time.Sleep(11 * time.Minute) // fake time: the bubble's clock only
				synctest.Wait()
				stop()
				if h.bot.count() != 1 || !h.bot.at[0].Equal(start.Add(tc.want)) {
					t.Errorf("deliveries %v after the start, want one at %v", relative(h.bot.at, start), tc.want)
				}
			})
		})
	}
}

func relative(ts []time.Time, since time.Time) []time.Duration {
	var ds []time.Duration
	for _, t := range ts {
		ds = append(ds, t.Sub(since))
	}
	return ds
}
