//go:build cluster

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/alert"
	"github.com/schwabtools/token-refresh-sender/cluster"
	"github.com/schwabtools/token-refresh-sender/daemon"
	"github.com/schwabtools/token-refresh-sender/login"
	"github.com/schwabtools/token-refresh-sender/metrics"
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

// clusterBuilt is true in this build: cluster mode runs in this process.
const clusterBuilt = true

// checkCluster validates the cluster flags before anything starts (the
// prefix's default, from the app key, is filled in later).
func (g *Globals) checkCluster() error {
	_, err := g.clusterConfig("", os.Getenv)
	return err
}

// clusterConfig is the cluster configuration the flags describe, with
// defaults filled in (the prefix from appKey, the node name from the host
// name, the password from TOKEN_SENDER_ETCD_PASSWORD) and validated. Its
// errors are usage errors.
func (g *Globals) clusterConfig(appKey string, getenv func(string) string) (cluster.Config, error) {
	var eps []string
	for _, v := range g.EtcdEndpoints {
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				eps = append(eps, e)
			}
		}
	}
	cfg, err := cluster.Config{
		Endpoints:         eps,
		Prefix:            g.EtcdPrefix,
		CAFile:            g.EtcdCAFile,
		CertFile:          g.EtcdCertFile,
		KeyFile:           g.EtcdKeyFile,
		Username:          g.EtcdUsername,
		LeaseTTL:          g.EtcdLeaseTTL,
		NodeName:          g.NodeName,
		EncryptionKeyFile: g.EtcdEncryptionKeyFile,
	}.WithDefaults(appKey, os.Hostname, getenv)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		return cfg, usage(err)
	}
	return cfg, nil
}

// openCluster opens the etcd connection the cluster flags describe and
// registers its Close. Bad flags are usage errors (one line, exit 2).
func (m *Main) openCluster(log *slog.Logger) (*cluster.Cluster, error) {
	cfg, err := m.Flags.clusterConfig(m.App.AppKey, os.Getenv)
	if err != nil {
		return nil, err
	}
	cl, err := cluster.Open(cfg, log)
	if err != nil {
		return nil, usage(err)
	}
	cl.Now = m.Now
	m.onClose(cl.Close)
	return cl, nil
}

// runCluster takes part in the cluster until ctx is cancelled: every
// instance writes each new record to its token file and delivers it to
// its bots; the leader runs the usual refresh loop on the etcd record.
func (m *Main) runCluster(ctx context.Context, obs *observers, refreshNow <-chan struct{}) error {
	log := m.Log
	g := &m.Flags
	cl, err := m.openCluster(log)
	if err != nil {
		return err
	}
	var gauges *clusterGauges
	if m.Metrics != nil {
		gauges = newClusterGauges(m.Metrics)
	}
	n := &cluster.Node{
		Cluster: cl,
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
		OnEvent: func(ev cluster.Event) {
			gauges.observe(ev)
			obs.clusterEvent(ev)
		},
	}
	if interval, ping := obs.systemd.Watchdog(); interval > 0 {
		n.Heartbeat, n.HeartbeatEvery = ping, interval
	}
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
	available *metrics.Gauge
	leader    *metrics.Gauge
}

func newClusterGauges(m *metrics.Metrics) *clusterGauges {
	g := &clusterGauges{
		available: m.NewGauge("token_sender_cluster_available",
			"1 while this instance is in contact with etcd; 0 after it lost it for longer than the lease (cluster_unavailable: nobody refreshes)."),
		leader: m.NewGauge("token_sender_cluster_leader",
			"1 while this instance is the cluster's leader (the one that refreshes)."),
	}
	g.available.Set(1)
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

// clusterLogin opens the cluster the flags describe (appKey gives the
// default prefix) and returns the login to run in its place, and the
// cluster's Close. Bad flags are usage errors.
func (g *Globals) clusterLogin(appKey string, log *slog.Logger) (run func(context.Context, login.Options) (*login.Result, error), closeCluster func() error, err error) {
	cfg, err := g.clusterConfig(appKey, os.Getenv)
	if err != nil {
		return nil, nil, err
	}
	cl, err := cluster.Open(cfg, log)
	if err != nil {
		return nil, nil, usage(err)
	}
	return func(ctx context.Context, opts login.Options) (*login.Result, error) {
		return lockedLogin(ctx, cl, opts)
	}, cl.Close, nil
}

// lockedLogin runs the browser login while holding the cluster's login
// lock, so no two hosts log in at once; login.Run writes the local token
// file as without a cluster, and the token it wrote is then stored as the
// etcd record, which every instance delivers.
func lockedLogin(ctx context.Context, cl *cluster.Cluster, opts login.Options) (*login.Result, error) {
	var res *login.Result
	_, err := cl.Login(ctx, func(ctx context.Context) (tokensender.Token, error) {
		r, err := login.Run(ctx, opts)
		if err != nil {
			return tokensender.Token{}, err
		}
		res = r
		doc, err := tokenfile.Load(opts.TokenFile)
		if err != nil {
			return tokensender.Token{}, fmt.Errorf("read back the new token file to store it in etcd: %w", err)
		}
		return doc.Token(), nil
	})
	if err != nil {
		if res != nil {
			// The login itself worked and the token file holds it; only
			// etcd did not get it.
			return nil, fmt.Errorf("%w (the new token is in %s; run the login again to store it in etcd)", err, opts.TokenFile)
		}
		return nil, err
	}
	return res, nil
}
