package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/schwabtools/token-refresh-sender/alert"
	"github.com/schwabtools/token-refresh-sender/config"
	"github.com/schwabtools/token-refresh-sender/daemon"
	"github.com/schwabtools/token-refresh-sender/delivery"
	"github.com/schwabtools/token-refresh-sender/metrics"
	"github.com/schwabtools/token-refresh-sender/schwab"
	"github.com/schwabtools/token-refresh-sender/systemd"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// The daemon keeps its store behind the loop's interface.
var _ daemon.Store = (*tokenfile.Store)(nil)

// Main is the daemon with every service it runs, wired in one place.
//
// NewMain fills the dependencies with the production ones; a test (or the
// demo) replaces any exported field before Run. Run builds the services in
// start-up order and runs the refresh loop until ctx is cancelled or a
// shutdown signal arrives; Close tears down whatever Run built, in reverse
// order. Call Close even when Run fails.
type Main struct {
	// Flags are the shared command-line flags (paths, sockets, log, timing).
	Flags Globals
	// Hooks are the alert hooks (--notify-exec, --notify-webhook); Run sets
	// its Logger. NewHooks, if set, builds them instead once the logger
	// exists (run's flags: it reads --notify-webhook-file and warns about a
	// webhook URL on the command line).
	Hooks    *alert.Notifier
	NewHooks func(*slog.Logger) (*alert.Notifier, error)
	// Stdout receives every log line (the log file gets them too).
	Stdout io.Writer
	// HTTPClient carries the requests to Schwab: system roots and bounded
	// timeouts in production, the fake's root CA in tests and the demo.
	HTTPClient *http.Client
	// Signals turns the process's signals into a shutdown (the returned ctx
	// is cancelled), refresh requests and log-file reopening; stop undoes
	// it. Production: handleSignals. Tests drive the daemon through ctx
	// and a channel of their own instead.
	Signals func(ctx context.Context, log *slog.Logger, reopenLog func() error) (sctx context.Context, refreshNow <-chan struct{}, stop func())
	// Systemd is the sd_notify client (production: systemd.New, which
	// reads NOTIFY_SOCKET and is silent outside systemd).
	Systemd func(*slog.Logger) *systemd.Notifier
	// Listen opens the --metrics-addr listener (production: net.Listen).
	Listen func(network, addr string) (net.Listener, error)
	// Now is the wall clock handed to the loop.
	Now func() time.Time
	// MaxCycles stops the loop after that many refresh attempts (the demo);
	// 0 runs until shutdown.
	MaxCycles int
	// Ready, if set, is called once every service is up, just before the
	// loop starts (the demo starts its stand-in bot there); an error stops
	// Run.
	Ready func(*Main) error

	// Built by Run, in this order.

	// Log writes to Stdout and the --log-file.
	Log *slog.Logger
	// Metrics is nil without --metrics-addr; MetricsAddr is where it serves.
	Metrics     *metrics.Metrics
	MetricsAddr net.Addr
	// App is the Schwab app config; Schwab the OAuth client built from it.
	App    *config.App
	Schwab *schwab.Client
	// Sender delivers each token to every --socket.
	Sender *delivery.Sender
	// Store is the token file; PIDFile is "<token file>.pid", which records
	// this daemon's pid while it runs and is removed on a clean stop.
	Store   *tokenfile.Store
	PIDFile string
	// Daemon is the refresh loop (nil in cluster mode, where the cluster
	// node runs one each time this instance leads).
	Daemon *daemon.Daemon

	closers []func() error
}

// NewMain is a Main with the production dependencies, for the given flags
// and hooks.
func NewMain(flags Globals, hooks *alert.Notifier) *Main {
	if hooks == nil {
		hooks = &alert.Notifier{}
	}
	return &Main{
		Flags:      flags,
		Hooks:      hooks,
		Stdout:     os.Stdout,
		HTTPClient: withSystemRoots(schwab.NewHTTPClient(nil)),
		Signals:    handleSignals,
		Systemd:    systemd.New,
		Listen:     net.Listen,
		Now:        time.Now,
	}
}

// hookShutdown bounds the wait for alert hooks still running at exit.
const hookShutdown = 15 * time.Second

// onClose registers fn to run in Close, before everything registered
// earlier.
func (m *Main) onClose(fn func() error) { m.closers = append(m.closers, fn) }

