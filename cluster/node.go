package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	tokensender "github.com/schwabtools/token-refresh-sender"
)

// Node is one instance of the daemon in the cluster. Set the fields, then
// call Run.
type Node struct {
	Cluster *Cluster

	// Seed reads the local token file. The first leader seeds the record
	// from it when etcd holds none; an instance whose Seed fails while etcd
	// holds no record does not campaign (it waits for a record to appear).
	Seed func(ctx context.Context) (tokensender.Token, error)
	// Apply hands a new record to this host: write the local token file
	// and deliver to the local bots. It is called from one goroutine, in
	// record order, for the record found at start and every later one.
	// Its ctx is cancelled when a newer record arrives (or Run ends), so
	// delivery retries of a superseded token stop by themselves.
	Apply func(ctx context.Context, rec Record) error
	// Lead runs the refresh loop while this instance leads, on the
	// LeaderStore (a Store whose file is the etcd record). Its context is
	// cancelled the moment leadership is lost; it should then return.
	Lead func(ctx context.Context, store *LeaderStore) error
	// OnEvent, if set, hears cluster state changes (alert hooks, metrics,
	// status). It must not block.
	OnEvent func(Event)
	// Heartbeat, if set, is called at least every HeartbeatEvery while the
	// watcher is alive (the systemd watchdog: a follower runs no refresh
	// loop to send it). It keeps coming while etcd is unreachable.
	Heartbeat      func()
	HeartbeatEvery time.Duration

	mu        sync.Mutex
	haveRec   bool               // a record exists in etcd (seen by the watcher)
	recSeen   chan struct{}      // closed when haveRec turns true
	held      Record             // the newest record applied
	supersede context.CancelFunc // cancels the previous Apply's ctx
	leadStore *LeaderStore       // set while leading
	available bool
	downSince time.Time
	unavailTm *time.Timer
	alerted   bool
}

// ErrNotLeader means this instance no longer leads: nothing was written.
var ErrNotLeader = errors.New("this instance is no longer the cluster leader (another instance refreshes now); nothing was written to etcd")

// ErrRecordChanged means the record changed in etcd since it was read (a
// login wrote a newer token): nothing was written, the newer record stands.
var ErrRecordChanged = errors.New("the token record in etcd changed since it was read (a newer token was written, e.g. by a login); this token was not stored")

// getLimit bounds the watcher's read of the record, so its heartbeat goes
// on while etcd does not answer.
const getLimit = 5 * time.Second

// retryPause is how long the loops wait after a failed etcd call before
// trying again.
const retryPause = time.Second

// Run takes part in the cluster until ctx is cancelled: it watches the
// record (applying each new one), campaigns for leadership, and while
// leading runs Lead. It returns nil after ctx is cancelled.
func (n *Node) Run(ctx context.Context) error {
	if n.Cluster == nil || n.Apply == nil || n.Lead == nil {
		return errors.New("cluster.Node: Cluster, Apply and Lead must be set")
	}
	n.recSeen = make(chan struct{})
	n.available = true
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { n.watch(ctx) })
	n.campaignLoop(ctx)
	cancel()
	wg.Wait()
	if n.supersede != nil {
		n.supersede()
	}
	n.mu.Lock()
	if n.unavailTm != nil {
		n.unavailTm.Stop()
	}
	n.mu.Unlock()
	return nil
}

func (n *Node) emit(ev Event) {
	ev.At = n.Cluster.now()
	ev.Node = n.Cluster.NodeName
	if n.OnEvent != nil {
		n.OnEvent(ev)
	}
}

