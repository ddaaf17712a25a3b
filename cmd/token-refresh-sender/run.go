package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/alert"
	"github.com/schwabtools/token-refresh-sender/daemon"
	"github.com/schwabtools/token-refresh-sender/delivery"
	"github.com/schwabtools/token-refresh-sender/schwab"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// RunCmd is the daemon.
type RunCmd struct {
	NotifyExec        string   `env:"TOKEN_SENDER_NOTIFY_EXEC" placeholder:"CMD" help:"Run CMD (through sh -c) on refresh_failed, relogin_required, refresh_token_expiring and recovered events."`
	NotifyWebhook     string   `env:"TOKEN_SENDER_NOTIFY_WEBHOOK" placeholder:"URL" help:"POST those events as JSON to URL (Slack and Discord webhooks work as they are). Set it through the environment or --notify-webhook-file: on the command line every user sees it in ps."`
	NotifyWebhookFile string   `env:"TOKEN_SENDER_NOTIFY_WEBHOOK_FILE" placeholder:"PATH" help:"Read the webhook URL from PATH (one line; the file must be yours, mode 0600 or 0400)."`
	NotifyEnv         []string `env:"TOKEN_SENDER_NOTIFY_ENV" placeholder:"NAME" help:"Also pass the variable NAME to --notify-exec (besides PATH, HOME, USER, LOGNAME, LANG, LC_*, TZ and the TOKEN_SENDER_* event variables); repeatable."`
}

// notifier builds the alert hooks from the flags.
func (c *RunCmd) notifier(log *slog.Logger) (*alert.Notifier, error) {
	n := &alert.Notifier{Exec: c.NotifyExec, Webhook: c.NotifyWebhook, Env: c.NotifyEnv, Logger: log}
	if c.NotifyWebhook != "" && os.Getenv("TOKEN_SENDER_NOTIFY_WEBHOOK") != c.NotifyWebhook && log != nil {
		log.Warn("--notify-webhook on the command line is visible to every user in ps; set TOKEN_SENDER_NOTIFY_WEBHOOK or use --notify-webhook-file instead")
	}
	if c.NotifyWebhookFile != "" {
		if c.NotifyWebhook != "" {
			return nil, errors.New("--notify-webhook and --notify-webhook-file: give the webhook URL once, preferably in the file")
		}
		url, err := alert.ReadWebhookFile(c.NotifyWebhookFile)
		if err != nil {
			return nil, err
		}
		n.Webhook = url
	}
	return n, nil
}

// Run validates the configuration and runs the refresh loop until SIGINT
// or SIGTERM.
func (c *RunCmd) Run(g *Globals) error {
	s, err := g.begin()
	if err != nil {
		return err
	}
	defer s.close()
	log, ctx := s.log, s.ctx
	hooks, err := c.notifier(log)
	if err != nil {
		return err
	}
	obs, err := g.observe(ctx, log, hooks)
	if err != nil {
		return err
	}
	defer obs.close()
	d, err := g.daemon(log, nil, obs)
	if err != nil {
		return err
	}
	if _, err := tokenfile.Load(g.TokenFile); err != nil {
		return logTokenFileError(log, err)
	}
	release, err := tokenfile.ClaimDaemon(g.TokenFile)
	if err != nil {
		log.Error(err.Error())
		return exitCode(1)
	}
	defer release()
	d.RefreshNow = s.refreshNow
	obs.attach(d)
	g.prepare(ctx, d, log)
	if err := d.Run(ctx); err != nil {
		loginHint(log, err)
		return exitCode(1)
	}
	return nil
}

// daemon wires the refresh loop from the flags and the app config. A nil
// schwabClient means the production client (system roots); obs, if set,
// hears the outcome of every delivery.
func (g *Globals) daemon(log *slog.Logger, schwabClient *schwab.Client, obs *observers) (*daemon.Daemon, error) {
	app, err := g.loadApp(log)
	if err != nil {
		return nil, err
	}
	if schwabClient == nil {
		schwabClient = client(app)
	}
	targets, err := g.targets()
	if err != nil {
		return nil, err
	}
	return &daemon.Daemon{
		Refresher: schwabClient,
		Store:     &tokenfile.Store{Path: g.TokenFile},
		Deliverer: deliverer{&delivery.Sender{Targets: targets, Logger: log, AllowedPeerUIDs: g.AllowPeerUID}, obs.delivered},
		Classify:  classify,
		Logger:    log,
		Interval:  g.Interval,
		Backoff:   daemon.Backoff{Min: g.RetryMin, Max: g.RetryMax},
		Settings: [][2]string{
			{"Socket path", g.socketList()},
			{"Token file", g.TokenFile},
			{"App config", g.Config},
		},
	}, nil
}

// prepare readies a daemon that owns the token file: it removes temp files
// a crash left behind and watches the file for a new login.
func (g *Globals) prepare(ctx context.Context, d *daemon.Daemon, log *slog.Logger) {
	if unlock, err := tokenfile.Lock(ctx, g.TokenFile); err == nil {
		removed, err := tokenfile.CleanStaleTemps(g.TokenFile)
		unlock()
		for _, r := range removed {
			log.Info("Removed a temporary file left by an interrupted write: " + r)
		}
		if err != nil {
			log.Warn(err.Error())
		}
	}
	changes, err := tokenfile.Watch(ctx, g.TokenFile, log)
	if err != nil {
		log.Warn(err.Error() + "; a new login will be picked up at the next refresh instead")
		return
	}
	d.FileChanged = changes
}

// deliverer adapts delivery.Sender to the loop's Deliverer, reporting
// each delivery's results to done.
type deliverer struct {
	sender *delivery.Sender
	done   func([]delivery.Result)
}

func (d deliverer) Deliver(ctx context.Context, msg tokensender.Message) func() {
	dl := d.sender.Deliver(ctx, msg)
	return func() { d.done(dl.Wait()) }
}

// classify is the loop's view of schwab's error classes.
func classify(err error) (relogin bool, retryAfter time.Duration) {
	var se *schwab.Error
	if errors.As(err, &se) {
		return se.Kind == schwab.KindRelogin, se.RetryAfter
	}
	return false, 0
}

// handleSignals turns SIGINT/SIGTERM into a cancelled context (logging the
// seed's shutdown lines), SIGUSR1 into a refresh request, and SIGHUP into a
// reopen of the log file (after logrotate moved it; reopenLog may be nil).
func handleSignals(log *slog.Logger, reopenLog func() error) (ctx context.Context, refreshNow <-chan struct{}, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGHUP)
	now := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case s := <-sigs:
				switch s {
				case syscall.SIGUSR1:
					select {
					case now <- struct{}{}:
					default:
					}
					continue
				case syscall.SIGHUP:
					if reopenLog != nil {
						if err := reopenLog(); err != nil {
							log.Error("Could not reopen the log file: " + err.Error())
						} else {
							log.Info("Log file reopened (SIGHUP)")
						}
					}
					continue
				}
				log.Info("")
				log.Info(fmt.Sprintf("Received shutdown signal (%d)", s.(syscall.Signal)))
				cancel()
			}
		}
	}()
	return ctx, now, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}
