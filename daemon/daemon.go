// Package daemon runs the refresh loop: refresh the access token before it
// expires, push it to the trading bot and save it to the token file (the
// push starts first; the save does not wait for it), and sleep until the
// next refresh is due. Failures are retried with backoff so that the bot
// never holds an expired token while Schwab answers at all.
//
// The loop talks to the outside world through three small interfaces
// (Refresher, Store, Deliverer) and an injectable wall clock (Now, Alarm),
// so its scheduling can be tested on a fake clock with testing/synctest.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
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
	// Load reads and validates the token file (torn reads retried by the
	// implementation).
	Load(ctx context.Context) (tokensender.Token, error)
	// Update runs fn on the file's current token while holding the
	// cross-process lock (bounded wait), and saves the token fn returns
	// atomically (creation_timestamp = the store's now). If fn fails,
	// nothing is written and Update returns (zero Token, fn's error
	// unchanged). If fn succeeds but the write fails, Update returns (fn's
	// token, non-nil error): refreshed but not saved; when that error has
	// a method NewLogin() bool returning true, the save was skipped to
	// keep a new login another program wrote meanwhile. If the lock cannot
	// be taken or the file cannot be read, fn is not called.
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
	// Backoff between retries of transient failures. Backoff.Max (the
	// --retry-max flag) also caps a server-requested wait while the bot
	// has no valid token, or its token is within the refresh margin.
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
	// loop is alive and waiting (the systemd watchdog). It is the only
	// periodic wake-up of an idle loop.
	Heartbeat      func()
	HeartbeatEvery time.Duration
	// Now is the wall clock; nil means time.Now.
	Now func() time.Time
	// Alarm returns a channel that receives once the wall clock (Now)
	// reaches at, and a function that releases it; the loop calls that
	// function exactly once. The channel must also receive promptly when
	// the machine resumes from a suspend that carried the clock past at;
	// it may receive early, for example when the clock was set (the loop
	// then reads Now and sets a new alarm). nil means an alarm on the
	// system's wall clock that sleeps through to at (a timerfd on Linux;
	// PollAlarm(time.Now) elsewhere). A Now other than the system's clock
	// needs an Alarm on that same clock, such as PollAlarm(Now).
	Alarm func(at time.Time) (fired <-chan struct{}, stop func())
	// Settings are printed after the start banner, one "Name: value" line
	// each, in order (socket path, token file, app config).
	Settings [][2]string
	// Quiet leaves out the start and stop banners and the settings lines:
	// cluster mode prints them once per process, and runs one loop per
	// term of leadership.
	Quiet bool
	// FirstRefresh, if set, is when the first refresh is due (at once if
	// it has passed); zero means at once. Cluster mode: a new leader
	// continues the schedule of the token it takes over.
	FirstRefresh time.Time
	// OnEvent, if set, hears every state change (metrics, alert hooks,
	// systemd). It is called on the loop's goroutine and must not block.
	OnEvent func(tokensender.Event)

	log       *slog.Logger      // Logger, with the current cycle's number
	held      tokensender.Token // the newest token we know to be good
	saveErr   error             // why the last refreshed token is not in the file
	failures  int               // consecutive failed refreshes
	deliveryC context.CancelCauseFunc
	inflight  sync.WaitGroup // background deliveries
}

// fileKept is appended to a token-file error when the loop carries on with
// the token it holds.
const fileKept = " (keeping the last good token in memory; the file will not be overwritten)"

// Run loads the token file, then refreshes at once and keeps refreshing
// until ctx is cancelled. A refresh in progress when ctx is cancelled is
// abandoned before its file write starts, never during it. Run returns nil
// on a clean shutdown and an error (already logged) only when it cannot
// start.
func (d *Daemon) Run(ctx context.Context) error {
	d.log = d.Logger
	tok, err := d.Store.Load(ctx)
	if err != nil {
		d.log.Error(err.Error())
		return err
	}
	d.held = tok
	if !d.Quiet {
		LogStart(d.log, d.Interval, d.Settings)
	}
	defer d.stop()
	d.emit(tokensender.Event{Kind: tokensender.EventStarted})

	// Each cycle's lines, from the wait for it on, carry its number as a
	// structured field (JSON format only).
	next := d.now()
	if !d.FirstRefresh.IsZero() {
		next = d.FirstRefresh
	}
	for cycle := 1; d.MaxCycles == 0 || cycle <= d.MaxCycles; cycle++ {
		d.log = d.Logger.With(logging.Cycle(cycle))
		if !d.waitUntil(ctx, next) {
			return nil
		}
		d.log.Info("")
		d.log.Info(fmt.Sprintf("--- Refresh Cycle %d ---", cycle))
		next = d.cycle(ctx)
		if ctx.Err() != nil {
			return nil
		}
	}
	return nil
}

