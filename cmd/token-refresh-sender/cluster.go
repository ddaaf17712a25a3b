package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/alert"
	"github.com/schwabtools/token-refresh-sender/cluster"
	"github.com/schwabtools/token-refresh-sender/daemon"
	"github.com/schwabtools/token-refresh-sender/schwab"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// On the leader the refresh loop runs on the etcd record.
var _ daemon.Store = (*cluster.LeaderStore)(nil)

// alertClusterUnavailable is the alert hooks' event when this instance has
// lost etcd for longer than the lease (no instance refreshes until etcd is
// back); alertClusterAvailable when it is back.
const (
	alertClusterUnavailable = "cluster_unavailable"
	alertClusterAvailable   = "cluster_available"
)

// openCluster opens the etcd connection the cluster flags describe and
// registers its Close. Bad flags are usage errors (one line, exit 2).
func (m *Main) openCluster(log *slog.Logger) error {
	cfg, err := m.Flags.clusterConfig(m.App.AppKey, os.Getenv)
	if err != nil {
		return err
	}
	cl, err := cluster.Open(cfg, log)
	if err != nil {
		return usage(err)
	}
	cl.Now = m.Now
	m.Cluster = cl
	m.onClose(cl.Close)
	return nil
}

// runCluster takes part in the cluster until ctx is cancelled: every
// instance writes each new record to its token file and delivers it to
// its bots; the leader runs the usual refresh loop on the etcd record.
func (m *Main) runCluster(ctx context.Context, obs *observers, refreshNow <-chan struct{}) error {
	log := m.Log
	g := &m.Flags
	n := &cluster.Node{
		Cluster: m.Cluster,
		Seed:    m.Store.Load,
		Apply:   m.applyRecord,
		Lead: func(ctx context.Context, ls *cluster.LeaderStore) error {
			d := &daemon.Daemon{
				Refresher:   m.Schwab,
				Store:       ls,
				Classify:    schwab.RetryAdvice,
				Logger:      log,
				Interval:    g.Interval,
				Backoff:     daemon.Backoff{Min: g.RetryMin, Max: g.RetryMax},
				MaxCycles:   m.MaxCycles,
				RefreshNow:  refreshNow,
				FileChanged: ls.Changed(),
				Now:         m.Now,
				Settings:    settings(g),
			}
			obs.attach(d)
			return d.Run(ctx)
		},
		OnEvent: obs.clusterEvent,
	}
	if interval, ping := obs.systemd.Watchdog(); interval > 0 {
		n.Heartbeat, n.HeartbeatEvery = ping, interval
	}
	if m.Metrics != nil {
		obs.cluster = newClusterGauges(m.Metrics.Registry())
	}
	m.Node = n
	if m.Ready != nil {
		if err := m.Ready(m); err != nil {
			return err
		}
	}
	obs.systemd.Ready()
	if err := n.Run(ctx); err != nil {
		log.Error(err.Error())
		return exitCode(1)
	}
	return nil
}

// applyRecord writes rec's token to the local token file (creating it on
// a host that had none) and delivers it to the local bots. Delivery goes
// on in the background until ctx is cancelled (a newer record).
func (m *Main) applyRecord(ctx context.Context, rec cluster.Record) error {
	tok := rec.Token
	_, err := m.Store.Update(ctx, func(cur tokensender.Token) (tokensender.Token, error) {
		t := tok
		t.RefreshTokenIssuedAt = tok.LoginTime(cur, m.Now())
		return t, nil
	})
	if errors.Is(err, tokenfile.ErrNotFound) {
		err = m.Store.SaveLogin(ctx, tok)
	}
	// The bots get the token even when the file could not be written: it
	// is the newest there is.
	m.Sender.Deliver(ctx, tok.Message())
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	return nil
}

// clusterEvent routes the cluster's state changes to the operator's tools
// (the cluster package logs them itself).
func (o *observers) clusterEvent(ev cluster.Event) {
	o.cluster.observe(ev)
	switch ev.Kind {
	case cluster.EventUnavailable:
		msg := fmt.Sprintf("Cluster unavailable on %s: no contact with etcd since %s; no instance refreshes the token until etcd is back", ev.Node, ev.Since.UTC().Format(time.RFC3339))
		if !ev.Record.Token.ExpiresAt.IsZero() {
			msg += "; the local bots keep the last token, valid until " + ev.Record.Token.ExpiresAt.UTC().Format(time.RFC3339)
		}
		o.hooks.Notify(alert.Notification{Event: alertClusterUnavailable, Message: msg})
		o.systemd.Status(msg)
	case cluster.EventAvailable:
		msg := fmt.Sprintf("Cluster on %s: etcd is reachable again (unavailable since %s)", ev.Node, ev.Since.UTC().Format(time.RFC3339))
		o.hooks.Notify(alert.Notification{Event: alertClusterAvailable, Message: msg})
		o.systemd.Status(msg)
	case cluster.EventLeading:
		o.systemd.Status("Cluster: leader (" + ev.Node + "), refreshing")
	case cluster.EventDeposed:
		o.systemd.Status("Cluster: follower (" + ev.Node + ")")
	}
}

// clusterGauges are cluster mode's metrics (with --metrics-addr): whether
// this instance is in contact with etcd, and whether it leads.
type clusterGauges struct {
	available prometheus.Gauge
	leader    prometheus.Gauge
}

func newClusterGauges(reg prometheus.Registerer) *clusterGauges {
	g := &clusterGauges{
		available: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "token_sender_cluster_available",
			Help: "1 while this instance is in contact with etcd; 0 after it lost it for longer than the lease (cluster_unavailable: nobody refreshes).",
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "token_sender_cluster_leader",
			Help: "1 while this instance is the cluster's leader (the one that refreshes).",
		}),
	}
	g.available.Set(1)
	reg.MustRegister(g.available, g.leader)
	return g
}

// observe updates the gauges; a nil receiver (no --metrics-addr) does
// nothing.
func (g *clusterGauges) observe(ev cluster.Event) {
	if g == nil {
		return
	}
	switch ev.Kind {
	case cluster.EventUnavailable:
		g.available.Set(0)
	case cluster.EventAvailable:
		g.available.Set(1)
	case cluster.EventLeading:
		g.leader.Set(1)
	case cluster.EventDeposed:
		g.leader.Set(0)
	}
}
