package daemon_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/daemon"
	"github.com/schwabtools/token-refresh-sender/logging"
)

func TestDaemon_Run_refreshesUnderTheFileLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		stop := h.start(t)
		time.Sleep(51 * time.Minute)
		synctest.Wait()
		stop()
		h.schwab.mu.Lock()
		locked := append([]bool(nil), h.schwab.locked...)
		h.schwab.mu.Unlock()
		if len(locked) != 3 {
			t.Fatalf("refreshes = %d, want 3", len(locked))
		}
		for i, l := range locked {
			if !l {
				t.Errorf("refresh %d happened without the token file's lock: another process could refresh with the same refresh token in between", i+1)
			}
		}
		if h.store.saves != 3 {
			t.Errorf("saves = %d, want 3 (each inside the locked update)", h.store.saves)
		}
	})
}

func TestDaemon_Once_refreshesUnderTheFileLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		if _, err := h.d.Once(t.Context()); err != nil {
			t.Fatal(err)
		}
		if len(h.schwab.locked) != 1 || !h.schwab.locked[0] {
			t.Errorf("Once refreshed without the token file's lock (locked at refresh: %v)", h.schwab.locked)
		}
	})
}

func TestDaemon_Run_lockNotTakenIsATransientFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		lockErr := errors.New("token file x.json: gave up waiting for lock x.json.lock (context deadline exceeded): another token-refresh-sender or login is updating the file")
		h.store.lockErr = lockErr
		start := time.Now()
		stop := h.start(t)
		synctest.Wait()
		if n := len(h.schwab.calls()); n != 0 {
			t.Errorf("refreshed %d time(s) without the lock", n)
		}
		h.store.set(func(*tokensender.Token) { h.store.lockErr = nil })
		time.Sleep(3 * time.Second)
		synctest.Wait()
		stop()
		if at := h.schwab.times(); len(at) != 1 || at[0].Sub(start) != 2*time.Second {
			t.Errorf("refreshes at %v, want one after the 2 s backoff", at)
		}
		if log := h.logText(); !strings.Contains(log, "ERROR: Token refresh failed: "+lockErr.Error()+"; retrying at ") {
			t.Errorf("log lacks the lock failure:\n%s", log)
		}
	})
}

func TestDaemon_Run_schedulesFromOneInstant(t *testing.T) {
	for _, tt := range []struct {
		interval time.Duration
		log      string
	}{
		{25 * time.Minute, "25 minutes"}, // the expiry margin decides
		{20 * time.Minute, "20 minutes"}, // the interval decides
	} {
		t.Run(tt.log, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// The refresh straddles a wall-clock second: it starts at
				// 00:00:00.6 and its answer arrives at 00:00:01.3.
				h := newHarness(30*time.Minute, tt.interval)
				h.schwab.took = 700 * time.Millisecond
				time.Sleep(600 * time.Millisecond)
				start := time.Now().Truncate(time.Second)
				stop := h.start(t)
				time.Sleep(26 * time.Minute)
				synctest.Wait()
				stop()

				log := h.logText()
				if want := "INFO: Next refresh at " + start.Add(tt.interval).Local().Format(logging.TimeLayout) + " (" + tt.log + ")"; !strings.Contains(log, want) {
					t.Errorf("log lacks %q:\n%s", want, log)
				}
				at := h.schwab.times()
				if len(at) < 2 || at[1].Sub(start) != tt.interval {
					t.Errorf("refreshes at %v, want the second %v after %v", at, tt.interval, start)
				}
				// The saved and delivered expiry counts from the same instant.
				if got := h.bot.msgs[0].ExpiresAt; got != start.Add(30*time.Minute).Unix() {
					t.Errorf("delivered expires_at = %d, want %d", got, start.Add(30*time.Minute).Unix())
				}
				if got := h.store.saved[0].ExpiresAt; !got.Equal(start.Add(30 * time.Minute)) {
					t.Errorf("saved expiry %v, want %v", got, start.Add(30*time.Minute))
				}
			})
		})
	}
}