// Once makes a single refresh outside the loop (the `refresh` command): it
// delivers the new token, saves it, and waits until every delivery has
// finished, retries included. Errors have been logged when it returns. If
// only saving failed, the new token is returned with the error.
func (d *Daemon) Once(ctx context.Context) (tokensender.Token, error) {
	d.log = d.Logger
	held, err := d.Store.Load(ctx)
	if err != nil {
		d.log.Error(err.Error())
		return tokensender.Token{}, err
	}
	d.held = held
	d.log.Info("Refreshing OAuth token...")
	tok, _, _, err := d.refresh(ctx)
	if err != nil {
		d.logFailure(err)
		return tokensender.Token{}, err
	}
	d.inflight.Wait()
	if d.saveErr != nil {
		return tok, fmt.Errorf("token refreshed and delivered, but not saved: %w", d.saveErr)
	}
	return tok, nil
}

// cycle makes one refresh attempt and returns when the next one is due.
func (d *Daemon) cycle(ctx context.Context) time.Time {
	d.log.Info("Refreshing OAuth token...")
	began := d.now()
	tok, at, first, err := d.refresh(ctx)
	took := d.now().Sub(began)
	if ctx.Err() != nil {
		return at
	}
	if err != nil {
		// Whole seconds, like the times in the log line.
		return d.failed(err, d.now().Truncate(time.Second), took)
	}
	recovered := d.failures
	d.failures = 0
	// The schedule counts from the instant the token's expiry was counted
	// from, so the log reads "25 minutes", never "24 minutes 59 seconds".
	next := NextRefresh(at, tok, d.Interval)
	d.awaitFirstAttempt(ctx, first, next)
	if recovered > 0 {
		d.emit(tokensender.Event{Kind: tokensender.EventRecovered, Failures: recovered, Duration: took, Next: next})
	}
	d.emit(tokensender.Event{Kind: tokensender.EventRefreshed, Duration: took, Next: next})
	d.log.Info(fmt.Sprintf("Next refresh at %s (%s)", next.Format(logging.TimeLayout), tokensender.HumanDuration(next.Sub(at))),
		logging.NextRefresh(next))
	return next
}

// refresh makes one refresh inside Store.Update, so the token file's lock
// is held across load, refresh and save and no other process refreshes
// with the same refresh token in between. at is the instant, in whole
// seconds, the new token's expiry counts from.
//
// A new token is handed over (logged, and its delivery started: see
// handOver) as soon as Schwab has answered, before the Store writes it;
// first is closed once the delivery's first attempt to each bot has
// finished (nil without a Deliverer). A token that is not saved is
// delivered all the same, and the next cycle writes the file again.
//
// When the file cannot be read, the refresh goes ahead from the token held
// in memory and nothing is written: a file we could not parse is never
// overwritten.
func (d *Daemon) refresh(ctx context.Context) (tok tokensender.Token, at time.Time, first <-chan struct{}, err error) {
	var called, refreshed bool
	_, err = d.Store.Update(ctx, func(current tokensender.Token) (tokensender.Token, error) {
		called = true
		// The file may lack the login time (another program rewrote it):
		// put back what we know.
		current.RefreshTokenIssuedAt = current.LoginTime(d.held, d.now())
		var rerr error
		tok, at, rerr = d.exchange(ctx, current)
		if rerr != nil {
			return tok, rerr
		}
		refreshed = true
		first = d.handOver(ctx, tok, at)
		return tok, nil // the Store writes it now
	})
	d.saveErr = nil
	if err == nil {
		return tok, at, first, nil
	}
	if refreshed {
		d.saveErr = err
		if newLogin(err) {
			// Not a failure: another program wrote a new login while we
			// refreshed, and the file keeps it; FileChanged (or the next
			// cycle) takes it up.
			d.log.Warn(err.Error())
			return tok, at, first, nil
		}
		d.log.Error(fmt.Sprintf("Could not save the new token: %v (the previous file is intact; will retry on the next cycle)", err))
		return tok, at, first, nil
	}
	if called || ctx.Err() != nil {
		return tokensender.Token{}, at, nil, err
	}
	// fn never ran: the lock could not be taken, or the file not read.
	// Only an unreadable file is worked around.
	if _, loadErr := d.Store.Load(ctx); loadErr == nil {
		return tokensender.Token{}, at, nil, err
	}
	d.log.Error(err.Error() + fileKept)
	if tok, at, err = d.exchange(ctx, d.held); err != nil {
		return tokensender.Token{}, at, nil, err
	}
	return tok, at, d.handOver(ctx, tok, at), nil
}

