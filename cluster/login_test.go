//go:build !noetcd

package cluster

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	tokensender "github.com/schwabtools/token-refresh-sender"
)

// Two hosts log in at once: the second waits (and says for whom) until the
// first has finished and stored its token; then it logs in. Both tokens
// reach every instance, in order.
func TestCluster_LoginsSerialised(t *testing.T) {
	w := newWorld(t)
	all := startThree(t, w, false)
	a, b := all[0], all[1]

	var inside, overlaps atomic.Int32
	releaseA := make(chan struct{})
	aInside := make(chan struct{})
	do := func(tag string, entered chan struct{}, release chan struct{}) func(context.Context) (tokensender.Token, error) {
		return func(context.Context) (tokensender.Token, error) {
			if inside.Add(1) > 1 {
				overlaps.Add(1)
			}
			defer inside.Add(-1)
			if entered != nil {
				close(entered)
			}
			if release != nil {
				<-release
			}
			return loginToken(tag), nil
		}
	}
	var wg sync.WaitGroup
	var recA, recB Record
	var errA, errB error
	aDone := make(chan struct{})
	wg.Go(func() {
		defer close(aDone)
		recA, errA = a.c.Login(context.Background(), do("login-a", aInside, releaseA))
	})
	select {
	case <-aInside:
	case <-aDone:
		t.Fatalf("the first login ended before logging in: %v", errA)
	}
	wg.Go(func() { recB, errB = b.c.Login(context.Background(), do("login-b", nil, nil)) })
	b.waitFor(t, "the waiting line", func() bool {
		return strings.Contains(b.log.String(), "another login is in progress on a; waiting for it to finish")
	})
	close(releaseA)
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("logins: %v, %v", errA, errB)
	}
	if overlaps.Load() != 0 {
		t.Fatal("two logins ran at the same time")
	}
	if recA.Seq != 2 || recB.Seq != 3 || recA.Reason != ReasonLogin || recB.Writer != "b" {
		t.Fatalf("records: %+v then %+v", recA, recB)
	}
	for _, in := range all {
		ra, rb := in.waitApplied(t, 2), in.waitApplied(t, 3)
		if ra.Token.RefreshToken != loginToken("login-a").RefreshToken || rb.Token.RefreshToken != loginToken("login-b").RefreshToken {
			t.Fatalf("%s applied %v then %v", in.name, ra.Token, rb.Token)
		}
		if !rb.Token.RefreshTokenIssuedAt.Equal(loginToken("login-b").RefreshTokenIssuedAt) {
			t.Fatalf("%s lost the login time", in.name)
		}
	}
	// The leader's loop heard of the new login (it refreshes at once).
	leader := w.leader(t, all...)
	select {
	case <-leader.store(t).Changed():
	default:
		t.Fatal("the leader was not told of the login")
	}
	// And refreshes from the new login's refresh token.
	r := checkCycle(t, w, []*instance{leader}, all)
	if r.tok.RefreshToken != loginToken("login-b").RefreshToken {
		t.Fatalf("refreshed from %s", r.tok.RefreshToken)
	}
	// The lock is free again.
	resp, err := a.c.Client.Get(context.Background(), a.c.LoginLockPrefix(), clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("login lock left behind: %v %v", resp.Kvs, err)
	}
}

// A failed login writes nothing and frees the lock.
func TestCluster_LoginFails(t *testing.T) {
	w := newWorld(t)
	all := startThree(t, w, false)
	want := errors.New("the browser was closed")
	_, err := all[0].c.Login(context.Background(), func(context.Context) (tokensender.Token, error) { return tokensender.Token{}, want })
	if err != want {
		t.Fatalf("err = %v", err)
	}
	if rec, _ := currentSeq(t, all[0]); rec.Seq != 1 {
		t.Fatal("a failed login wrote a record")
	}
	if _, err := all[1].c.Login(context.Background(), func(context.Context) (tokensender.Token, error) { return loginToken("ok"), nil }); err != nil {
		t.Fatalf("next login: %v", err)
	}
}

// The leader writes while the login's token is being stored: the login
// reads again and still stores its token (the newest), with the next Seq.
func TestCluster_LoginRetriesWhenRecordChanges(t *testing.T) {
	w := newWorld(t)
	all := startThree(t, w, false)
	leader := w.leader(t, all...)
	in := others(all, leader)[0]
	attempts := 0
	in.c.testHookLoginWrite = func([]byte) {
		attempts++
		if attempts == 1 {
			checkCycle(t, w, []*instance{leader}, all) // record #2 lands in between
		}
	}
	rec, err := in.c.Login(context.Background(), func(context.Context) (tokensender.Token, error) { return loginToken("retry"), nil })
	if err != nil {
		t.Fatal(err)
	}
	if attempts != 2 || rec.Seq != 3 {
		t.Fatalf("attempts %d, seq %d", attempts, rec.Seq)
	}
	if got, _ := currentSeq(t, in); got.Token.RefreshToken != loginToken("retry").RefreshToken {
		t.Fatal("the login's token is not the record")
	}
	if !strings.Contains(in.log.String(), "changed while logging in") {
		t.Fatal("no retry line")
	}
}

// A refused login write is taken for applied only when an earlier attempt
// failed ambiguously: a record that changed under a clean attempt, even to
// the very value it would write, is read again and written anew.
func TestCluster_LoginRefusedWriteIsNotTakenForApplied(t *testing.T) {
	w := newWorld(t)
	all := startThree(t, w, false)
	in := all[0]
	attempts := 0
	in.c.testHookLoginWrite = func(val []byte) {
		attempts++
		if attempts == 1 {
			// Someone stores the same bytes first: the attempt's
			// compare on the record's revision fails, with no error.
			if _, err := in.c.Client.Put(context.Background(), in.c.TokenKey(), string(val)); err != nil {
				t.Error(err)
			}
		}
	}
	rec, err := in.c.Login(context.Background(), func(context.Context) (tokensender.Token, error) { return loginToken("same"), nil })
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := currentSeq(t, in)
	if attempts != 2 || rec.Seq != 3 || cur.Seq != 3 || cur.ModRevision != rec.ModRevision {
		t.Fatalf("attempts %d, login's record #%d (revision %d), stored #%d (revision %d); want a second write, #3", attempts, rec.Seq, rec.ModRevision, cur.Seq, cur.ModRevision)
	}
}

// Losing the lock during the login (its key gone) stores nothing.
func TestCluster_LoginLosesLock(t *testing.T) {
	w := newWorld(t)
	all := startThree(t, w, false)
	in := all[0]
	_, err := in.c.Login(context.Background(), func(context.Context) (tokensender.Token, error) {
		if _, err := in.c.Client.Delete(context.Background(), in.c.LoginLockPrefix(), clientv3.WithPrefix()); err != nil {
			t.Fatal(err)
		}
		return loginToken("orphan"), nil
	})
	if err == nil || !strings.Contains(err.Error(), "lost the cluster login lock") {
		t.Fatalf("err = %v", err)
	}
	if rec, _ := currentSeq(t, in); rec.Seq != 1 {
		t.Fatal("a login without the lock wrote a record")
	}
}
