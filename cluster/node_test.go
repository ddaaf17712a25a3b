//go:build !noetcd

package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Steady state: one leader refreshes, exactly one token request per cycle,
// every instance applies every record; the first leader seeded etcd from
// its local token file and the host without one wrote it from etcd.
func TestNode_SteadyState(t *testing.T) {
	w := newWorld(t)
	seed := loginToken("seed")
	a := w.start("a", instanceOpts{local: &seed})
	b := w.start("b", instanceOpts{local: &seed})
	c := w.start("c", instanceOpts{}) // joins without a local token file
	all := []*instance{a, b, c}
	for _, in := range all {
		rec := in.waitApplied(t, 1)
		if rec.Reason != ReasonSeed || rec.Token.AccessToken != seed.AccessToken {
			t.Fatalf("%s: first record = %s %v, want the seed", in.name, rec.Reason, rec.Token)
		}
	}
	leader := w.leader(t, all...)
	if log := leader.log.String(); !strings.Contains(log, "seeded etcd with the local token file's token") {
		t.Fatalf("the first leader does not say it seeded etcd:\n%s", log)
	}
	const cycles = 5
	for i := range cycles {
		r := w.cycle(t)
		if r.err != nil {
			t.Fatalf("cycle %d: %v", i+1, r.err)
		}
		if r.node != leader.name {
			t.Fatalf("cycle %d ran on %s, leader is %s", i+1, r.node, leader.name)
		}
		for _, in := range all {
			rec := in.waitApplied(t, uint64(i+2))
			if rec.Token.AccessToken != r.tok.AccessToken || rec.Writer != leader.name || rec.Reason != ReasonRefresh {
				t.Fatalf("%s applied %+v, want the token refreshed by %s", in.name, rec, leader.name)
			}
		}
		if got := w.refresh.calls.Load(); got != int64(i+1) {
			t.Fatalf("after %d cycles the token endpoint saw %d requests", i+1, got)
		}
	}
	for _, caller := range w.refresh.Callers() {
		if caller != leader.name {
			t.Fatalf("%s refreshed, but %s leads", caller, leader.name)
		}
	}
	// Each Apply's ctx ends when the next record arrives (delivery retries
	// of a superseded token stop); the newest one's is still live.
	for _, in := range all {
		in.mu.Lock()
		ctxs := in.ctxs
		in.mu.Unlock()
		for i, ctx := range ctxs {
			if (ctx.Err() == nil) != (i == len(ctxs)-1) {
				t.Fatalf("%s: Apply ctx %d of %d: err %v", in.name, i+1, len(ctxs), ctx.Err())
			}
		}
	}
	// The seedless host's "local file" now holds the newest token.
	c.mu.Lock()
	got := c.local
	c.mu.Unlock()
	if got == nil || got.RefreshToken != seed.RefreshToken {
		t.Fatalf("host without a local file holds %v", got)
	}
	if !strings.Contains(c.log.String(), "new token from etcd (refresh by "+leader.name) {
		t.Fatalf("follower does not say where the token came from:\n%s", c.log.String())
	}
	for _, in := range all {
		if in != leader && in.countEvents(EventLeading) != 0 {
			t.Fatalf("%s led too", in.name)
		}
		// Each report of an applied record (all but the last are done:
		// records are handled one after the other) went through quietly.
		if log := in.log.String(); strings.Contains(log, "report applied record") {
			t.Fatalf("%s complained about its reports:\n%s", in.name, log)
		}
	}
}

// A host without a token file, alone with an empty etcd, does not lead:
// it waits for a record and then writes it.
func TestNode_NoTokenAnywhereFollows(t *testing.T) {
	w := newWorld(t)
	c := w.start("c", instanceOpts{})
	c.waitFor(t, "the no-token line", func() bool {
		return strings.Contains(c.log.String(), "etcd holds no token yet and there is no usable local token file")
	})
	if c.countEvents(EventLeading) != 0 {
		t.Fatal("an instance with nothing to seed became leader")
	}
	seed := loginToken("late")
	a := w.start("a", instanceOpts{local: &seed})
	for _, in := range []*instance{a, c} {
		if rec := in.waitApplied(t, 1); rec.Token.RefreshToken != seed.RefreshToken {
			t.Fatalf("%s applied %v", in.name, rec.Token)
		}
	}
}

// startThree starts a, b, c with the same local token file and waits
// until all applied the seed.
func startThree(t *testing.T, w *world, viaProxy bool) []*instance {
	t.Helper()
	seed := loginToken("seed")
	var all []*instance
	for _, name := range []string{"a", "b", "c"} {
		all = append(all, w.start(name, instanceOpts{local: &seed, viaProxy: viaProxy}))
	}
	for _, in := range all {
		in.waitApplied(t, 1)
	}
	return all
}

