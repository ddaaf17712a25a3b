//go:build cluster

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/alert"
	"github.com/schwabtools/token-refresh-sender/cluster"
	"github.com/schwabtools/token-refresh-sender/daemon"
	"github.com/schwabtools/token-refresh-sender/logging"
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
// fileChanged reports changes of this host's token file (the token file's
// watch; nil when it could not be watched).
//
// The start banner and settings are printed once; each term of leadership
// adds one line (the cluster package's "is now the leader"). SIGUSR1
// reaches the refresh loop on the leader; a follower says who refreshes.
// A login written to this host's token file by `login` without
// --etcd-endpoints is stored in etcd when it is newer than the record's
// (see localLogin).
func (m *Main) runCluster(ctx context.Context, obs *observers, refreshNow, fileChanged <-chan struct{}) error {
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
	local := &localFile{recheck: make(chan struct{}, 1)}
	leaderNow := make(chan struct{}, 1)
	n := &cluster.Node{
		Cluster: cl,
		Seed:    m.Store.Load,
		Apply: func(ctx context.Context, rec cluster.Record) error {
			local.recent.add(rec.Token.RefreshToken)
			return m.applyRecord(ctx, rec, local)
		},
		Lead: func(ctx context.Context, ls *cluster.LeaderStore) error {
			d := m.leaderLoop(ctx, ls, leaderNow, ls.Changed())
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
	daemon.LogStart(log, g.Interval, settings(g))
	log.Info(fmt.Sprintf("Cluster: node %s, etcd %s, prefix %s, lease TTL %s (only the leader refreshes; every instance writes its token file and delivers)",
		cl.NodeName, strings.Join(cl.Client.Endpoints(), ","), cl.Prefix, cl.LeaseTTL))
	obs.systemd.Ready()

	wctx, wcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { m.forwardRefreshRequests(wctx, cl, n, refreshNow, leaderNow) })
	wg.Go(func() { m.watchLocalLogins(wctx, cl, n, local, fileChanged) })
	err = n.Run(ctx)
	wcancel()
	wg.Wait()
	daemon.LogStopped(log)
	if err != nil {
		log.Error(err.Error())
		return exitCode(1)
	}
	return nil
}

// leaderLoop is the refresh loop for one term of leadership, on store (the
// etcd record). It continues the record's schedule: its first refresh is
// at once only when the record's token is due (see firstRefresh). A
// refresh request still pending from an earlier term is dropped.
func (m *Main) leaderLoop(ctx context.Context, store daemon.Store, refreshNow, changed <-chan struct{}) *daemon.Daemon {
	g := &m.Flags
	select {
	case <-refreshNow:
	default:
	}
	d := &daemon.Daemon{
		Refresher:   m.Schwab,
		Store:       store,
		Classify:    schwab.RetryAdvice,
		Logger:      m.Log,
		Interval:    g.Interval,
		Backoff:     daemon.Backoff{Min: g.RetryMin, Max: g.RetryMax},
		MaxCycles:   m.MaxCycles,
		RefreshNow:  refreshNow,
		FileChanged: changed,
		Now:         m.Now,
		Quiet:       true,
	}
	tok, err := store.Load(ctx)
	if err != nil {
		return d // Run reads the record again, and reports why it cannot
	}
	now := m.Now()
	d.FirstRefresh = firstRefresh(tok, g.Interval, now)
	if d.FirstRefresh.After(now) {
		m.Log.Info(fmt.Sprintf("Cluster: the token in etcd is valid until %s; its next refresh is due at %s (in %s)",
			logging.LocalTime(tok.ExpiresAt), logging.LocalTime(d.FirstRefresh), tokensender.HumanDuration(d.FirstRefresh.Sub(now).Round(time.Second))),
			logging.NextRefresh(d.FirstRefresh))
	} else {
		m.Log.Info(fmt.Sprintf("Cluster: the token in etcd is due for a refresh (valid until %s); refreshing now", logging.LocalTime(tok.ExpiresAt)))
	}
	return d
}

// firstRefresh is when a new leader first refreshes tok, the record's
// token: when the leader that wrote it would have (one interval after it
// was issued, no later than the expiry margin before it expires), or now
// if that time has passed. A token whose lifetime is unknown (no
// expires_in) is refreshed now.
func firstRefresh(tok tokensender.Token, interval time.Duration, now time.Time) time.Time {
	if tok.ExpiresIn <= 0 || tok.ExpiresAt.IsZero() {
		return now
	}
	issued := tok.ExpiresAt.Add(-tok.Lifetime())
	if due := daemon.NextRefresh(issued, tok, interval); due.After(now) {
		return due
	}
	return now
}

// forwardRefreshRequests passes each refresh request (SIGUSR1) to the
// refresh loop while this instance leads; a follower says, in one line,
// that only the leader refreshes and which node that is.
func (m *Main) forwardRefreshRequests(ctx context.Context, cl *cluster.Cluster, n *cluster.Node, refreshNow <-chan struct{}, leaderNow chan<- struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-refreshNow:
		}
		if n.State().Leading {
			select {
			case leaderNow <- struct{}{}:
			default:
			}
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, cl.LeaseTTL)
		leader, err := cl.Leader(lctx)
		cancel()
		who := "no instance leads right now"
		switch {
		case err != nil:
			who = "the leader is unknown: etcd does not answer"
		case leader != "":
			who = "the leader is " + leader + "; send SIGUSR1 there"
		}
		m.Log.Info(fmt.Sprintf("Refresh requested (SIGUSR1), but this instance (%s) follows and only the leader refreshes: %s", cl.NodeName, who))
	}
}

// recentTokens remembers the refresh tokens of the last records applied
// here, so that this host's own writes of its token file are told apart
// from a login made on this host.
type recentTokens struct {
	mu   sync.Mutex
	list []string
}

