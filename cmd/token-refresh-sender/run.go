package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/schwabtools/token-refresh-sender/alert"
)

// RunCmd is the daemon.
type RunCmd struct {
	NotifyExec    string `env:"TOKEN_SENDER_NOTIFY_EXEC" placeholder:"CMD" help:"Run CMD (through sh -c) on refresh_failed, relogin_required, refresh_token_expiring and recovered events."`
	NotifyWebhook string `env:"TOKEN_SENDER_NOTIFY_WEBHOOK" placeholder:"URL" help:"POST those events as JSON to URL (Slack and Discord webhooks work as they are)."`
}

// Run runs the daemon (see Main) until SIGINT or SIGTERM.
func (c *RunCmd) Run(g *Globals, pr *process) error {
	m := NewMain(*g, &alert.Notifier{Exec: c.NotifyExec, Webhook: c.NotifyWebhook})
	m.Stdout = pr.out
	m.HTTPClient = pr.schwabHTTP
	preloadRoots(m.HTTPClient)
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
