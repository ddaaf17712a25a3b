package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	tokensender "github.com/schwabtools/token-refresh-sender"
)

// maxLoginWrites bounds the retries of the login's write when the leader
// writes the record in between.
const maxLoginWrites = 5

// Login runs do (the browser login) while holding the cluster-wide login
// mutex, so two hosts never log in at the same time (the second login would
// invalidate the first's refresh token), then writes the new token as the
// record; every instance's watcher delivers it. A second login waits for
// the first to finish, saying who holds the lock.
func (c *Cluster) Login(ctx context.Context, do func(ctx context.Context) (tokensender.Token, error)) (Record, error) {
	gctx, cancel := context.WithTimeout(ctx, c.LeaseTTL)
	lease, err := c.Client.Grant(gctx, int64(c.ttlSeconds()))
	cancel()
	if err != nil {
		return Record{}, fmt.Errorf("login lock: grant etcd lease: %w", err)
	}
	sess, err := concurrency.NewSession(c.Client, concurrency.WithLease(lease.ID), concurrency.WithTTL(c.ttlSeconds()), concurrency.WithContext(ctx))
	if err != nil {
		return Record{}, fmt.Errorf("login lock: etcd session: %w", err)
	}
	defer func() {
		rctx, rcancel := context.WithTimeout(context.Background(), c.LeaseTTL)
		_, _ = c.Client.Revoke(rctx, sess.Lease())
		rcancel()
		sess.Orphan()
	}()
	mu := concurrency.NewMutex(sess, c.LoginLockPrefix())
	if err := mu.TryLock(ctx); errors.Is(err, concurrency.ErrLocked) {
		c.Logger.Info("Cluster: another login is in progress" + c.lockHolder(ctx) + "; waiting for it to finish")
		if err := abandonOnDone(ctx, func() error { return mu.Lock(ctx) }); err != nil {
			return Record{}, fmt.Errorf("login lock: %w", err)
		}
	} else if err != nil {
		return Record{}, fmt.Errorf("login lock: %w", err)
	}
	if _, err := c.Client.Put(ctx, mu.Key(), c.NodeName, clientv3.WithIgnoreLease()); err != nil {
		return Record{}, fmt.Errorf("login lock: %w", err)
	}

	tok, err := do(ctx)
	if err != nil {
		return Record{}, err
	}
	for range maxLoginWrites {
		if sessionDone(sess) {
			return Record{}, errors.New("login: lost the etcd session while logging in; the new token was not stored in etcd: run the login again")
		}
		prev, ok, err := c.ReadRecord(ctx)
		var modRev int64
		var seq uint64
		if err != nil && !errors.Is(err, ErrClearRecord) && !errors.Is(err, ErrSealedRecord) {
			return Record{}, err
		}
		if err != nil {
			// An unreadable old record is replaced: this login's token
			// is the newest there is.
			c.Logger.Warn("Cluster: " + err.Error() + "; the login replaces it")
			resp, gerr := c.Client.Get(ctx, c.TokenKey())
			if gerr != nil {
				return Record{}, fmt.Errorf("read token record from etcd: %w", gerr)
			}
			if len(resp.Kvs) > 0 {
				modRev = resp.Kvs[0].ModRevision
			}
		} else if ok {
			modRev, seq = prev.ModRevision, prev.Seq
		}
		rec := Record{Token: tok, Writer: c.NodeName, Reason: ReasonLogin, WrittenAt: c.now().Truncate(time.Second), Seq: seq + 1}
		val, err := c.Codec.Encode(c.TokenKey(), rec)
		if err != nil {
			return Record{}, err
		}
		if c.testHookLoginWrite != nil {
			c.testHookLoginWrite(val)
		}
		var resp *clientv3.TxnResponse
		ambiguous := false
		err = c.retry(ctx, func(ctx context.Context) (err error) {
			resp, err = c.Client.Txn(ctx).
				If(mu.IsOwner(), clientv3.Compare(clientv3.ModRevision(c.TokenKey()), "=", modRev)).
				Then(clientv3.OpPut(c.TokenKey(), string(val))).
				Else(clientv3.OpGet(mu.Key()), clientv3.OpGet(c.TokenKey())).
				Commit()
			ambiguous = ambiguous || err != nil
			return err
		})
		if err != nil {
			return Record{}, fmt.Errorf("write the login's token to etcd: %w", err)
		}
		if !resp.Succeeded {
			if kvs := resp.Responses[1].GetResponseRange().Kvs; appliedAfterAll(ambiguous, kvs, val) {
				resp.Succeeded = true // an attempt that reported an error was applied
				resp.Header.Revision = kvs[0].ModRevision
			} else if len(resp.Responses[0].GetResponseRange().Kvs) == 0 {
				return Record{}, errors.New("login: lost the cluster login lock while logging in (etcd unreachable for the lease TTL?); the new token was not stored in etcd: run the login again")
			}
		}
		if resp.Succeeded {
			rec.ModRevision = resp.Header.Revision
			c.Logger.Info(fmt.Sprintf("Cluster: the new login's token is stored in etcd (record #%d, revision %d); every instance delivers it now", rec.Seq, rec.ModRevision))
			return rec, nil
		}
		c.Logger.Info("Cluster: the token record changed while logging in; writing the login's token again")
	}
	return Record{}, fmt.Errorf("login: the token record kept changing under %d attempts to write the login's token; run the login again", maxLoginWrites)
}

// lockHolder names the node holding the login lock, for the waiting line.
func (c *Cluster) lockHolder(ctx context.Context) string {
	resp, err := c.Client.Get(ctx, c.LoginLockPrefix()+"/", clientv3.WithFirstCreate()...)
	if err != nil || len(resp.Kvs) == 0 || len(resp.Kvs[0].Value) == 0 {
		return ""
	}
	return " on " + string(resp.Kvs[0].Value)
}
