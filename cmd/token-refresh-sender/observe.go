package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/schwabtools/token-refresh-sender/daemon"
	"github.com/schwabtools/token-refresh-sender/delivery"
	"github.com/schwabtools/token-refresh-sender/metrics"
	"github.com/schwabtools/token-refresh-sender/systemd"
)

// observers fan the daemon's events and delivery results out to the
// operator's tools: Prometheus metrics (only with --metrics-addr, so the
// collectors cost nothing otherwise) and systemd's notify socket (silent
// outside systemd).
type observers struct {
	metrics *metrics.Metrics
	systemd *systemd.Notifier
}

// observe prepares the observers the flags ask for; with --metrics-addr it
// binds the address now, so a busy port fails at start-up.
func (g *Globals) observe(ctx context.Context, log *slog.Logger) (*observers, error) {
	o := &observers{systemd: systemd.New(log)}
	if g.MetricsAddr == "" {
		return o, nil
	}
	ln, err := net.Listen("tcp", g.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %s: cannot listen: %w", g.MetricsAddr, err)
	}
	o.metrics = metrics.New(nil)
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

func (o *observers) event(ev daemon.Event) {
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