// recentKept is how many records' refresh tokens recentTokens keeps.
const recentKept = 8

func (r *recentTokens) add(refreshToken string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.Contains(r.list, refreshToken) {
		return
	}
	r.list = append(r.list, refreshToken)
	if len(r.list) > recentKept {
		r.list = r.list[1:]
	}
}

func (r *recentTokens) has(refreshToken string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.list, refreshToken)
}

// localFile is what the cluster knows of this host's token file: the
// refresh tokens records brought, and a request to look at it again.
type localFile struct {
	recent  recentTokens
	recheck chan struct{}
}

// check asks watchLocalLogins to look at the file again.
func (l *localFile) check() {
	select {
	case l.recheck <- struct{}{}:
	default:
	}
}

// watchLocalLogins looks at this host's token file at each of its changes
// for a refresh token no record brought: a `login` run here without
// --etcd-endpoints.
func (m *Main) watchLocalLogins(ctx context.Context, cl *cluster.Cluster, n *cluster.Node, local *localFile, changes <-chan struct{}) {
	if changes == nil {
		m.Log.Warn("The token file is not watched: a login made on this host without --etcd-endpoints will not be noticed (log in with --etcd-endpoints)")
	}
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-changes:
			if !ok {
				return
			}
		case <-local.recheck:
		}
		m.checkLocalLogin(ctx, cl, n.State(), &local.recent)
	}
}

// checkLocalLogin looks at the token file after it changed: a new login
// in it is stored in etcd (under the login lock, by the login's usual
// transaction), so every instance delivers it; any other foreign token is
// left alone with one WARNING (the next record overwrites it).
func (m *Main) checkLocalLogin(ctx context.Context, cl *cluster.Cluster, st cluster.State, recent *recentTokens) {
	tok, err := m.Store.Load(ctx)
	if err != nil || !st.HaveRecord || recent.has(tok.RefreshToken) {
		// Unreadable: the next record rewrites it (and says so if it
		// cannot). No record yet: the first leader seeds from the file.
		return
	}
	file := m.Flags.TokenFile
	if why := localLogin(tok, st.Held.Token, m.Now()); why != "" {
		m.Log.Warn(fmt.Sprintf("Cluster: %s has a refresh token (%s) that did not come from etcd, but %s: it is not stored in etcd, and the next token from etcd replaces it. If you logged in on this host, log in again with --etcd-endpoints so every instance gets the token",
			file, tokensender.Redact(tok.RefreshToken), why))
		return
	}
	m.Log.Info(fmt.Sprintf("Cluster: %s has a new login (refresh token %s, logged in at %s) made without --etcd-endpoints; storing it in etcd for every instance",
		file, tokensender.Redact(tok.RefreshToken), logging.LocalTime(tok.RefreshTokenIssuedAt)))
	if _, err := cl.Login(ctx, func(context.Context) (tokensender.Token, error) { return tok, nil }); err != nil && ctx.Err() == nil {
		m.Log.Error("Cluster: could not store the login from " + file + " in etcd: " + err.Error() + "; log in again with --etcd-endpoints")
	}
}

// localLogin says why tok, found in the token file with a refresh token no
// record brought, is not a login to store in etcd ("" when it is one): a
// login not older than the record's (held) login, whose access token
// still works. Login times count whole seconds, so a login in the same
// second as the cluster's counts as the newer one (it was written after
// the record this host applied). An older token (a restored backup,
// another tool) must never replace the cluster's.
func localLogin(tok, held tokensender.Token, now time.Time) string {
	switch {
	case tok.Expired(now):
		return "its access token expired at " + logging.LocalTime(tok.ExpiresAt)
	case tok.RefreshTokenIssuedAt.IsZero():
		return "its login time is unknown (no refresh_token_issued_at)"
	case tok.RefreshTokenIssuedAt.Before(held.RefreshTokenIssuedAt):
		return "its login (" + logging.LocalTime(tok.RefreshTokenIssuedAt) + ") is older than the cluster's (" + logging.LocalTime(held.RefreshTokenIssuedAt) + ")"
	}
	return ""
}

// applyRecord writes rec's token to the local token file (creating it on
// a host that had none) and delivers it to the local bots. Delivery goes
// on in the background until ctx is cancelled (a newer record).
//
// A login made on this host that etcd has not got yet (see localLogin)
// is not overwritten: the file keeps it, and local asks its watcher to
// store it in etcd. local may be nil (no such check).
func (m *Main) applyRecord(ctx context.Context, rec cluster.Record, local *localFile) error {
	tok := rec.Token
	kept := false
	_, err := m.Store.Update(ctx, func(cur tokensender.Token) (tokensender.Token, error) {
		if local != nil && cur.RefreshToken != tok.RefreshToken && !local.recent.has(cur.RefreshToken) && localLogin(cur, tok, m.Now()) == "" {
			kept = true
			return tokensender.Token{}, errKeptLogin
		}
		t := tok
		t.RefreshTokenIssuedAt = tok.LoginTime(cur, m.Now())
		return t, nil
	})
	if errors.Is(err, tokenfile.ErrNotFound) {
		err = m.Store.SaveLogin(ctx, tok)
	}
	if kept {
		m.Log.Info("Cluster: " + m.Flags.TokenFile + " holds a newer login than the token from etcd; keeping it there to store it in etcd")
		local.check()
		err = nil
	}
	// The bots get the token even when the file could not be written: it
	// is the newest there is.
	m.Sender.Deliver(ctx, tok.Message())
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	return nil
}

// errKeptLogin stops applyRecord's file update: the file holds a newer
// login.
var errKeptLogin = errors.New("the token file holds a newer login")

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