func TestDaemon_Run_corruptFileIsNeverOverwritten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		stop := h.start(t)
		synctest.Wait()
		loadErr := errors.New("token file x.json: malformed JSON at line 1, column 2")
		h.store.set(func(*tokensender.Token) { h.store.loadErr = loadErr })
		time.Sleep(25 * time.Minute)
		synctest.Wait()
		stop()
		if log := h.logText(); !strings.Contains(log, "ERROR: "+loadErr.Error()+" (keeping the last good token in memory; the file will not be overwritten)\nINFO: Token refreshed successfully") {
			t.Errorf("log:\n%s", log)
		}
		if h.store.saves != 1 || h.bot.count() != 2 {
			t.Errorf("saves %d, deliveries %d; want 1 and 2", h.store.saves, h.bot.count())
		}
	})
}

// issued is a login time in whole seconds, long before the bubble's epoch.
var issued = time.Date(1999, 12, 30, 8, 0, 0, 0, time.UTC)

func TestDaemon_Run_loginTimeSurvivesOtherWriters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		h.store.tok.RefreshTokenIssuedAt = issued
		changed := make(chan struct{}, 1)
		h.d.FileChanged = changed
		stop := h.start(t)
		synctest.Wait()
		if got := h.store.lastSaved().RefreshTokenIssuedAt; !got.Equal(issued) {
			t.Fatalf("first save: login time %v, want %v", got, issued)
		}

		// schwab-py rewrites the file with the same refresh token and drops
		// refresh_token_issued_at.
		h.store.set(func(tok *tokensender.Token) { tok.RefreshTokenIssuedAt = time.Time{} })
		changed <- struct{}{}
		synctest.Wait()
		if n := len(h.schwab.calls()); n != 1 {
			t.Fatalf("refreshes = %d after a foreign write of the same refresh token, want 1", n)
		}
		time.Sleep(25 * time.Minute)
		synctest.Wait()
		stop()
		if got := h.store.lastSaved().RefreshTokenIssuedAt; !got.Equal(issued) {
			t.Errorf("the next save wrote login time %v, want %v put back", got, issued)
		}
	})
}

func TestDaemon_Run_newRefreshTokenInTheFileResetsTheLoginTime(t *testing.T) {
	for _, tt := range []struct {
		name   string
		inFile time.Time // the file's own refresh_token_issued_at
		want   func(seen time.Time) time.Time
	}{
		{"file without a login time: when we saw it", time.Time{}, func(seen time.Time) time.Time { return seen }},
		{"file with its own login time", issued.Add(time.Hour), func(time.Time) time.Time { return issued.Add(time.Hour) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(30*time.Minute, 25*time.Minute)
				h.store.tok.RefreshTokenIssuedAt = issued
				changed := make(chan struct{}, 1)
				h.d.FileChanged = changed
				var events []tokensender.Event
				h.d.OnEvent = func(ev tokensender.Event) { events = append(events, ev) }
				stop := h.start(t)
				time.Sleep(10*time.Minute + 500*time.Millisecond)
				seen := time.Now().Truncate(time.Second)
				h.store.set(func(tok *tokensender.Token) {
					tok.RefreshToken, tok.RefreshTokenIssuedAt = "refresh-2", tt.inFile
				})
				changed <- struct{}{}
				synctest.Wait()
				stop()

				if seen := h.schwab.calls(); len(seen) != 2 || seen[1] != "refresh-2" {
					t.Fatalf("refreshes = %v, want the new refresh token used at once", seen)
				}
				want := tt.want(seen)
				if got := h.store.lastSaved().RefreshTokenIssuedAt; !got.Equal(want) {
					t.Errorf("saved login time %v, want %v", got, want)
				}
				last := events[len(events)-1]
				if !last.RefreshTokenIssuedAt.Equal(want) || !last.Token.RefreshTokenIssuedAt.Equal(want) {
					t.Errorf("in-memory login time %v, want %v", last.RefreshTokenIssuedAt, want)
				}
			})
		})
	}
}

