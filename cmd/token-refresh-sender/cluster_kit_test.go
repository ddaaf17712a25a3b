package main_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/schwabtools/token-refresh-sender/cluster/etcdtest"
)

// clusterTokenLifetime is the access token's lifetime in the failover
// scenarios (the issue's: 20-second tokens with 3-second leases).
const clusterTokenLifetime = 20 * time.Second

// survivorInterval is the refresh interval of the instances that take
// over from a killed leader: longer than a failover, so the record they
// take over is not due yet.
const survivorInterval = 6 * time.Second

// newClusterSandbox is newSandbox with a fake Schwab whose access tokens
// live lifetime.
func newClusterSandbox(t *testing.T, lifetime time.Duration) *sandbox {
	t.Helper()
	return newSandboxLifetime(t, lifetime)
}

// receipt is one token a bot received, and when.
type receipt struct {
	at        time.Time
	expiresAt time.Time
}

// receipts are the tokens a bot received, in order.
type receipts struct {
	mu   sync.Mutex
	list []receipt
}

func (r *receipts) all() []receipt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]receipt(nil), r.list...)
}

// startTimedBot is a bot (answering OK) that also notes when each token
// arrived and when it expires (the message's expires_at).
func startTimedBot(t *testing.T, path string) (*bot, *receipts) {
	t.Helper()
	r := &receipts{}
	b := listenBotFunc(t, "unix", path, "OK\n", func(data []byte, at time.Time) {
		var msg struct {
			ExpiresAt int64 `json:"expires_at"`
		}
		if json.Unmarshal(data, &msg) == nil {
			r.mu.Lock()
			r.list = append(r.list, receipt{at: at, expiresAt: time.Unix(msg.ExpiresAt, 0)})
			r.mu.Unlock()
		}
	})
	return b, r
}

// availability is the share of the time from the bot's first token to end
// during which the token it held last was unexpired, and the tightest
// margin: how long before expiry a held token was replaced (or end came).
func availability(rs []receipt, end time.Time) (float64, time.Duration) {
	if len(rs) == 0 {
		return 0, 0
	}
	var expired time.Duration
	margin := time.Duration(1<<63 - 1)
	for i, r := range rs {
		until := end
		if i+1 < len(rs) {
			until = rs[i+1].at
		}
		if from := later(r.at, r.expiresAt); until.After(from) {
			expired += until.Sub(from)
		}
		margin = min(margin, r.expiresAt.Sub(until))
	}
	return 1 - float64(expired)/float64(end.Sub(rs[0].at)), margin
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// availability of h's bot up to end (see availability).
func (h *clusterHost) availability(t *testing.T, end time.Time) (float64, time.Duration) {
	t.Helper()
	rs := h.receipts.all()
	if len(rs) == 0 {
		t.Fatalf("%s's bot received no token", h.name)
	}
	return availability(rs, end)
}

// availability's arithmetic, on hand-made receipts.
func TestCluster_availabilityArithmetic(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	for _, tc := range []struct {
		name       string
		rs         []receipt
		end        time.Time
		want       float64
		wantMargin time.Duration
	}{
		{"always valid", []receipt{{at(0), at(20)}, {at(6), at(26)}, {at(12), at(32)}}, at(18), 1, 14 * time.Second},
		{"gap of 2 s in 20", []receipt{{at(0), at(8)}, {at(10), at(30)}}, at(20), 0.9, -2 * time.Second},
		{"expired at the end", []receipt{{at(0), at(15)}}, at(20), 0.75, -5 * time.Second},
		{"arrived already expired", []receipt{{at(0), at(20)}, {at(10), at(5)}}, at(20), 0.5, -15 * time.Second},
	} {
		got, margin := availability(tc.rs, tc.end)
		if got < tc.want-1e-9 || got > tc.want+1e-9 || margin != tc.wantMargin {
			t.Errorf("%s: availability = %v, margin %v; want %v, %v", tc.name, got, margin, tc.want, tc.wantMargin)
		}
	}
}

// raftLeader is the index of the etcd member that leads raft now.
func raftLeader(t *testing.T, etcd *etcdtest.Cluster) int {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	for i, ep := range etcd.Endpoints() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := cli.Status(ctx, ep)
		cancel()
		if err != nil {
			t.Fatalf("etcd member %d status: %v", i, err)
		}
		if st.Leader == st.Header.MemberId {
			return i
		}
	}
	t.Fatal("no etcd member leads raft")
	return -1
}
