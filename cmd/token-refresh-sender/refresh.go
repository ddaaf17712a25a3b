package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/daemon"
	"github.com/schwabtools/token-refresh-sender/delivery"
	"github.com/schwabtools/token-refresh-sender/logging"
	"github.com/schwabtools/token-refresh-sender/schwab"
)

// RefreshCmd refreshes once (the seed's "Test Token Refresh Only").
type RefreshCmd struct{}

// Run refreshes, saves, delivers, and prints a short summary. It builds
// only what one refresh needs: no pid file, watcher, metrics or hooks.
func (c *RefreshCmd) Run(g *Globals, pr *process) error {
	if g.clusterOn() {
		// A refresh outside the leader would be a second refresher, and
		// its token would never reach etcd or the other hosts.
		return usage(errors.New("refresh: in cluster mode (--etcd-endpoints) only the leader refreshes; send SIGUSR1 to the leader's `run` to refresh now, or run `refresh` without the etcd flags on a host that is not in the cluster"))
	}
	s, err := g.begin(pr.out)
	if err != nil {
		return err
	}
	defer s.close()
	log := s.log
	app, err := g.loadApp(log)
	if err != nil {
		return err
	}
	targets, err := g.targets()
	if err != nil {
		return err
	}
	g.warnPermissions(log)
	d := &daemon.Daemon{
		Refresher: newSchwabClient(app, pr.schwabHTTP),
		Store:     g.store(log),
		Deliverer: &delivery.Sender{Targets: targets, Logger: log, AllowedPeerUIDs: g.AllowPeerUID},
		Classify:  schwab.RetryAdvice,
		Logger:    log,
		Interval:  g.Interval,
		Backoff:   daemon.Backoff{Min: g.RetryMin, Max: g.RetryMax},
		Settings:  settings(g),
	}
	tok, err := d.Once(s.ctx)
	if err != nil && tok.AccessToken != "" {
		printSummary(pr.out, "⚠️  Token refreshed and delivered, but the token file could not be written", tok, time.Now())
		return exitCode(1)
	}
	if err != nil {
		loginHint(log, err)
		fmt.Fprintln(pr.out, "❌ Token refresh failed")
		return exitCode(1)
	}
	printSummary(pr.out, "✅ Token refresh successful!", tok, time.Now())
	return nil
}

// printSummary shows a token to a person: a prefix, never the whole token.
func printSummary(w io.Writer, title string, tok tokensender.Token, now time.Time) {
	fmt.Fprintln(w, title)
	fmt.Fprintf(w, "   Access token: %s\n", tokensender.Redact(tok.AccessToken))
	left := "expired"
	if !tok.Expired(now) {
		left = "in " + tokensender.HumanDuration(tok.ExpiresAt.Sub(now))
	}
	fmt.Fprintf(w, "   Expires at: %s (%s)\n", tok.ExpiresAt.Format(logging.TimeLayout), left)
}