func others(all []*instance, not *instance) []*instance {
	var out []*instance
	for _, in := range all {
		if in != not {
			out = append(out, in)
		}
	}
	return out
}

// checkCycle runs one refresh cycle, requires it to succeed on want (any
// of them) and every instance in all to apply it.
func checkCycle(t *testing.T, w *world, want []*instance, all []*instance) cycleResult {
	t.Helper()
	before := w.refresh.calls.Load()
	r := w.cycle(t)
	if r.err != nil {
		t.Fatalf("cycle on %s: %v", r.node, r.err)
	}
	ok := false
	for _, in := range want {
		ok = ok || in.name == r.node
	}
	if !ok {
		t.Fatalf("cycle ran on %s", r.node)
	}
	if got := w.refresh.calls.Load() - before; got != 1 {
		t.Fatalf("one cycle made %d token requests", got)
	}
	for _, in := range all {
		in.waitFor(t, "the cycle's token", func() bool {
			return len(in.applied) > 0 && in.applied[len(in.applied)-1].Token.AccessToken == r.tok.AccessToken
		})
	}
	return r
}

// The leader vanishes (as after kill -9: no resign, no revoke): another
// instance leads once the lease runs out, and continues from the record.
func TestNode_FailoverAfterCrash(t *testing.T) {
	w := newWorld(t)
	all := startThree(t, w, false)
	old := w.leader(t, all...)
	checkCycle(t, w, []*instance{old}, all)
	crashed := time.Now()
	old.crash()
	rest := others(all, old)
	next := w.leader(t, rest...)
	t.Logf("failover after a crash took %s (lease TTL %s)", time.Since(crashed).Round(time.Millisecond), testTTL)
	r := checkCycle(t, w, []*instance{next}, rest)
	rec := next.waitApplied(t, 3)
	if rec.Writer != next.name || rec.Token.AccessToken != r.tok.AccessToken {
		t.Fatalf("new leader's record: %+v", rec)
	}
}