func TestDaemon_Run_newRefreshTokenFoundAtRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// No watcher: the new login is found when the cycle loads the file.
		h := newHarness(30*time.Minute, 25*time.Minute)
		h.store.tok.RefreshTokenIssuedAt = issued
		stop := h.start(t)
		synctest.Wait()
		h.store.set(func(tok *tokensender.Token) { tok.RefreshToken, tok.RefreshTokenIssuedAt = "refresh-2", time.Time{} })
		time.Sleep(25 * time.Minute)
		synctest.Wait()
		stop()
		want := time.Date(2000, 1, 1, 0, 25, 0, 0, time.UTC)
		if got := h.store.lastSaved(); got.RefreshToken != "refresh-2" || !got.RefreshTokenIssuedAt.Equal(want) {
			t.Errorf("saved %v issued %v, want refresh-2 issued %v", got, got.RefreshTokenIssuedAt, want)
		}
	})
}

func TestDaemon_Run_rotatedRefreshTokenIsANewLoginTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		h.store.tok.RefreshTokenIssuedAt = issued
		h.schwab.rotate = true
		h.schwab.took = 1500 * time.Millisecond
		stop := h.start(t)
		time.Sleep(time.Minute)
		synctest.Wait()
		stop()
		got := h.store.lastSaved()
		if want := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC); got.RefreshToken != "refresh-rotated-1" || !got.RefreshTokenIssuedAt.Equal(want) {
			t.Errorf("saved %q issued %v, want refresh-rotated-1 issued at the request, %v", got.RefreshToken, got.RefreshTokenIssuedAt, want)
		}
	})
}

func TestDaemon_Run_unknownLoginTimeStaysUnknown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		stop := h.start(t)
		synctest.Wait()
		stop()
		if got := h.store.lastSaved(); got.RefreshToken != "refresh-1" || !got.RefreshTokenIssuedAt.IsZero() {
			t.Errorf("saved %v with login time %v, want it unknown (never guessed)", got, got.RefreshTokenIssuedAt)
		}
	})
}

func TestDaemon_Run_retryAfterIsCappedWhileTheBotNeedsAToken(t *testing.T) {
	errRateLimited := errors.New("HTTP 429: Rate Limit Exceeded")
	for _, tt := range []struct {
		name      string
		expiresIn time.Duration // of the token the bot holds
		wantNext  time.Duration
		wantLog   string
	}{
		{"expired", -time.Minute, 2 * time.Minute,
			"(in 2 minutes, attempt 1 failed; the current access token has expired; the server asked to wait 1 day, capped at --retry-max (2 minutes))"},
		{"within the refresh margin", 4 * time.Minute, 2 * time.Minute,
			"attempt 1 failed; the current access token is still valid until "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(30*time.Minute, 25*time.Minute)
				h.store.tok.ExpiresAt = time.Now().Add(tt.expiresIn)
				h.schwab.errs = []error{errRateLimited}
				h.d.Classify = func(err error) (bool, time.Duration) {
					if errors.Is(err, errRateLimited) {
						return false, 24 * time.Hour
					}
					return false, 0
				}
				start := time.Now()
				stop := h.start(t)
				time.Sleep(3 * time.Minute)
				synctest.Wait()
				stop()
				if at := h.schwab.times(); len(at) != 2 || at[1].Sub(start) != tt.wantNext {
					t.Errorf("attempts at %v, want the second %v after the first", at, tt.wantNext)
				}
				log := h.logText()
				for _, want := range []string{tt.wantLog, "the server asked to wait 1 day, capped at --retry-max (2 minutes))"} {
					if !strings.Contains(log, want) {
						t.Errorf("log lacks %q:\n%s", want, log)
					}
				}
			})
		})
	}
}

func TestDaemon_Run_retryAfterHonouredWhileTheTokenIsGood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		h.store.tok.ExpiresAt = time.Now().Add(20 * time.Minute)
		h.schwab.errs = []error{errors.New("HTTP 429")}
		h.d.Classify = func(error) (bool, time.Duration) { return false, 10 * time.Minute }
		start := time.Now()
		stop := h.start(t)
		time.Sleep(11 * time.Minute)
		synctest.Wait()
		stop()
		if at := h.schwab.times(); len(at) != 2 || at[1].Sub(start) != 10*time.Minute {
			t.Errorf("attempts at %v, want the second after the requested 10 minutes", at)
		}
		if log := h.logText(); strings.Contains(log, "capped") {
			t.Errorf("log mentions a cap:\n%s", log)
		}
	})
}