// handOver makes a freshly refreshed token the one in use: it logs the
// success, starts delivering the token to the bot, and yields the
// processor. refresh calls it inside Store.Update, before the file is
// written, so the file's fsyncs (about 1.5 ms) no longer stand in front of
// the first token reaching the bot.
//
// The success line is logged first because the delivery logs from its own
// goroutine: the seed's order is "Token refreshed successfully", then
// "Token successfully sent to trading bot", then "Next refresh at".
//
// The yield lets the delivery's first attempt run, on one processor
// (GOMAXPROCS=1), until it first blocks, once it has written the message to
// the bot's socket; then the file is written while the bot answers.
// Nothing here waits for the attempt (a bot that never answers holds one
// for seconds), so neither the write nor the file's lock waits for the
// bot; without the yield the token is delivered all the same, only later.
func (d *Daemon) handOver(ctx context.Context, tok tokensender.Token, at time.Time) (first <-chan struct{}) {
	d.refreshed(tok, at)
	first = d.startDelivery(ctx, tok)
	runtime.Gosched()
	return first
}

// newLogin reports whether a Store error says the save was skipped because
// another program wrote a new refresh token meanwhile (the error has a
// method NewLogin() bool that returns true, as tokenfile's do).
func newLogin(err error) bool {
	var nl interface{ NewLogin() bool }
	return errors.As(err, &nl) && nl.NewLogin()
}

// exchange asks the Refresher for a new token in place of current. The new
// token expires ExpiresIn after at, the moment the request was made (whole
// seconds, as in the file), and carries its login time.
func (d *Daemon) exchange(ctx context.Context, current tokensender.Token) (tokensender.Token, time.Time, error) {
	at := d.now().Truncate(time.Second)
	tok, err := d.Refresher.Refresh(ctx, current.RefreshToken)
	if err != nil {
		return tokensender.Token{}, at, err
	}
	if tok.ExpiresIn > 0 {
		tok.ExpiresAt = at.Add(tok.Lifetime())
	}
	tok.RefreshTokenIssuedAt = tok.LoginTime(current, at)
	return tok, at, nil
}

// refreshed holds tok as the newest good token and logs the success, and
// the end of a run of failures if there was one (cycle resets the count).
func (d *Daemon) refreshed(tok tokensender.Token, now time.Time) {
	d.held = tok
	lifetime := tok.Lifetime() // Schwab's expires_in, as the seed reports it
	if lifetime <= 0 {
		lifetime = tok.ExpiresAt.Sub(now)
	}
	d.log.Info(fmt.Sprintf("Token refreshed successfully (expires in %s)", tokensender.HumanDuration(lifetime)),
		logging.Result(resultSuccess))
	if d.failures > 0 {
		d.log.Info(fmt.Sprintf("Token refresh recovered after %d failed attempt(s)", d.failures))
	}
}

// reloginAdvice is logged when Schwab no longer accepts the refresh token.
const reloginAdvice = "The refresh token is no longer accepted: run `token-refresh-sender login` to sign in again"

