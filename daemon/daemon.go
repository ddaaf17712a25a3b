// Package daemon runs the refresh loop: refresh the access token before it
// expires, save it to the token file, push it to the trading bot, and sleep
// until the next refresh is due. Failures are retried with backoff so that
// the bot never holds an expired token while Schwab answers at all.
//
// The loop talks to the outside world through three small interfaces
// (Refresher, Store, Deliverer) so its scheduling can be tested on a fake
// clock with testing/synctest.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/logging"
)

// Refresher exchanges a refresh token for a new token set (Schwab's token
// endpoint).
type Refresher interface {
	Refresh(ctx context.Context, refreshToken string) (tokensender.Token, error)
}

// Store is the token file shared with other processes.
type Store interface {
	// Load reads and validates the token file (torn reads retried by the implementation).
	Load(ctx context.Context) (tokensender.Token, error)
	// Update runs fn on the file's current token while holding the cross-process lock
	// (bounded wait), and saves the token fn returns atomically (creation_timestamp = store's now).
	// fn error: nothing written, Update returns (zero Token, fn's error unchanged).
	// fn ok but the write failed: Update returns (fn's token, non-nil error).
	Update(ctx context.Context, fn func(current tokensender.Token) (tokensender.Token, error)) (tokensender.Token, error)
}

// Deliverer pushes a token to the trading bot(s). Deliver returns once the
// first attempt to each bot has finished (and been logged); retries may go
// on in the background until ctx is cancelled. wait blocks until they end.
type Deliverer interface {
	Deliver(ctx context.Context, msg tokensender.Message) (wait func())
}

// Classifier tells whether a refresh error means the refresh token is no
// longer accepted (a new browser login is needed), and how long the server
// asked us to wait before retrying.
type Classifier func(err error) (relogin bool, retryAfter time.Duration)

// Daemon is the refresh loop. Set the exported fields, then call Run.
type Daemon struct {
	Refresher Refresher
	Store     Store
	Deliverer Deliverer
	Classify  Classifier
	Logger    *slog.Logger

	// Interval between regular refreshes (the seed's 25 minutes).
	Interval time.Duration
	// Backoff between retries of transient failures.
	Backoff Backoff
	// MaxCycles stops the loop after that many refresh attempts (0: run
	// until the context is cancelled). The demo uses it.
	MaxCycles int
	// RefreshNow, when it receives, starts a refresh at once (SIGUSR1).
	RefreshNow <-chan struct{}
	// FileChanged reports that the token file may have been replaced
	// (tokenfile.Watch). When it now holds a different refresh token (a
	// new login), the loop refreshes at once; its own writes, which keep
	// the refresh token, are ignored.
	FileChanged <-chan struct{}
	// Heartbeat, if set, is called at least every HeartbeatEvery while the
	// loop is alive and waiting (the systemd watchdog).
	Heartbeat      func()
	HeartbeatEvery time.Duration
	// Now is the wall clock; nil means time.Now.
	Now func() time.Time
	// Settings are printed after the start banner, one "Name: value" line
	// each, in order (socket path, token file, app config).
	Settings [][2]string
	// OnEvent, if set, hears every state change (metrics, alert hooks,
	// systemd). It is called on the loop's goroutine and must not block.
	OnEvent func(tokensender.Event)

	held      tokensender.Token // the newest token we know to be good
	saveErr   error             // why the last refreshed token is not in the file
	failures  int               // consecutive failed refreshes
	deliveryC context.CancelFunc
	inflight  sync.WaitGroup // background delivery retries
}

// lockWait bounds the wait for the token file's lock.
const lockWait = 45 * time.Second

// wallClockCheck bounds every wait: timers do not advance while a machine
// is suspended, so the loop re-reads the wall clock at least this often.
const wallClockCheck = time.Minute

// Run loads the token file, then refreshes at once and keeps refreshing
// until ctx is cancelled. A refresh in progress when ctx is cancelled is
// abandoned before its file write starts, never during it. Run returns nil
// on a clean shutdown and an error (already logged) only when it cannot
// start.
func (d *Daemon) Run(ctx context.Context) error {
	tok, err := d.Store.Load(ctx)
	if err != nil {
		d.Logger.Error(err.Error())
		return err
	}
	d.held = tok
	d.banner("Token Refresh Sender Initialized")
	d.banner("Token Refresh Sender Started")
	d.Logger.Info("Refresh interval: " + tokensender.HumanDuration(d.Interval))
	for _, s := range d.Settings {
		d.Logger.Info(s[0] + ": " + s[1])
	}
	defer d.stop()
	d.emit(tokensender.Event{Kind: tokensender.EventStarted})

	next := d.now()
	for cycle := 1; d.MaxCycles == 0 || cycle <= d.MaxCycles; cycle++ {
		if !d.waitUntil(ctx, next) {
			return nil
		}
		d.Logger.Info("")
		d.Logger.Info(fmt.Sprintf("--- Refresh Cycle %d ---", cycle))
		next = d.cycle(ctx)
		if ctx.Err() != nil {
			return nil
		}
	}
	return nil
}