// Run builds every service in start-up order, then runs the refresh loop
// until shutdown. It returns nil on a clean stop. Errors that are already
// logged come back as an exitCode; usage errors as a usageError.
func (m *Main) Run(ctx context.Context) error {
	g := &m.Flags

	// 1. Flags that need no file: timing, sizes, --metrics-addr, --socket.
	if err := g.validate(); err != nil {
		return err
	}
	targets, err := g.targets()
	if err != nil {
		return err
	}
	if g.clusterOn() {
		if err := g.checkCluster(); err != nil {
			return err
		}
	}

	// 2. The logger: stdout and the rotating --log-file.
	log, reopenLog, closeLog, err := g.logger(m.Stdout)
	if err != nil {
		return err
	}
	m.Log = log
	m.onClose(closeLog)

	// 3. Signals: SIGINT/SIGTERM stop, SIGUSR1 refreshes, SIGHUP reopens the log.
	ctx, refreshNow, stopSignals := m.Signals(ctx, log, reopenLog)
	m.onClose(func() error { stopSignals(); return nil })

	// 4. Observers of the loop's events: alert hooks, expiry warnings,
	// metrics (bound now, so a busy port fails at start-up) and systemd.
	if m.NewHooks != nil {
		if m.Hooks, err = m.NewHooks(log); err != nil {
			return err
		}
	}
	m.Hooks.Logger = log
	if err := m.Hooks.Validate(); err != nil {
		return usage(err)
	}
	m.onClose(func() error {
		hctx, cancel := context.WithTimeout(context.Background(), hookShutdown)
		defer cancel()
		return m.Hooks.Close(hctx)
	})
	obs := newObservers(g, log, m.Hooks, m.Systemd(log))
	obs.freeMemory = debug.FreeOSMemory
	if g.MetricsAddr != "" {
		if err := m.serveMetrics(log); err != nil {
			return err
		}
		obs.metrics = m.Metrics
	}

	// 5. Schwab: the app config and the OAuth client.
	if m.App, err = g.loadApp(log); err != nil {
		return err
	}
	m.Schwab = newSchwabClient(m.App, m.HTTPClient)

	// 6. The bots.
	m.Sender = &delivery.Sender{Targets: targets, Logger: log, AllowedPeerUIDs: g.AllowPeerUID, OnResults: obs.delivered}

	// 7. The token file: it must be usable before anything else claims it;
	// then this process becomes its only daemon (the pid file), removes
	// temp files a crash left behind, and watches it for a new login.
	m.Store = g.store(log)
	m.Store.Now = m.Now
	g.warnPermissions(log)
	if _, err := m.Store.Load(ctx); err != nil && (!g.clusterOn() || !errors.Is(err, tokenfile.ErrNotFound)) {
		// In cluster mode a host without a token file follows and
		// writes it from etcd.
		return logTokenFileError(log, err)
	}
	instance := &tokenfile.Instance{Store: m.Store}
	if err := instance.Open(ctx); err != nil {
		log.Error(err.Error())
		return exitCode(1)
	}
	m.PIDFile = pidPath(g.TokenFile)
	m.onClose(instance.Close)

	// 7b. Cluster mode: the etcd record replaces the token file as the
	// refresh loop's store; every instance delivers each new record.
	if g.clusterOn() {
		return m.runCluster(ctx, obs, refreshNow, instance.Changes())
	}

	// 8. The refresh loop, observed.
	m.Daemon = &daemon.Daemon{
		Refresher:   m.Schwab,
		Store:       m.Store,
		Deliverer:   m.Sender,
		Classify:    schwab.RetryAdvice,
		Logger:      log,
		Interval:    g.Interval,
		Backoff:     daemon.Backoff{Min: g.RetryMin, Max: g.RetryMax},
		MaxCycles:   m.MaxCycles,
		RefreshNow:  refreshNow,
		FileChanged: instance.Changes(),
		Now:         m.Now,
		Settings:    settings(g),
	}
	obs.attach(m.Daemon)
	if m.Ready != nil {
		if err := m.Ready(m); err != nil {
			return err
		}
	}

	// 9. Run until shutdown.
	if err := m.Daemon.Run(ctx); err != nil {
		loginHint(log, err)
		return exitCode(1)
	}
	return nil
}

// Close tears down, in reverse order, every service Run started: the
// watcher, the pid file, the metrics server (awaited; its error is
// returned), the alert hooks still running, signal handling, the log file.
func (m *Main) Close() error {
	var errs []error
	for i := len(m.closers) - 1; i >= 0; i-- {
		errs = append(errs, m.closers[i]())
	}
	m.closers = nil
	return errors.Join(errs...)
}

// settings are the lines printed after the start banner.
func settings(g *Globals) [][2]string {
	return [][2]string{
		{"Socket path", g.socketList()},
		{"Token file", g.TokenFile},
		{"App config", g.Config},
	}
}

// serveMetrics binds --metrics-addr and serves /metrics and /healthz in
// the background until Close, which waits for the server to stop and
// returns its error. A server that fails while the daemon runs is logged
// at once; the daemon keeps refreshing.
func (m *Main) serveMetrics(log *slog.Logger) error {
	ln, err := m.Listen("tcp", m.Flags.MetricsAddr)
	if err != nil {
		return fmt.Errorf("--metrics-addr %s: cannot listen: %w", m.Flags.MetricsAddr, err)
	}
	m.Metrics = metrics.New(m.Now)
	m.Metrics.RefreshTokenLifetime = m.Flags.RefreshTokenLifetime
	m.MetricsAddr = ln.Addr()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := m.Metrics.ServeListener(ctx, ln, log)
		if err != nil && ctx.Err() == nil {
			log.Error(err.Error())
		}
		done <- err
	}()
	m.onClose(func() error {
		cancel()
		return <-done
	})
	return nil
}

// pidPath is where tokenfile.Instance keeps the pid: next to the token
// file, symlinks resolved. (TestMain_pidFile checks both agree.)
func pidPath(tokenFile string) string {
	if p, err := filepath.EvalSymlinks(tokenFile); err == nil {
		tokenFile = p
	}
	return tokenFile + ".pid"
}