// abandonOnDone runs op and returns its error, or ctx's error as soon as
// ctx is done. The concurrency package's blocking calls (Campaign,
// Mutex.Lock) wait on a watch, and a watch cut off from every etcd member
// does not notice its context until a member answers again; their cleanup
// then runs on the client's own context. Such a call is left to finish in
// the background (it ends when etcd answers or the client is closed).
func abandonOnDone(ctx context.Context, op func() error) error {
	done := make(chan error, 1)
	go func() { done <- op() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pause waits d or until ctx ends (false).
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// campaignLoop holds a session, waits until this instance may lead,
// campaigns, and leads until the session or ctx ends; then starts over.
func (n *Node) campaignLoop(ctx context.Context) {
	c := n.Cluster
	for ctx.Err() == nil {
		// The session outlives ctx by a little: on shutdown the leader
		// resigns first, then the lease is revoked.
		sessCtx, sessCancel := context.WithCancel(context.WithoutCancel(ctx))
		sess, err := n.newSession(ctx, sessCtx)
		if err != nil {
			sessCancel()
			if ctx.Err() != nil {
				return
			}
			n.sessionDown(err, 0)
			pause(ctx, retryPause)
			continue
		}
		n.sessionUp()
		n.withSession(ctx, sess)
		lost := sessionDone(sess)
		if !lost {
			// Revoking deletes our election key at once: another
			// instance takes over without waiting for the TTL.
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), c.LeaseTTL)
			_, _ = c.Client.Revoke(rctx, sess.Lease())
			rcancel()
		}
		sessCancel()
		if ctx.Err() != nil {
			return
		}
		if lost {
			// The lease already ran out: that is a TTL without contact.
			// A short grace lets an immediate new session avoid the alert.
			n.sessionDown(errors.New("etcd session lease lost"), 2*retryPause)
		}
	}
}

// newSession grants a lease (bounded by the TTL, so an unreachable etcd is
// noticed) and keeps it alive until sessCtx ends or etcd stops answering.
func (n *Node) newSession(ctx, sessCtx context.Context) (*concurrency.Session, error) {
	c := n.Cluster
	gctx, cancel := context.WithTimeout(ctx, c.LeaseTTL)
	defer cancel()
	lease, err := c.Client.Grant(gctx, int64(c.ttlSeconds()))
	if err != nil {
		return nil, fmt.Errorf("grant etcd lease: %w", err)
	}
	return concurrency.NewSession(c.Client, concurrency.WithLease(lease.ID), concurrency.WithTTL(c.ttlSeconds()), concurrency.WithContext(sessCtx))
}

// withSession campaigns and leads on one session until it ends.
func (n *Node) withSession(ctx context.Context, sess *concurrency.Session) {
	c := n.Cluster
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-sess.Done():
			cancel()
		case <-sctx.Done():
		}
	}()
	if !n.eligible(sctx) {
		return
	}
	elect := concurrency.NewElection(sess, c.ElectionPrefix())
	if err := abandonOnDone(sctx, func() error { return elect.Campaign(sctx, c.NodeName) }); err != nil {
		if sctx.Err() == nil {
			c.Logger.Warn("Cluster: campaign for leadership failed: " + err.Error())
			pause(sctx, retryPause)
		}
		return
	}
	// Campaign returns when no older key is left; make sure ours is still
	// there too (it is gone if the lease ran out or someone deleted it).
	resp, err := c.Client.Get(sctx, elect.Key())
	if err != nil || len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != elect.Rev() {
		if sctx.Err() == nil {
			c.Logger.Warn("Cluster: won the election with a key that is gone; campaigning again")
			pause(sctx, retryPause)
		}
		return
	}
	n.lead(ctx, sctx, sess, elect)
}