// hangingBot never finishes a first attempt: each delivery waits until it
// is cancelled.
type hangingBot struct {
	mu        sync.Mutex
	started   []time.Time
	cancelled []time.Time
	causes    []error
}

func (b *hangingBot) Deliver(ctx context.Context, _ tokensender.Message) func() {
	b.mu.Lock()
	b.started = append(b.started, time.Now())
	b.mu.Unlock()
	<-ctx.Done()
	b.mu.Lock()
	b.cancelled = append(b.cancelled, time.Now())
	b.causes = append(b.causes, context.Cause(ctx))
	b.mu.Unlock()
	return func() {}
}

func TestDaemon_Run_deliveryNeverDelaysTheSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 3*time.Second)
		bot := &hangingBot{}
		h.d.Deliverer = bot
		start := time.Now()
		stop := h.start(t)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		at := h.schwab.times()
		bot.mu.Lock()
		cancelled := append([]time.Time(nil), bot.cancelled...)
		bot.mu.Unlock()
		stop()
		bot.mu.Lock()
		causes := append([]error(nil), bot.causes...)
		bot.mu.Unlock()

		if len(at) != 4 {
			t.Fatalf("%d refreshes in 10 s at a 3 s interval, want 4", len(at))
		}
		for i, a := range at {
			if want := time.Duration(i) * 3 * time.Second; a.Sub(start) != want {
				t.Errorf("refresh %d at %v, want %v", i+1, a.Sub(start), want)
			}
		}
		// Each hung delivery is superseded by the next token's.
		if len(cancelled) != 3 {
			t.Fatalf("%d deliveries cancelled, want the 3 superseded ones", len(cancelled))
		}
		for i, c := range cancelled {
			if want := time.Duration(i+1) * 3 * time.Second; c.Sub(start) != want {
				t.Errorf("delivery %d cancelled at %v, want %v, when the next token replaced it", i+1, c.Sub(start), want)
			}
		}
		// The deliverer is told why, for its log line: the first three were
		// superseded; the last one was cut short by the shutdown instead.
		if len(causes) != 4 {
			t.Fatalf("cancel causes %v, want 4", causes)
		}
		for i, c := range causes {
			if superseded := errors.Is(c, daemon.ErrSuperseded); superseded != (i < 3) {
				t.Errorf("delivery %d cancelled because %v", i+1, c)
			}
		}
		if n := strings.Count(h.logText(), "(3 seconds)"); n != 4 {
			t.Errorf("%d \"Next refresh\" lines, want 4:\n%s", n, h.logText())
		}
	})
}

// slowBot takes 2 s over its first attempt and logs it.
type slowBot struct{ h *harness }

func (b slowBot) Deliver(context.Context, tokensender.Message) func() {
	time.Sleep(2 * time.Second)
	b.h.d.Logger.Info("Token successfully sent to trading bot (slow.sock)")
	return func() {}
}

func TestDaemon_Run_logsTheFirstAttemptsBeforeTheSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		h.d.Deliverer = slowBot{h}
		start := time.Now()
		stop := h.start(t)
		time.Sleep(26 * time.Minute)
		synctest.Wait()
		stop()
		if log := h.logText(); !strings.Contains(log, "INFO: Token successfully sent to trading bot (slow.sock)\nINFO: Next refresh at ") {
			t.Errorf("the delivery's line does not come before the schedule's:\n%s", log)
		}
		if at := h.schwab.times(); len(at) != 2 || at[1].Sub(start) != 25*time.Minute {
			t.Errorf("refreshes at %v, want the second 25 minutes after the first", at)
		}
	})
}

