package cluster

import (
	"strings"
	"testing"
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
