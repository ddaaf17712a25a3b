package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/alert"
	"github.com/schwabtools/token-refresh-sender/daemon"
	"github.com/schwabtools/token-refresh-sender/delivery"
	"github.com/schwabtools/token-refresh-sender/expiry"
	"github.com/schwabtools/token-refresh-sender/metrics"
	"github.com/schwabtools/token-refresh-sender/systemd"
)

// observers fan the daemon's events and delivery results out to the
// operator's tools: refresh-token expiry warnings, alert hooks, Prometheus
// metrics (only with --metrics-addr, so the collectors cost nothing
// otherwise) and systemd's notify socket (silent outside systemd).
type observers struct {
	log     *slog.Logger
	expiry  *expiry.Tracker
	policy  *alert.Policy
	hooks   *alert.Notifier
	metrics *metrics.Metrics
	systemd *systemd.Notifier
}

// hookShutdown bounds the wait for alert hooks still running at exit.
const hookShutdown = 15 * time.Second

// observe prepares the observers the flags ask for; with --metrics-addr it
// binds the address now, so a busy port fails at start-up.
func (g *Globals) observe(ctx context.Context, log *slog.Logger, hooks *alert.Notifier) (*observers, error) {
	if err := hooks.Validate(); err != nil {
		return nil, err
	}
	o := &observers{
		log:     log,
		expiry:  &expiry.Tracker{Lifetime: g.RefreshTokenLifetime, TokenFile: g.TokenFile},
		policy:  &alert.Policy{Lifetime: g.RefreshTokenLifetime},
		hooks:   hooks,
		systemd: systemd.New(log),
	}
	if g.MetricsAddr == "" {
		return o, nil
	}
	ln, err := net.Listen("tcp", g.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %s: cannot listen: %w", g.MetricsAddr, err)
	}
	o.metrics = metrics.New(nil)
	o.metrics.RefreshTokenLifetime = g.RefreshTokenLifetime
	go o.metrics.ServeListener(ctx, ln, log)
	return o, nil
}

// attach wires the observers into d.
func (o *observers) attach(d *daemon.Daemon) {
	d.OnEvent = o.event
	if interval, ping := o.systemd.Watchdog(); interval > 0 {
		d.Heartbeat, d.HeartbeatEvery = ping, interval
	}
}

func (o *observers) event(ev tokensender.Event) {
	if ev.Kind != tokensender.EventStopping {
		for _, w := range o.expiry.Check(ev.RefreshTokenIssuedAt, ev.At) {
			o.log.Log(context.Background(), w.Level, w.Message)
			if n, ok := alert.Expiring(w); ok {
				o.hooks.Notify(n)
			}
		}
	}
	if n, ok := o.policy.FromEvent(ev); ok {
		o.hooks.Notify(n)
	}
	if o.metrics != nil {
		o.metrics.Observe(ev)
	}
	o.systemd.Observe(ev)
}

// delivered records the final outcome of each delivery.
func (o *observers) delivered(results []delivery.Result) {
	if o == nil || o.metrics == nil {
		return
	}
	for _, r := range results {
		o.metrics.ObserveDelivery(r)
	}
}

// close waits a little for alert hooks still running.
func (o *observers) close() {
	ctx, cancel := context.WithTimeout(context.Background(), hookShutdown)
	defer cancel()
	o.hooks.Close(ctx)
}
