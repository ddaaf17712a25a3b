package cluster

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/schwabtools/token-refresh-sender/internal/testkit"
)

func TestTransient(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{rpctypes.ErrLeaderChanged, true},
		{rpctypes.ErrNoLeader, true},
		{rpctypes.ErrTimeout, true},
		{fmt.Errorf("wrapped: %w", rpctypes.ErrLeaderChanged), true},
		{rpctypes.ErrGRPCLeaderChanged, true},
		{status.Error(codes.Unavailable, "connection refused"), true},
		{rpctypes.ErrPermissionDenied, false},
		{rpctypes.ErrCompacted, false},
		{status.Error(codes.PermissionDenied, "no"), false},
		{context.DeadlineExceeded, false},
		{errors.New("plain"), false},
	} {
		if got := transient(tc.err); got != tc.want {
			t.Errorf("transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// etcd's "unavailable" answers during a raft election are retried; other
// errors are not; retrying stops at retryLimit.
func TestCluster_Retry(t *testing.T) {
	c := &Cluster{LeaseTTL: 2 * time.Second}
	calls := 0
	err := c.retry(context.Background(), func(ctx context.Context) error {
		calls++
		if _, ok := ctx.Deadline(); !ok {
			t.Fatal("attempt without a deadline")
		}
		if calls < 3 {
			return rpctypes.ErrLeaderChanged
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("retry: %v after %d calls", err, calls)
	}

	calls = 0
	denied := rpctypes.ErrPermissionDenied
	if err := c.retry(context.Background(), func(context.Context) error { calls++; return denied }); err != denied || calls != 1 {
		t.Fatalf("a permanent error: %v after %d calls", err, calls)
	}

	clock := testkit.NewClock(time.Unix(1_800_000_000, 0))
	c.Now = clock.Now
	calls = 0
	err = c.retry(context.Background(), func(context.Context) error {
		calls++
		clock.Advance(3 * time.Second)
		return rpctypes.ErrTimeout
	})
	if !errors.Is(err, rpctypes.ErrTimeout) || calls != 2 {
		t.Fatalf("past retryLimit: %v after %d calls", err, calls)
	}

	ctx, cancel := context.WithCancel(context.Background())
	calls = 0
	err = c.retry(ctx, func(context.Context) error {
		calls++
		cancel()
		return rpctypes.ErrNoLeader
	})
	if !errors.Is(err, rpctypes.ErrNoLeader) || calls != 1 {
		t.Fatalf("cancelled: %v after %d calls", err, calls)
	}
}

func TestAppliedAfterAll(t *testing.T) {
	val := []byte("value")
	mine := []*mvccpb.KeyValue{{Value: []byte("value")}}
	other := []*mvccpb.KeyValue{{Value: []byte("other")}}
	for _, tc := range []struct {
		name      string
		ambiguous bool
		kvs       []*mvccpb.KeyValue
		want      bool
	}{
		{"ours after an error", true, mine, true},
		{"ours without an error", false, mine, false}, // a clean refusal is a refusal
		{"another value", true, other, false},
		{"no key", true, nil, false},
	} {
		if got := appliedAfterAll(tc.ambiguous, tc.kvs, val); got != tc.want {
			t.Errorf("%s: %v", tc.name, got)
		}
	}
}