func TestDaemon_Run_setsNoPeriodicTimerWhileIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		start := time.Now()
		stop := h.start(t)
		synctest.Wait()
		reads, alarms := h.clock.activity()
		if len(alarms) == 0 || !alarms[len(alarms)-1].Equal(start.Add(25*time.Minute)) {
			t.Fatalf("alarms %v, want the last one at the next refresh, %v", alarms, start.Add(25*time.Minute))
		}
		time.Sleep(25*time.Minute - time.Nanosecond)
		synctest.Wait()
		idleReads, idleAlarms := h.clock.activity()
		if idleReads != reads || len(idleAlarms) != len(alarms) {
			t.Errorf("while idle for 25 minutes the daemon read the clock %d times and set %d alarms; want 0 and 0",
				idleReads-reads, len(idleAlarms)-len(alarms))
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		stop()
		if n := h.bot.count(); n != 2 {
			t.Errorf("deliveries = %d, want the second when the alarm fired", n)
		}
	})
}

func TestDaemon_Run_alarmFiringEarlyIsRearmed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A clock that was set (not a suspend) wakes the alarm without
		// reaching the refresh time: the daemon sets a new alarm.
		h := newHarness(30*time.Minute, 25*time.Minute)
		start := time.Now()
		stop := h.start(t)
		time.Sleep(time.Minute)
		h.clock.suspend(time.Minute)
		synctest.Wait()
		if n := h.bot.count(); n != 1 {
			t.Fatalf("deliveries = %d after the clock moved 1 minute, want 1", n)
		}
		time.Sleep(23*time.Minute - time.Nanosecond)
		synctest.Wait()
		if n := h.bot.count(); n != 1 {
			t.Fatalf("deliveries = %d before the refresh time, want 1", n)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		stop()
		if at := h.schwab.times(); len(at) != 2 || at[1].Sub(start) != 24*time.Minute {
			t.Errorf("refreshes at %v, want the second 24 minutes (25 on the wall clock) after the first", at)
		}
	})
}

// noLifetime is a Refresher whose tokens carry an expiry but no expires_in.
type noLifetime struct{ left time.Duration }

func (n noLifetime) Refresh(context.Context, string) (tokensender.Token, error) {
	return tokensender.Token{AccessToken: "a", RefreshToken: "refresh-1", ExpiresAt: time.Now().Add(n.left)}, nil
}

func TestDaemon_Run_tokenWithoutExpiresIn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		h.d.Refresher = noLifetime{20 * time.Minute}
		stop := h.start(t)
		synctest.Wait()
		stop()
		log := h.logText()
		for _, want := range []string{
			"INFO: Token refreshed successfully (expires in 20 minutes)",
			"(15 minutes)", // its own expiry, less the 5-minute margin
		} {
			if !strings.Contains(log, want) {
				t.Errorf("log lacks %q:\n%s", want, log)
			}
		}
		if got := h.store.lastSaved().ExpiresAt; !got.Equal(time.Now().Add(20 * time.Minute)) {
			t.Errorf("saved expiry %v, want the Refresher's", got)
		}
	})
}

func TestDaemon_Run_heartbeatWithoutAPeriod(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A heartbeat without HeartbeatEvery beats only when the loop
		// wakes anyway: no ticker.
		h := newHarness(30*time.Minute, 25*time.Minute)
		var beats int
		h.d.Heartbeat = func() { beats++ }
		stop := h.start(t)
		synctest.Wait()
		first := beats
		time.Sleep(24 * time.Minute)
		synctest.Wait()
		if beats != first || first == 0 {
			t.Errorf("heartbeats: %d at the first wait, %d after 24 idle minutes; want some, then none", first, beats)
		}
		stop()
	})
}

func TestDaemon_Run_shutdownWhileWaitingForTheLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		h.store.lockHeld = true
		stop := h.start(t)
		synctest.Wait()
		// The file turns unreadable too: shutting down must not fall back
		// to a refresh from memory.
		h.store.set(func(*tokensender.Token) { h.store.loadErr = errors.New("token file x.json: is empty") })
		stop()
		if n := len(h.schwab.calls()); n != 0 {
			t.Errorf("%d refresh(es) after the shutdown", n)
		}
		if log := h.logText(); strings.Contains(log, "ERROR") {
			t.Errorf("shutdown logged an error:\n%s", log)
		}
	})
}