// eligible waits until this instance may lead: etcd holds a record, or the
// local token file can seed one.
func (n *Node) eligible(ctx context.Context) bool {
	c := n.Cluster
	logged := false
	for {
		n.mu.Lock()
		have, seen := n.haveRec, n.recSeen
		n.mu.Unlock()
		if have {
			return true
		}
		_, ok, err := c.ReadRecord(ctx)
		if err == nil && ok {
			return true
		}
		if err == nil && n.Seed != nil {
			if _, serr := n.Seed(ctx); serr == nil {
				return true
			} else if !logged {
				c.Logger.Info("Cluster: etcd holds no token yet and there is no usable local token file (" + serr.Error() + "); following until a token appears (run `token-refresh-sender login` with the same --etcd-endpoints)")
				logged = true
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-seen:
		case <-time.After(retryPause * 5):
		}
	}
}

// lead runs while this instance holds the election key.
func (n *Node) lead(parent, ctx context.Context, sess *concurrency.Session, elect *concurrency.Election) {
	c := n.Cluster
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	store := &LeaderStore{c: c, key: elect.Key(), rev: elect.Rev(), ctx: lctx, changed: make(chan struct{}, 1)}

	// Deposed without losing the session (the key deleted by hand, or a
	// watch that can no longer tell): step down.
	deposed := make(chan struct{})
	go func() {
		defer close(deposed)
		wch := c.Client.Watch(clientv3.WithRequireLeader(lctx), elect.Key(), clientv3.WithRev(elect.Rev()+1))
		for {
			var resp clientv3.WatchResponse
			var ok bool
			select {
			case <-lctx.Done():
				return
			case resp, ok = <-wch:
			}
			if !ok {
				break
			}
			for _, ev := range resp.Events {
				if ev.Type == clientv3.EventTypeDelete {
					cancel()
					return
				}
			}
			if resp.Err() != nil {
				cancel()
				return
			}
		}
		cancel()
	}()

	c.Logger.Info(fmt.Sprintf("Cluster: this instance (%s) is now the leader; it alone refreshes the token", c.NodeName))
	n.emit(Event{Kind: EventLeading})
	n.mu.Lock()
	n.leadStore = store
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		n.leadStore = nil
		n.mu.Unlock()
	}()

	stepDown := ""
	if err := n.seed(lctx, store); err != nil {
		stepDown = err.Error()
	} else if err := n.Lead(lctx, store); err != nil {
		stepDown = "the refresh loop stopped: " + err.Error()
	}
	cancel()
	<-deposed
	resign := func() {
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(parent), c.LeaseTTL)
		_ = elect.Resign(rctx)
		rcancel()
	}

	switch {
	case parent.Err() != nil:
		resign()
		c.Logger.Info("Cluster: resigned leadership (shutting down)")
		n.emit(Event{Kind: EventDeposed})
	case sessionDone(sess):
		c.Logger.Error(fmt.Sprintf("Cluster: lost the etcd session (no contact with etcd for the lease TTL %s): stopped refreshing at once; another instance takes over", c.LeaseTTL))
		n.emit(Event{Kind: EventDeposed, Err: errors.New("etcd session lost")})
	case ctx.Err() != nil || stepDown == "":
		c.Logger.Error("Cluster: no longer the leader: stopped refreshing at once; another instance takes over")
		resign()
		n.emit(Event{Kind: EventDeposed, Err: ErrNotLeader})
	default:
		c.Logger.Error("Cluster: " + stepDown + "; stepping down")
		resign()
		n.emit(Event{Kind: EventDeposed, Err: errors.New(stepDown)})
		// Do not campaign again at once: give another instance the turn.
		pause(parent, c.LeaseTTL)
	}
}

func sessionDone(s *concurrency.Session) bool {
	select {
	case <-s.Done():
		return true
	default:
		return false
	}
}

// seed writes the first record from the local token file when etcd holds
// none.
func (n *Node) seed(ctx context.Context, store *LeaderStore) error {
	c := n.Cluster
	_, ok, err := c.ReadRecord(ctx)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	if n.Seed == nil {
		return errors.New("etcd holds no token record and this instance has no local token file to seed it")
	}
	tok, err := n.Seed(ctx)
	if err != nil {
		return fmt.Errorf("etcd holds no token record and the local token file cannot seed it: %w", err)
	}
	rec := Record{Token: tok, Writer: c.NodeName, Reason: ReasonSeed, WrittenAt: c.now().Truncate(time.Second), Seq: 1}
	if err := store.write(ctx, rec, 0); err != nil {
		if errors.Is(err, ErrRecordChanged) {
			return nil // another writer seeded first; follow it
		}
		return err
	}
	c.Logger.Info(fmt.Sprintf("Cluster: seeded etcd with the local token file's token (expires %s)", tok.ExpiresAt.Format(time.RFC3339)))
	return nil
}