// Once makes a single refresh outside the loop (the `refresh` command): it
// saves the new token, delivers it, and waits until every delivery has
// finished, retries included. Errors have been logged when it returns. If
// only saving failed, the new token is returned with the error.
func (d *Daemon) Once(ctx context.Context) (tokensender.Token, error) {
	held, err := d.Store.Load(ctx)
	if err != nil {
		d.Logger.Error(err.Error())
		return tokensender.Token{}, err
	}
	d.held = held
	d.Logger.Info("Refreshing OAuth token...")
	tok, err := d.refresh(ctx)
	if err != nil {
		d.logFailure(err)
		return tokensender.Token{}, err
	}
	d.refreshed(tok, d.now())
	d.deliver(ctx, tok)
	d.inflight.Wait()
	if d.saveErr != nil {
		return tok, fmt.Errorf("token refreshed and delivered, but not saved: %w", d.saveErr)
	}
	return tok, nil
}

// cycle makes one refresh attempt and returns when the next one is due.
func (d *Daemon) cycle(ctx context.Context) time.Time {
	d.Logger.Info("Refreshing OAuth token...")
	began := d.now()
	tok, err := d.refresh(ctx)
	took := d.now().Sub(began)
	// Whole seconds, like expires_at: the schedule then reads "25 minutes",
	// not "24 minutes 59 seconds".
	now := d.now().Truncate(time.Second)
	if ctx.Err() != nil {
		return now
	}
	if err != nil {
		return d.failed(err, now, took)
	}
	recovered := d.failures
	d.failures = 0
	d.refreshed(tok, now)
	if recovered > 0 {
		d.Logger.Info(fmt.Sprintf("Token refresh recovered after %d failed attempt(s)", recovered))
	}
	d.deliver(ctx, tok)
	next := NextRefresh(now, tok, d.Interval)
	if recovered > 0 {
		d.emit(tokensender.Event{Kind: tokensender.EventRecovered, Failures: recovered, Duration: took, Next: next})
	}
	d.emit(tokensender.Event{Kind: tokensender.EventRefreshed, Duration: took, Next: next})
	d.Logger.Info(fmt.Sprintf("Next refresh at %s (%s)", next.Format(logging.TimeLayout), tokensender.HumanDuration(next.Sub(now))))
	return next
}

// refresh holds the token-file lock across read, refresh and write, so no
// other process refreshes with the same refresh token in between.
func (d *Daemon) refresh(ctx context.Context) (tokensender.Token, error) {
	// Another process holding the lock for longer than this is stuck; the
	// loop must not wedge behind it (systemd's watchdog would kill us).
	lockCtx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	called := false
	var refreshErr error
	fn := func(current tokensender.Token) (tokensender.Token, error) {
		called = true
		tok, err := d.Refresher.Refresh(ctx, current.RefreshToken)
		if err != nil {
			refreshErr = err
			return tokensender.Token{}, err
		}
		// Schwab answers a refresh with the same refresh token: its login time
		// carries over. A new refresh token was issued just now.
		tok.RefreshTokenIssuedAt = current.RefreshTokenIssuedAt
		if tok.RefreshToken != current.RefreshToken {
			tok.RefreshTokenIssuedAt = d.now().Truncate(time.Second)
		}
		return tok, nil
	}
	d.saveErr = nil
	tok, err := d.Store.Update(lockCtx, fn)
	switch {
	case refreshErr != nil:
		return tokensender.Token{}, refreshErr
	case called && err != nil:
		// The token is good: the bot still gets it, and the next cycle
		// writes the file again.
		d.saveErr = err
		d.Logger.Error(fmt.Sprintf("Could not save the new token: %v (the previous file is intact; will retry on the next cycle)", err))
		return tok, nil
	case called:
		return tok, nil
	}
	var lf interface{ LockFailed() bool }
	if errors.As(err, &lf) && lf.LockFailed() || ctx.Err() != nil {
		return tokensender.Token{}, fmt.Errorf("lock token file: %w", err)
	}
	// Never overwrite a file we could not parse; keep working from the
	// last good token in memory.
	d.Logger.Error(err.Error() + " (keeping the last good token in memory; the file will not be overwritten)")
	return fn(d.held)
}

func (d *Daemon) refreshed(tok tokensender.Token, now time.Time) {
	d.held = tok
	lifetime := tok.Lifetime() // Schwab's expires_in, as the seed reports it
	if lifetime <= 0 {
		lifetime = tok.ExpiresAt.Sub(now)
	}
	d.Logger.Info(fmt.Sprintf("Token refreshed successfully (expires in %s)", tokensender.HumanDuration(lifetime)))
}