func TestDaemon_Once_saveFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		h.store.saveErr = errors.New("write x.json: no space left on device")
		tok, err := h.d.Once(t.Context())
		if err == nil || !errors.Is(err, h.store.saveErr) || !strings.Contains(err.Error(), "token refreshed and delivered, but not saved: ") {
			t.Errorf("Once = %v, want the save error", err)
		}
		if tok.AccessToken != "access-1" || h.bot.count() != 1 {
			t.Errorf("Once returned %v and delivered %d; want the new token, delivered", tok, h.bot.count())
		}
		// A later success clears the error.
		h.store.saveErr = nil
		if _, err := h.d.Once(t.Context()); err != nil {
			t.Errorf("second Once = %v", err)
		}
	})
}

func TestDaemon_Once_loadFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		h.store.loadErr = errors.New("Token file not found: x.json")
		if _, err := h.d.Once(t.Context()); !errors.Is(err, h.store.loadErr) {
			t.Errorf("Once = %v, want the load error", err)
		}
		if len(h.schwab.calls()) != 0 {
			t.Error("refreshed without a token file")
		}
		if log := h.logText(); !strings.Contains(log, "ERROR: Token file not found: x.json") {
			t.Errorf("log:\n%s", log)
		}
	})
}

func TestDaemon_Run_unreadableFileOnChangeKeepsTheTokenInMemory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		changed := make(chan struct{}, 1)
		h.d.FileChanged = changed
		stop := h.start(t)
		synctest.Wait()
		loadErr := errors.New("token file x.json: malformed JSON at line 1, column 2")
		h.store.set(func(tok *tokensender.Token) { h.store.loadErr, tok.RefreshToken = loadErr, "refresh-2" })
		changed <- struct{}{}
		synctest.Wait()
		if n := len(h.schwab.calls()); n != 1 {
			t.Errorf("refreshes = %d after an unreadable change, want 1", n)
		}
		stop()
		if log := h.logText(); !strings.Contains(log, "ERROR: "+loadErr.Error()+" (keeping the last good token in memory; the file will not be overwritten)") {
			t.Errorf("log:\n%s", log)
		}
	})
}

func TestDaemon_Run_lastDeliveryIsToldTheProgramStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(10*time.Second, 7*time.Second)
		h.d.MaxCycles = 1
		bot := &hangingBot{}
		h.d.Deliverer = bot
		if err := h.d.Run(t.Context()); err != nil {
			t.Fatal(err)
		}
		bot.mu.Lock()
		defer bot.mu.Unlock()
		if len(bot.causes) != 1 || !errors.Is(bot.causes[0], daemon.ErrStopping) {
			t.Errorf("cancel causes %v, want [%v]", bot.causes, daemon.ErrStopping)
		}
	})
}

// shutdownDuringLoad is a store whose Load, once blocked is set, waits for
// the shutdown and then fails, as a re-read of a torn file does when it is
// cut short.
type shutdownDuringLoad struct {
	*memStore
	blocked atomic.Bool
}

func (s *shutdownDuringLoad) Load(ctx context.Context) (tokensender.Token, error) {
	if s.blocked.Load() {
		<-ctx.Done()
		return tokensender.Token{}, errors.New("token file x.json: malformed JSON at line 1, column 294")
	}
	return s.memStore.Load(ctx)
}

func TestDaemon_Run_noFileErrorForAReadCutShortByShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		store := &shutdownDuringLoad{memStore: h.store}
		h.d.Store = store
		changed := make(chan struct{}, 1)
		h.d.FileChanged = changed
		stop := h.start(t)
		synctest.Wait()
		store.blocked.Store(true)
		changed <- struct{}{}
		synctest.Wait()
		stop()
		if log := h.logText(); strings.Contains(log, "ERROR") {
			t.Errorf("a re-read cut short by the shutdown was reported:\n%s", log)
		}
	})
}