// watch applies the current record and every later one until ctx ends.
func (n *Node) watch(ctx context.Context) {
	c := n.Cluster
	var beat <-chan time.Time
	if n.Heartbeat != nil && n.HeartbeatEvery > 0 {
		t := time.NewTicker(n.HeartbeatEvery)
		defer t.Stop()
		beat = t.C
	}
	n.beat()
	var last int64   // mod revision of the last record handled
	failing := false // the last read failed (logged once per outage)
	for ctx.Err() == nil {
		gctx, gcancel := context.WithTimeout(ctx, min(c.LeaseTTL, getLimit))
		resp, err := c.Client.Get(gctx, c.TokenKey())
		gcancel()
		if err != nil {
			n.beat()
			if ctx.Err() == nil {
				if !failing {
					c.Logger.Warn("Cluster: cannot read the token record from etcd: " + err.Error() + " (retrying until it answers)")
				}
				failing = true
				pause(ctx, retryPause)
			}
			continue
		}
		if failing {
			c.Logger.Info("Cluster: reading the token record from etcd again")
			failing = false
		}
		if len(resp.Kvs) > 0 && resp.Kvs[0].ModRevision > last {
			last = resp.Kvs[0].ModRevision
			n.handle(ctx, resp.Kvs[0].Value, resp.Kvs[0].ModRevision)
		}
		wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		wch := c.Client.Watch(wctx, c.TokenKey(), clientv3.WithRev(resp.Header.Revision+1))
		for {
			var wr clientv3.WatchResponse
			var ok bool
			select {
			case <-ctx.Done():
			case <-beat:
				n.beat()
				continue
			case wr, ok = <-wch:
			}
			if !ok {
				break
			}
			if err := wr.Err(); err != nil {
				if ctx.Err() == nil {
					c.Logger.Warn("Cluster: watch on the token record ended: " + err.Error() + " (starting again)")
				}
				break
			}
			for _, ev := range wr.Events {
				if ev.Type != clientv3.EventTypePut || ev.Kv.ModRevision <= last {
					continue
				}
				last = ev.Kv.ModRevision
				n.handle(ctx, ev.Kv.Value, ev.Kv.ModRevision)
			}
		}
		wcancel()
		pause(ctx, retryPause/4)
	}
}

func (n *Node) beat() {
	if n.Heartbeat != nil {
		n.Heartbeat()
	}
}

// handle decodes one stored record and applies it.
func (n *Node) handle(ctx context.Context, value []byte, modRev int64) {
	c := n.Cluster
	rec, err := c.Codec.Decode(c.TokenKey(), value)
	if err != nil {
		c.Logger.Error("Cluster: " + err.Error())
		n.emit(Event{Kind: EventApplyFailed, Err: err})
		return
	}
	rec.ModRevision = modRev
	n.mu.Lock()
	if !n.haveRec {
		n.haveRec = true
		close(n.recSeen)
	}
	n.held = rec
	store := n.leadStore
	n.mu.Unlock()
	if store != nil {
		store.notify()
	}
	c.Logger.Info(fmt.Sprintf("Cluster: new token from etcd (%s by %s at %s, record #%d, revision %d; expires %s)",
		rec.Reason, rec.Writer, rec.WrittenAt.Format(time.RFC3339), rec.Seq, rec.ModRevision, rec.Token.ExpiresAt.Format(time.RFC3339)))
	actx, cancel := context.WithCancel(ctx)
	if n.supersede != nil {
		n.supersede()
	}
	n.supersede = cancel
	if err := n.Apply(actx, rec); err != nil {
		if ctx.Err() == nil {
			c.Logger.Error("Cluster: could not apply the token from etcd locally: " + err.Error())
			n.emit(Event{Kind: EventApplyFailed, Err: err, Record: rec})
		}
		return
	}
	n.emit(Event{Kind: EventApplied, Record: rec})
	if err := c.report(ctx, rec); err != nil && ctx.Err() == nil {
		c.Logger.Warn("Cluster: " + err.Error())
	}
}