// The leader's lease revoked from outside while etcd answers (its election
// key goes with it): it stops refreshing and says so, takes part again at
// once on a new session, and raises no cluster_unavailable alert.
func TestNode_LeaseLostWhileEtcdAnswersIsNoOutage(t *testing.T) {
	w := newWorld(t)
	all := startThree(t, w, false)
	old := w.leader(t, all...)
	resp, err := old.c.Client.Get(context.Background(), old.c.ElectionPrefix()+"/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	var lease clientv3.LeaseID
	for _, kv := range resp.Kvs {
		if string(kv.Value) == old.name {
			lease = clientv3.LeaseID(kv.Lease)
		}
	}
	if lease == 0 {
		t.Fatalf("no election key of %s", old.name)
	}
	if _, err := old.c.Client.Revoke(context.Background(), lease); err != nil {
		t.Fatal(err)
	}
	old.waitFor(t, "the step down", func() bool { return strings.Contains(old.log.String(), "stopped refreshing at once") })
	// A new session: the instance campaigns again (a key of its own in
	// the election), or leads again.
	deadline := time.Now().Add(waitLimit)
	for {
		resp, err := old.c.Client.Get(context.Background(), old.c.ElectionPrefix()+"/", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		back := false
		for _, kv := range resp.Kvs {
			back = back || (string(kv.Value) == old.name && clientv3.LeaseID(kv.Lease) != lease)
		}
		if back {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not take part again:\n%s", old.name, old.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	checkCycle(t, w, []*instance{w.leader(t, all...)}, all)
	if n := old.countEvents(EventUnavailable); n != 0 || strings.Contains(old.log.String(), "Cluster unavailable") {
		t.Fatalf("%s reported the cluster unavailable (%d events) for a session it replaced at once:\n%s", old.name, n, old.log.String())
	}
}

// A leader that shuts down resigns: the next one leads without waiting for
// the lease.
func TestNode_FailoverAfterStop(t *testing.T) {
	w := newWorld(t)
	all := startThree(t, w, false)
	old := w.leader(t, all...)
	old.stop()
	if !strings.Contains(old.log.String(), "resigned leadership") {
		t.Fatalf("no resign line:\n%s", old.log.String())
	}
	rest := others(all, old)
	next := w.leader(t, rest...)
	checkCycle(t, w, []*instance{next}, rest)
	// A follower waiting in the election stops quietly: its campaign cut
	// short by the shutdown is no failure.
	f := others(rest, next)[0]
	f.stop()
	if log := f.log.String(); strings.Contains(log, "campaign for leadership failed") {
		t.Fatalf("%s's shutdown was logged as a failed campaign:\n%s", f.name, log)
	}
}

// The leader is cut off from etcd: it stops refreshing and says so, another
// instance takes over, and nothing the cut leader does reaches etcd. When
// the cut heals it follows.
func TestNode_LeaderCutOff(t *testing.T) {
	w := newWorld(t)
	all := startThree(t, w, true)
	old := w.leader(t, all...)
	checkCycle(t, w, []*instance{old}, all)
	old.proxy.cut.Store(true)
	old.waitEvent(t, EventDeposed, 1)
	if !strings.Contains(old.log.String(), "stopped refreshing at once") {
		t.Fatalf("the cut leader does not say it stopped:\n%s", old.log.String())
	}
	rest := others(all, old)
	next := w.leader(t, rest...)
	// Every cycle now runs on the new leader; the cut one calls nobody.
	for range 3 {
		checkCycle(t, w, []*instance{next}, rest)
	}
	old.waitEvent(t, EventUnavailable, 1)
	if !strings.Contains(old.log.String(), "Cluster unavailable") {
		t.Fatalf("no unavailable line:\n%s", old.log.String())
	}
	callers := w.refresh.Callers()
	for _, c := range callers[1:] {
		if c != next.name {
			t.Fatalf("token requests after the cut came from %v", callers)
		}
	}
	old.proxy.heal()
	old.waitEvent(t, EventAvailable, 1)
	r := checkCycle(t, w, []*instance{next}, all)
	_ = r
	if old.countEvents(EventLeading) != 1 {
		t.Fatal("the healed instance led again while another leads")
	}
	old.assertAppliedOnce(t)
}

// One etcd member dies (the raft leader, the worst case): refreshes go on,
// every instance gets every token, and leadership stays where it was.
func TestNode_EtcdMemberLost(t *testing.T) {
	w := newWorld(t)
	all := startThree(t, w, false)
	leader := w.leader(t, all...)
	checkCycle(t, w, []*instance{leader}, all)
	w.etcd.Stop(raftLeader(t, w, leader))
	for range 3 {
		checkCycle(t, w, []*instance{leader}, all)
	}
	for _, in := range all {
		if in.countEvents(EventDeposed) != 0 || in.countEvents(EventUnavailable) != 0 {
			t.Fatalf("%s: leadership or availability changed after losing one member:\n%s", in.name, in.log.String())
		}
	}
}

// raftLeader is the index of the etcd member leading raft.
func raftLeader(t *testing.T, w *world, in *instance) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for i, ep := range w.etcd.Endpoints() {
		st, err := in.c.Client.Status(ctx, ep)
		if err != nil {
			t.Fatal(err)
		}
		if st.Leader == st.Header.MemberId {
			return i
		}
	}
	t.Fatal("no raft leader")
	return -1
}

// With an encryption key the records in etcd hold no token, and every
// instance still applies the right one; an instance without the key (or
// with another) applies nothing and says why.
func TestNode_EncryptedRecords(t *testing.T) {
	w := newWorld(t)
	w.codec = NewCodec(testKey(7))
	all := startThree(t, w, false)
	leader := w.leader(t, all...)
	r := checkCycle(t, w, []*instance{leader}, all)
	resp, err := leader.c.Client.Get(context.Background(), leader.c.Prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	seed := loginToken("seed")
	for _, kv := range resp.Kvs {
		for _, secret := range []string{r.tok.AccessToken, seed.RefreshToken, seed.AccessToken, r.tok.AccessToken[:16]} {
			if strings.Contains(string(kv.Value), secret) {
				t.Fatalf("etcd key %s holds a token in clear", kv.Key)
			}
		}
	}
	if rec := all[2].waitApplied(t, 2); rec.Token.AccessToken != r.tok.AccessToken {
		t.Fatal("sealed record not applied")
	}

	w.codec = Codec{}
	keyless := w.start("keyless", instanceOpts{})
	keyless.waitEvent(t, EventApplyFailed, 1)
	w.codec = NewCodec(testKey(8))
	wrong := w.start("wrong", instanceOpts{})
	wrong.waitEvent(t, EventApplyFailed, 1)
	if !strings.Contains(keyless.log.String(), "no key was given") || !strings.Contains(wrong.log.String(), "cannot be opened with this key") {
		t.Fatalf("logs:\n%s\n%s", keyless.log.String(), wrong.log.String())
	}
	for _, in := range []*instance{keyless, wrong} {
		if len(in.applied) != 0 || in.countEvents(EventLeading) != 0 {
			t.Fatalf("%s applied or led without the key", in.name)
		}
	}
}

// etcd is gone altogether: nobody refreshes, every instance says the
// cluster is unavailable (with the expiry the bots hold), and all recover
// when etcd is back.
func TestNode_EtcdUnavailable(t *testing.T) {
	w := newWorld(t)
	all := startThree(t, w, false)
	leader := w.leader(t, all...)
	r := checkCycle(t, w, []*instance{leader}, all)
	for i := range 3 {
		w.etcd.Stop(i)
	}
	for _, in := range all {
		in.waitEvent(t, EventUnavailable, 1)
		in.mu.Lock()
		var ev Event
		for _, e := range in.events {
			if e.Kind == EventUnavailable {
				ev = e
			}
		}
		in.mu.Unlock()
		if ev.Record.Token.AccessToken != r.tok.AccessToken || ev.Since.IsZero() || ev.Err == nil {
			t.Fatalf("%s: unavailable event %+v", in.name, ev)
		}
		if !strings.Contains(in.log.String(), "no instance refreshes the token until etcd is back; the local bots keep the last token, valid until") {
			t.Fatalf("%s: no unavailable line:\n%s", in.name, in.log.String())
		}
	}
	leader.waitEvent(t, EventDeposed, 1)
	for _, in := range all {
		st := in.node.State()
		if st.Available || st.DownSince.IsZero() || st.Leading || st.Held.Token.AccessToken != r.tok.AccessToken || !st.HaveRecord {
			t.Fatalf("%s: state while etcd is down: %+v", in.name, st)
		}
		// The watchdog heartbeat goes on while etcd is down.
		n := in.beats.Load()
		in.waitFor(t, "a heartbeat while etcd is down", func() bool { return in.beats.Load() > n })
	}
	// A cycle offered now finds no leader.
	select {
	case w.tick <- struct{}{}:
		t.Fatal("an instance took a refresh cycle while etcd is down")
	default:
	}
	before := w.refresh.calls.Load()
	if err := w.etcd.RestartAll(); err != nil {
		t.Fatal(err)
	}
	for _, in := range all {
		in.waitEvent(t, EventAvailable, 1)
	}
	if w.refresh.calls.Load() != before {
		t.Fatal("refreshed while etcd was down")
	}
	next := w.leader(t, all...)
	checkCycle(t, w, []*instance{next}, all)
	if st := next.node.State(); !st.Leading || !st.Available || !st.DownSince.IsZero() {
		t.Fatalf("state after recovery: %+v", st)
	}
	// The watchers started again from the record they had.
	for _, in := range all {
		in.assertAppliedOnce(t)
	}
}

// assertAppliedOnce fails if in applied a record twice (a watcher that
// starts again must not hand the record it had to the bots again).
func (in *instance) assertAppliedOnce(t *testing.T) {
	t.Helper()
	in.mu.Lock()
	defer in.mu.Unlock()
	seen := map[uint64]bool{}
	for _, rec := range in.applied {
		if seen[rec.Seq] {
			t.Fatalf("%s applied record #%d twice", in.name, rec.Seq)
		}
		seen[rec.Seq] = true
	}
}

// ReadStatus shows the leader, the record and what each instance applied.
func TestCluster_ReadStatus(t *testing.T) {
	w := newWorld(t)
	all := startThree(t, w, false)
	leader := w.leader(t, all...)
	r := checkCycle(t, w, []*instance{leader}, all)
	var st Status
	all[0].waitFor(t, "every node's report", func() bool {
		var err error
		st, err = all[0].c.ReadStatus(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Nodes) != 3 {
			return false
		}
		for _, n := range st.Nodes {
			if n.Seq != 2 {
				return false
			}
		}
		return true
	})
	if st.Leader != leader.name || !st.HasRecord || st.Record.Token.AccessToken != r.tok.AccessToken || st.Record.Seq != 2 {
		t.Fatalf("status %+v", st)
	}
	for i, n := range st.Nodes {
		if n.Name != all[i].name || n.Revision != st.Record.ModRevision || n.AppliedAt.IsZero() {
			t.Fatalf("node report %d: %+v", i, n)
		}
	}
	leader.stop()
	next := w.leader(t, others(all, leader)...)
	st, err := next.c.ReadStatus(context.Background())
	if err != nil || st.Leader != next.name {
		t.Fatalf("after failover: %+v %v", st.Leader, err)
	}
}

// A session lost to a short cut (just over the lease TTL) that is replaced
// within the grace after the loss raises no cluster_unavailable alert: only
// an outage that lasts is one.
func TestNode_ShortCutIsNoOutage(t *testing.T) {
	w := newWorld(t)
	all := startThree(t, w, true)
	old := w.leader(t, all...)
	old.proxy.cut.Store(true)
	old.waitFor(t, "the session loss", func() bool { return strings.Contains(old.log.String(), "lost the etcd session") })
	old.proxy.heal()
	old.waitFor(t, "a new session", func() bool {
		old.node.mu.Lock()
		defer old.node.mu.Unlock()
		return old.node.available
	})
	if n := old.countEvents(EventUnavailable); n != 0 {
		t.Fatalf("%s raised cluster_unavailable for a session it replaced within the grace:\n%s", old.name, old.log.String())
	}
}
