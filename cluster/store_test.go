//go:build !noetcd

package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	tokensender "github.com/schwabtools/token-refresh-sender"
)

func (in *instance) store(t *testing.T) *LeaderStore {
	t.Helper()
	in.node.mu.Lock()
	defer in.node.mu.Unlock()
	if in.node.leadStore == nil {
		t.Fatalf("%s does not lead", in.name)
	}
	return in.node.leadStore
}

func currentSeq(t *testing.T, in *instance) (Record, bool) {
	t.Helper()
	rec, ok, err := in.c.ReadRecord(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rec, ok
}

// Leadership lost between the read and the write (the election key is
// gone): the write is refused, the record stays, the leader steps down.
func TestLeaderStore_WriteRefusedAfterLosingLeadership(t *testing.T) {
	w := newWorld(t)
	all := startThree(t, w, false)
	leader := w.leader(t, all...)
	s := leader.store(t)
	tok, err := s.Update(context.Background(), func(cur tokensender.Token) (tokensender.Token, error) {
		if _, err := leader.c.Client.Delete(context.Background(), leader.c.ElectionPrefix(), clientv3.WithPrefix()); err != nil {
			t.Fatal(err)
		}
		return w.refresh.refresh(leader.name, cur)
	})
	if !errors.Is(err, ErrNotLeader) || tok.AccessToken == "" {
		t.Fatalf("Update = %v, %v; want the refreshed token and ErrNotLeader", tok, err)
	}
	if rec, _ := currentSeq(t, leader); rec.Seq != 1 {
		t.Fatalf("record #%d written by %s despite lost leadership", rec.Seq, rec.Writer)
	}
	leader.waitEvent(t, EventDeposed, 1)
	if s.Leading() {
		t.Fatal("the store still claims leadership")
	}
	if !strings.Contains(leader.log.String(), "no longer the leader: stopped refreshing at once") {
		t.Fatalf("no step-down line:\n%s", leader.log.String())
	}
	// Someone leads again and refreshes normally.
	next := w.leader(t, all...)
	checkCycle(t, w, []*instance{next}, all)
}

// A newer record written between the read and the write (a login) is
// never overwritten by the refresh that started from the older one.
func TestLeaderStore_WriteRefusedAfterRecordChanged(t *testing.T) {
	w := newWorld(t)
	all := startThree(t, w, false)
	leader := w.leader(t, all...)
	s := leader.store(t)
	login := Record{Token: loginToken("racing-login"), Writer: "x", Reason: ReasonLogin, Seq: 2}
	val, err := w.codec.Encode(leader.c.TokenKey(), login)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Update(context.Background(), func(cur tokensender.Token) (tokensender.Token, error) {
		if _, err := leader.c.Client.Put(context.Background(), leader.c.TokenKey(), string(val)); err != nil {
			t.Fatal(err)
		}
		return w.refresh.refresh(leader.name, cur)
	})
	if !errors.Is(err, ErrRecordChanged) {
		t.Fatalf("Update err = %v, want ErrRecordChanged", err)
	}
	if rec, _ := currentSeq(t, leader); rec.Token.AccessToken != login.Token.AccessToken {
		t.Fatalf("the login's record was overwritten by %s", rec.Writer)
	}
	for _, in := range all {
		in.waitApplied(t, 2)
	}
	// The leader heard of the new record (its loop refreshes at once).
	select {
	case <-s.Changed():
	default:
		t.Fatal("Changed did not fire for a record written by another host")
	}
	if !s.Leading() {
		t.Fatal("a changed record cost the leadership")
	}
}

// A refused write is taken for applied only when an earlier attempt failed
// ambiguously: a record changed under a clean attempt, even to the very
// value it would write, is ErrRecordChanged.
func TestLeaderStore_CleanRefusalIsNotTakenForApplied(t *testing.T) {
	w := newWorld(t)
	all := startThree(t, w, false)
	leader := w.leader(t, all...)
	s := leader.store(t)
	prev, _ := currentSeq(t, leader)
	rec := Record{Token: loginToken("same-bytes"), Writer: leader.name, Reason: ReasonRefresh, Seq: prev.Seq + 1}
	val, err := w.codec.Encode(leader.c.TokenKey(), rec) // clear records: the same bytes write would store
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leader.c.Client.Put(context.Background(), leader.c.TokenKey(), string(val)); err != nil {
		t.Fatal(err)
	}
	if err := s.write(context.Background(), rec, prev.ModRevision); !errors.Is(err, ErrRecordChanged) {
		t.Fatalf("write over a changed record: err = %v, want ErrRecordChanged", err)
	}
}

// A store whose election key is not (or no longer) ours does not even call
// the refresher: etcd refuses the read.
func TestLeaderStore_NoRefreshWithoutLeadership(t *testing.T) {
	w := newWorld(t)
	all := startThree(t, w, false)
	leader := w.leader(t, all...)
	s := leader.store(t)
	stale := &LeaderStore{c: s.c, key: s.key, rev: s.rev + 1, ctx: context.Background(), changed: make(chan struct{}, 1)}
	called := false
	_, err := stale.Update(context.Background(), func(cur tokensender.Token) (tokensender.Token, error) {
		called = true
		return cur, nil
	})
	if !errors.Is(err, ErrNotLeader) || called {
		t.Fatalf("stale store: err %v, refresher called %v", err, called)
	}
	// Known locally to be deposed: refused as well.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	gone := &LeaderStore{c: s.c, key: s.key, rev: s.rev, ctx: ctx, changed: make(chan struct{}, 1)}
	_, err = gone.Update(context.Background(), func(cur tokensender.Token) (tokensender.Token, error) {
		called = true
		return cur, nil
	})
	if !errors.Is(err, ErrNotLeader) || called {
		t.Fatalf("deposed store: err %v, refresher called %v", err, called)
	}
	// The real one works, and Load reads the record.
	tok, err := s.Load(context.Background())
	if err != nil || tok.AccessToken != loginToken("seed").AccessToken {
		t.Fatalf("Load = %v, %v", tok, err)
	}
	wantErr := errors.New("schwab said no")
	tok, err = s.Update(context.Background(), func(tokensender.Token) (tokensender.Token, error) { return tokensender.Token{}, wantErr })
	if err != wantErr || tok != (tokensender.Token{}) {
		t.Fatalf("refresh error came back as %v, %v", tok, err)
	}
	if rec, _ := currentSeq(t, leader); rec.Seq != 1 {
		t.Fatal("a failed refresh wrote a record")
	}
}
