package main

import (
	"context"
	"log/slog"

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
// otherwise) and systemd's notify socket (silent outside systemd). After
// each refresh attempt it hands the heap's free memory back to the OS.
type observers struct {
	log     *slog.Logger
	expiry  *expiry.Tracker
	policy  *alert.Policy
	hooks   *alert.Notifier
	metrics *metrics.Metrics
	systemd *systemd.Notifier
	// freeMemory returns the garbage of a refresh attempt to the OS
	// (production: debug.FreeOSMemory). A cycle every 25 minutes leaves
	// the heap idle in between: without this its garbage (at start, ~3.7 MB
	// from parsing the system roots) stays resident, and the heap grows
	// toward the next GC target cycle after cycle.
	freeMemory func()
}

// newObservers are the observers the flags ask for, metrics aside (Main
// binds --metrics-addr and adds them).
func newObservers(g *Globals, log *slog.Logger, hooks *alert.Notifier, sd *systemd.Notifier) *observers {
	return &observers{
		log:     log,
		expiry:  &expiry.Tracker{Lifetime: g.RefreshTokenLifetime, TokenFile: g.TokenFile},
		policy:  &alert.Policy{Lifetime: g.RefreshTokenLifetime},
		hooks:   hooks,
		systemd: sd,
	}
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
	switch ev.Kind {
	case tokensender.EventRefreshed, tokensender.EventRefreshFailed, tokensender.EventReloginRequired:
		if o.freeMemory != nil {
			o.freeMemory()
		}
	}
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