// reloginAdvice is logged when Schwab no longer accepts the refresh token.
const reloginAdvice = "The refresh token is no longer accepted: run `token-refresh-sender login` to sign in again"

// logFailure logs a failed refresh outside the loop (no next attempt).
func (d *Daemon) logFailure(err error) {
	d.Logger.Error("Token refresh failed: " + err.Error())
	if relogin, _ := d.classify(err); relogin {
		d.Logger.Error(reloginAdvice)
	}
}

func (d *Daemon) classify(err error) (relogin bool, retryAfter time.Duration) {
	if d.Classify == nil {
		return false, 0
	}
	return d.Classify(err)
}

// failed logs a refresh failure, with the next attempt's time on the same
// line, and decides when that attempt is.
func (d *Daemon) failed(err error, now time.Time, took time.Duration) time.Time {
	d.failures++
	relogin, retryAfter := d.classify(err)
	at := func(next time.Time) string {
		return fmt.Sprintf("%s (in %s", next.Format(logging.TimeLayout), tokensender.HumanDuration(next.Sub(now)))
	}
	if relogin {
		next := now.Add(d.Backoff.Max)
		d.Logger.Error(fmt.Sprintf("Token refresh failed: %v; next attempt at %s, or at once when a new login replaces the token file)", err, at(next)))
		d.Logger.Error(reloginAdvice)
		d.emit(tokensender.Event{Kind: tokensender.EventReloginRequired, Err: err, Failures: d.failures, Duration: took, Next: next})
		return next
	}
	next := NextRetry(now, d.Backoff.Delay(d.failures), retryAfter, d.held)
	state := "the current access token is still valid until " + d.held.ExpiresAt.Format(logging.TimeLayout)
	if d.held.Expired(now) {
		state = "the current access token has expired"
	}
	d.Logger.Error(fmt.Sprintf("Token refresh failed: %v; retrying at %s, attempt %d failed; %s)", err, at(next), d.failures, state))
	d.emit(tokensender.Event{Kind: tokensender.EventRefreshFailed, Err: err, Failures: d.failures, Duration: took, Next: next})
	return next
}

// deliver hands tok to the bot, superseding any delivery still retrying an
// older token.
func (d *Daemon) deliver(ctx context.Context, tok tokensender.Token) {
	if d.Deliverer == nil {
		return
	}
	if d.deliveryC != nil {
		d.deliveryC()
	}
	dctx, cancel := context.WithCancel(ctx)
	d.deliveryC = cancel
	wait := d.Deliverer.Deliver(dctx, tok.Message())
	d.inflight.Go(wait)
}

// waitUntil blocks until the wall clock reaches next, a refresh is
// requested, or ctx is done (then it returns false).
func (d *Daemon) waitUntil(ctx context.Context, next time.Time) bool {
	for {
		// Round(0) drops the monotonic reading: after a suspend only the
		// wall clock knows how much time really passed.
		if d.Heartbeat != nil {
			d.Heartbeat()
		}
		left := next.Round(0).Sub(d.now().Round(0))
		if left <= 0 {
			return true
		}
		wait := min(left, wallClockCheck)
		if d.Heartbeat != nil && d.HeartbeatEvery > 0 {
			wait = min(wait, d.HeartbeatEvery)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-d.RefreshNow:
			t.Stop()
			d.Logger.Info("Refresh requested (SIGUSR1)")
			return true
		case _, ok := <-d.FileChanged:
			t.Stop()
			if !ok {
				d.FileChanged = nil
			} else if d.newLoginInFile() {
				return true
			}
		case <-t.C:
		}
	}
}

// newLoginInFile reloads the token file after it changed and reports
// whether it now holds a refresh token other than the one in use.
func (d *Daemon) newLoginInFile() bool {
	tok, err := d.Store.Load(context.Background())
	if err != nil {
		d.Logger.Error(err.Error() + " (keeping the last good token in memory; the file will not be overwritten)")
		return false
	}
	if tok.RefreshToken == d.held.RefreshToken {
		return false
	}
	d.Logger.Info("The token file has a new refresh token (a new login); refreshing now")
	d.held = tok
	return true
}

func (d *Daemon) stop() {
	d.emit(tokensender.Event{Kind: tokensender.EventStopping})
	if d.deliveryC != nil {
		d.deliveryC()
	}
	d.inflight.Wait()
	d.banner("Token Refresh Sender Stopped")
}

// emit fills in the common fields and hands ev to OnEvent.
func (d *Daemon) emit(ev tokensender.Event) {
	if d.OnEvent == nil {
		return
	}
	ev.At = d.now()
	ev.Token = d.held
	ev.RefreshTokenIssuedAt = d.held.RefreshTokenIssuedAt
	d.OnEvent(ev)
}

func (d *Daemon) banner(title string) {
	d.Logger.Info(logging.Banner)
	d.Logger.Info(title)
	d.Logger.Info(logging.Banner)
}

func (d *Daemon) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}