// State is a Node's view of the cluster, for metrics and status.
type State struct {
	// Leading: this instance leads (it alone refreshes).
	Leading bool
	// Available is false from the moment the etcd session was lost (or
	// could not be had) until a new one is up; DownSince says since when.
	Available bool
	DownSince time.Time
	// Held is the newest record applied; HaveRecord is false before the
	// first.
	Held       Record
	HaveRecord bool
}

// State returns the node's current state.
func (n *Node) State() State {
	n.mu.Lock()
	defer n.mu.Unlock()
	return State{
		Leading:    n.leadStore != nil && n.leadStore.Leading(),
		Available:  n.available,
		DownSince:  n.downSince,
		Held:       n.held,
		HaveRecord: n.haveRec,
	}
}

// sessionUp notes that etcd answered (a session was granted).
func (n *Node) sessionUp() {
	n.mu.Lock()
	if n.unavailTm != nil {
		n.unavailTm.Stop()
		n.unavailTm = nil
	}
	was := n.alerted
	since := n.downSince
	n.available, n.alerted, n.downSince = true, false, time.Time{}
	n.mu.Unlock()
	if was {
		n.Cluster.Logger.Info(fmt.Sprintf("Cluster: etcd is reachable again (unavailable since %s)", since.Format(time.RFC3339)))
		n.emit(Event{Kind: EventAvailable, Since: since})
	}
}

// sessionDown notes that the session ended or could not be created. If no
// new session comes within grace, the cluster is unavailable to
// this instance: it says so once.
func (n *Node) sessionDown(cause error, grace time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.available {
		return
	}
	n.available = false
	n.downSince = n.Cluster.now()
	n.unavailTm = time.AfterFunc(grace, func() { n.unavailable(cause) })
}

func (n *Node) unavailable(cause error) {
	n.mu.Lock()
	if n.available || n.alerted {
		n.mu.Unlock()
		return
	}
	n.alerted = true
	since, held, have := n.downSince, n.held, n.haveRec
	n.mu.Unlock()
	state := "no token held yet"
	if have {
		state = "the local bots keep the last token, valid until " + held.Token.ExpiresAt.Format(time.RFC3339)
	}
	n.Cluster.Logger.Error(fmt.Sprintf("Cluster unavailable: no contact with etcd since %s (%v); no instance refreshes the token until etcd is back; %s. Restore etcd, or run one host without --etcd-endpoints before then",
		since.Format(time.RFC3339), cause, state))
	ev := Event{Kind: EventUnavailable, Since: since, Err: cause}
	if have {
		ev.Record = held
	}
	n.emit(ev)
}

// Summary is a one-line description of the state, for systemd's STATUS=
// and logs: the role, etcd's reachability, and the held token's expiry.
func (s State) Summary() string {
	role := "follower"
	if s.Leading {
		role = "leader"
	}
	held, from := "no token yet", ""
	if s.HaveRecord {
		held = "token valid until " + s.Held.Token.ExpiresAt.Format(time.RFC3339)
		from = fmt.Sprintf(" (record #%d by %s)", s.Held.Seq, s.Held.Writer)
	}
	if !s.Available {
		return fmt.Sprintf("Cluster UNAVAILABLE since %s: nobody refreshes; %s", s.DownSince.Format(time.RFC3339), held)
	}
	return fmt.Sprintf("Cluster %s; %s%s", role, held, from)
}