// Values of the result and error_class fields on refresh outcome lines.
const (
	resultSuccess         = "success"
	resultTransientError  = "transient_error"
	resultReloginRequired = "relogin_required"
	classTransient        = "transient"
	classReloginRequired  = "relogin_required"
)

// failureFields are the result and error_class fields of a failed
// refresh.
func failureFields(relogin bool) []any {
	if relogin {
		return []any{logging.Result(resultReloginRequired), logging.ErrorClass(classReloginRequired)}
	}
	return []any{logging.Result(resultTransientError), logging.ErrorClass(classTransient)}
}

// logFailure logs a failed refresh outside the loop (no next attempt).
func (d *Daemon) logFailure(err error) {
	relogin, _ := d.classify(err)
	d.log.Error("Token refresh failed: "+err.Error(), failureFields(relogin)...)
	if relogin {
		d.log.Error(reloginAdvice)
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
		d.log.Error(fmt.Sprintf("Token refresh failed: %v; next attempt at %s, or at once when a new login replaces the token file)", err, at(next)),
			append(failureFields(true), logging.NextRefresh(next))...)
		d.log.Error(reloginAdvice)
		d.emit(tokensender.Event{Kind: tokensender.EventReloginRequired, Err: err, Failures: d.failures, Duration: took, Next: next})
		return next
	}
	wait, capped := LimitRetryAfter(now, retryAfter, d.Backoff.Max, d.held)
	next := NextRetry(now, d.Backoff.Delay(d.failures), wait, d.held)
	state := "the current access token is still valid until " + d.held.ExpiresAt.Format(logging.TimeLayout)
	if d.held.Expired(now) {
		state = "the current access token has expired"
	}
	if capped {
		state += fmt.Sprintf("; the server asked to wait %s, capped at --retry-max (%s)",
			tokensender.HumanDuration(retryAfter), tokensender.HumanDuration(d.Backoff.Max))
	}
	d.log.Error(fmt.Sprintf("Token refresh failed: %v; retrying at %s, attempt %d failed; %s)", err, at(next), d.failures, state),
		append(failureFields(false), logging.NextRefresh(next))...)
	d.emit(tokensender.Event{Kind: tokensender.EventRefreshFailed, Err: err, Failures: d.failures, Duration: took, Next: next})
	return next
}

// Why a delivery's context is cancelled (context.Cause), so the deliverer
// can say it in its log line.
var (
	ErrSuperseded = errors.New("a newer token replaced it")
	ErrStopping   = errors.New("the program is stopping")
)

// startDelivery hands tok to the bot in the background, superseding
// (cancelling) any delivery still retrying an older token. The delivery
// goes on until the next one supersedes it or the loop stops. The channel
// it returns is closed once the first attempt to each bot has finished; it
// is nil without a Deliverer.
func (d *Daemon) startDelivery(ctx context.Context, tok tokensender.Token) <-chan struct{} {
	if d.Deliverer == nil {
		return nil
	}
	if d.deliveryC != nil {
		d.deliveryC(ErrSuperseded)
	}
	dctx, cancel := context.WithCancelCause(ctx)
	d.deliveryC = cancel
	msg := tok.Message()
	first := make(chan struct{})
	d.inflight.Go(func() {
		wait := d.Deliverer.Deliver(dctx, msg)
		close(first)
		wait()
	})
	return first
}

// awaitFirstAttempt waits until first is closed (the delivery's first
// attempt to each bot has finished), so their log lines come before the
// schedule's, but never past due, when the next refresh must start. A nil
// first (nothing delivered) does not wait.
func (d *Daemon) awaitFirstAttempt(ctx context.Context, first <-chan struct{}, due time.Time) {
	if first != nil {
		d.sleep(ctx, due, first, false)
	}
}

// waitUntil blocks until the wall clock reaches next, a refresh is
// requested, or ctx is done (then it returns false).
func (d *Daemon) waitUntil(ctx context.Context, next time.Time) bool {
	for {
		switch d.sleep(ctx, next, nil, true) {
		case wokeCancelled:
			return false
		case wokeRefreshNow:
			d.log.Info("Refresh requested (SIGUSR1)")
			return true
		case wokeFileChanged:
			if d.newLoginInFile(ctx) {
				return true
			}
		default: // wokeDue
			return true
		}
	}
}

