package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	tokensender "github.com/schwabtools/token-refresh-sender"
)

// LeaderStore is the refresh loop's Store on the leader: Load reads the
// token record from etcd, Update refreshes from it and writes the result
// back in a transaction that succeeds only while this instance still holds
// the election key it won (same create revision) and the record is
// unchanged since it was read (same mod revision). Once leadership is lost
// it refuses to run the refresh at all.
//
// Its methods have the shape of daemon.Store, so the usual refresh loop
// runs on it unchanged; Changed can feed the loop's FileChanged, so a login
// written to etcd by another host triggers a refresh at once.
type LeaderStore struct {
	c       *Cluster
	key     string // our election key
	rev     int64  // its create revision
	ctx     context.Context
	changed chan struct{}
}

// Changed receives (coalesced) when a new record arrives from etcd while
// this instance leads.
func (s *LeaderStore) Changed() <-chan struct{} { return s.changed }

func (s *LeaderStore) notify() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Leading reports whether this store's leadership still stands, as far as
// this instance knows (the write transaction checks it again in etcd).
func (s *LeaderStore) Leading() bool { return s.ctx.Err() == nil }

// Load reads the token record.
func (s *LeaderStore) Load(ctx context.Context) (tokensender.Token, error) {
	rec, ok, err := s.c.ReadRecord(ctx)
	if err != nil {
		return tokensender.Token{}, err
	}
	if !ok {
		return tokensender.Token{}, errors.New("etcd holds no token record: run `token-refresh-sender login` with --etcd-endpoints")
	}
	return rec.Token, nil
}

// Update runs fn (the refresh) on the record's token and stores the token
// fn returns. fn is not called once leadership is lost. When fn fails,
// nothing is written and fn's error comes back unchanged. When the write
// is refused (ErrNotLeader, ErrRecordChanged) or fails, Update returns
// fn's token with the error: refreshed, but not stored.
func (s *LeaderStore) Update(ctx context.Context, fn func(current tokensender.Token) (tokensender.Token, error)) (tokensender.Token, error) {
	rec, err := s.readAsLeader(ctx)
	if err != nil {
		return tokensender.Token{}, err
	}
	tok, err := fn(rec.Token)
	if err != nil {
		return tokensender.Token{}, err
	}
	next := Record{Token: tok, Writer: s.c.NodeName, Reason: ReasonRefresh, WrittenAt: s.c.now().Truncate(time.Second), Seq: rec.Seq + 1}
	if err := s.write(ctx, next, rec.ModRevision); err != nil {
		return tok, err
	}
	return tok, nil
}

// readAsLeader reads the record in a transaction that etcd runs only while
// this instance holds its election key, so the refresh is never started on
// a leadership etcd has already given to another instance.
func (s *LeaderStore) readAsLeader(ctx context.Context) (Record, error) {
	var resp *clientv3.TxnResponse
	err := s.c.retry(ctx, func(ctx context.Context) (err error) {
		resp, err = s.c.Client.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(s.key), "=", s.rev)).
			Then(clientv3.OpGet(s.c.TokenKey())).
			Commit()
		return err
	})
	if err != nil {
		return Record{}, fmt.Errorf("read token record from etcd: %w", err)
	}
	if !resp.Succeeded || !s.Leading() {
		return Record{}, ErrNotLeader
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return Record{}, errors.New("etcd holds no token record: run `token-refresh-sender login` with --etcd-endpoints")
	}
	rec, err := s.c.Codec.Decode(s.c.TokenKey(), kvs[0].Value)
	if err != nil {
		return Record{}, err
	}
	rec.ModRevision = kvs[0].ModRevision
	return rec, nil
}

// write stores rec if this instance still leads and the record's mod
// revision is still modRev (0: no record yet).
func (s *LeaderStore) write(ctx context.Context, rec Record, modRev int64) error {
	val, err := s.c.Codec.Encode(s.c.TokenKey(), rec)
	if err != nil {
		return err
	}
	var resp *clientv3.TxnResponse
	ambiguous := false // an earlier attempt may have been applied
	err = s.c.retry(ctx, func(ctx context.Context) (err error) {
		resp, err = s.c.Client.Txn(ctx).
			If(
				clientv3.Compare(clientv3.CreateRevision(s.key), "=", s.rev),
				clientv3.Compare(clientv3.ModRevision(s.c.TokenKey()), "=", modRev),
			).
			Then(clientv3.OpPut(s.c.TokenKey(), string(val))).
			Else(clientv3.OpGet(s.key), clientv3.OpGet(s.c.TokenKey())).
			Commit()
		if err != nil {
			ambiguous = true
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("write token record to etcd: %w", err)
	}
	if resp.Succeeded {
		return nil
	}
	if appliedAfterAll(ambiguous, resp.Responses[1].GetResponseRange().Kvs, val) {
		return nil
	}
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) == 0 || kvs[0].CreateRevision != s.rev {
		return ErrNotLeader
	}
	return ErrRecordChanged
}

// appliedAfterAll reports whether a refused write finds its own value in
// place: an earlier attempt that reported an error (ambiguous: etcd may
// have applied it) was applied after all. Sealed values carry a random
// nonce, so an equal value is this very write.
func appliedAfterAll(ambiguous bool, kvs []*mvccpb.KeyValue, val []byte) bool {
	return ambiguous && len(kvs) > 0 && bytes.Equal(kvs[0].Value, val)
}
