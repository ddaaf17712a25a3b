package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/schwabtools/token-refresh-sender/alert"
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

// Run runs the daemon (see Main) until SIGINT or SIGTERM.
func (c *RunCmd) Run(g *Globals, pr *process) error {
	m := NewMain(*g, nil)
	m.NewHooks = c.notifier
	m.Stdout = pr.out
	m.HTTPClient = pr.schwabHTTP
	if pr.idleGC != nil && g.MetricsAddr == "" {
		pr.idleGC() // with --metrics-addr scrapes wake it anyway, and allocate
	}
	return runMain(context.Background(), m)
}

// runMain runs m and closes it; a failure to close cleanly (the metrics
// server's error, the pid file) is logged and exits 1.
func runMain(ctx context.Context, m *Main) error {
	err := m.Run(ctx)
	if cerr := m.Close(); cerr != nil {
		if m.Log != nil {
			m.Log.Error(cerr.Error())
		}
		if err == nil {
			err = exitCode(1)
		}
	}
	return err
}

// handleSignals turns SIGINT/SIGTERM into a cancelled child of parent (logging the
// seed's shutdown lines), SIGUSR1 into a refresh request, and SIGHUP into a
// reopen of the log file (after logrotate moved it; reopenLog may be nil).
func handleSignals(parent context.Context, log *slog.Logger, reopenLog func() error) (ctx context.Context, refreshNow <-chan struct{}, stop func()) {
	ctx, cancel := context.WithCancel(parent)
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