// woke says why sleep returned.
type woke int

const (
	wokeDue woke = iota
	wokeCancelled
	wokeDone
	wokeRefreshNow
	wokeFileChanged
)

// sleep blocks until the wall clock reaches until, done is closed, ctx is
// done, or (with requests) RefreshNow or FileChanged receives. It sets one
// alarm for until and no periodic timer, except the heartbeat's when one
// is configured.
func (d *Daemon) sleep(ctx context.Context, until time.Time, done <-chan struct{}, requests bool) woke {
	var refreshNow, fileChanged <-chan struct{}
	if requests {
		refreshNow, fileChanged = d.RefreshNow, d.FileChanged
	}
	var fired <-chan struct{}
	release := func() {}
	defer func() { release() }()
	var beat <-chan time.Time
	if d.Heartbeat != nil && d.HeartbeatEvery > 0 {
		t := time.NewTicker(d.HeartbeatEvery)
		defer t.Stop()
		beat = t.C
	}
	for {
		if d.Heartbeat != nil {
			d.Heartbeat()
		}
		// Round(0) drops the monotonic reading: after a suspend only the
		// wall clock knows how much time really passed.
		if !d.now().Round(0).Before(until.Round(0)) {
			return wokeDue
		}
		if fired == nil {
			fired, release = d.alarm(until)
		}
		select {
		case <-ctx.Done():
			return wokeCancelled
		case <-done:
			return wokeDone
		case <-refreshNow:
			return wokeRefreshNow
		case _, ok := <-fileChanged:
			if ok {
				return wokeFileChanged
			}
			d.FileChanged, fileChanged = nil, nil
		case <-fired:
			// Due, or the clock changed: read it again, and set a new
			// alarm if it is early.
			release()
			fired, release = nil, func() {}
		case <-beat:
		}
	}
}

// alarm sets an alarm for the wall-clock time at.
func (d *Daemon) alarm(at time.Time) (<-chan struct{}, func()) {
	if d.Alarm != nil {
		return d.Alarm(at)
	}
	return wallAlarm(at)
}

// newLoginInFile reloads the token file after it changed and reports
// whether it now holds a refresh token other than the one in use. A new
// refresh token's login time is the file's, or else now, when we first saw
// it.
func (d *Daemon) newLoginInFile(ctx context.Context) bool {
	tok, err := d.Store.Load(ctx)
	if err != nil {
		if ctx.Err() == nil { // a read cut short by the shutdown proves nothing
			d.log.Error(err.Error() + fileKept)
		}
		return false
	}
	if tok.RefreshToken == d.held.RefreshToken {
		return false
	}
	d.log.Info("The token file has a new refresh token (a new login); refreshing now")
	tok.RefreshTokenIssuedAt = tok.LoginTime(d.held, d.now())
	d.held = tok
	return true
}

func (d *Daemon) stop() {
	d.log = d.Logger // the closing lines belong to no cycle
	d.emit(tokensender.Event{Kind: tokensender.EventStopping})
	if d.deliveryC != nil {
		d.deliveryC(ErrStopping)
	}
	d.inflight.Wait()
	if !d.Quiet {
		LogStopped(d.log)
	}
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

// LogStart logs what Run logs at start unless Quiet: the start banners,
// the refresh interval and the settings lines. Cluster mode, which runs
// one quiet loop per term of leadership, logs them once per process.
func LogStart(log *slog.Logger, interval time.Duration, settings [][2]string) {
	banner(log, "Token Refresh Sender Initialized")
	banner(log, "Token Refresh Sender Started")
	log.Info("Refresh interval: " + tokensender.HumanDuration(interval))
	for _, s := range settings {
		log.Info(s[0] + ": " + s[1])
	}
}

// LogStopped logs the stop banner, as Run does when it returns unless
// Quiet.
func LogStopped(log *slog.Logger) { banner(log, "Token Refresh Sender Stopped") }

func banner(log *slog.Logger, title string) {
	log.Info(logging.Banner)
	log.Info(title)
	log.Info(logging.Banner)
}

func (d *Daemon) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}
