//go:build cluster

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/alert"
	"github.com/schwabtools/token-refresh-sender/cluster"
	"github.com/schwabtools/token-refresh-sender/metrics"
	"github.com/schwabtools/token-refresh-sender/systemd"
)

// (Build tag cluster: CI runs these with -tags cluster -run ^TestClusterBuild_.)
//
// The cluster's loss of etcd (and its return) reaches the alert hooks;
// other cluster events do not, and no token does.
func TestClusterBuild_observersRouteClusterEventsToTheHooks(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	out := filepath.Join(t.TempDir(), "events")
	hooks := &alert.Notifier{Exec: `printf '%s|%s\n' "$TOKEN_SENDER_EVENT" "$TOKEN_SENDER_MESSAGE" >> ` + out, Logger: log}
	o := &observers{log: log, hooks: hooks, systemd: systemd.New(log)}
	since := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	held := cluster.Record{Token: tokensender.Token{AccessToken: "secret-access-token", RefreshToken: "secret-refresh-token", ExpiresAt: since.Add(30 * time.Minute)}}
	for _, ev := range []cluster.Event{
		{Kind: cluster.EventLeading, Node: "vps1"},
		{Kind: cluster.EventApplied, Node: "vps1", Record: held},
		{Kind: cluster.EventUnavailable, Node: "vps1", Since: since, Record: held, Err: errors.New("context deadline exceeded")},
		{Kind: cluster.EventAvailable, Node: "vps1", Since: since},
		{Kind: cluster.EventDeposed, Node: "vps1"},
	} {
		o.clusterEvent(ev)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hooks.Close(ctx); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 {
		t.Fatalf("hooks ran %d times, want 2 (unavailable, available):\n%s", len(lines), data)
	}
	// Hooks run in the background: their order is not guaranteed.
	got := strings.Join(lines, "\n")
	for _, want := range []string{
		"cluster_unavailable|Cluster unavailable on vps1: no contact with etcd since 2026-12-02T09:00:00Z; no instance refreshes the token until etcd is back; the local bots keep the last token, valid until 2026-12-02T09:30:00Z",
		"cluster_available|Cluster on vps1: etcd is reachable again (unavailable since 2026-12-02T09:00:00Z)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("hooks did not get %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "secret-") {
		t.Errorf("a hook got a token:\n%s", got)
	}
}

// The cluster gauges follow contact with etcd and leadership.
func TestClusterBuild_gauges(t *testing.T) {
	m := metrics.New(nil)
	g := newClusterGauges(m)
	check := func(step string, available, leader float64) {
		t.Helper()
		var b strings.Builder
		m.WritePrometheus(&b)
		for name, v := range map[string]float64{"token_sender_cluster_available": available, "token_sender_cluster_leader": leader} {
			if want := fmt.Sprintf("\n%s %v\n", name, v); !strings.Contains(b.String(), want) ||
				!strings.Contains(b.String(), "\n# TYPE "+name+" gauge\n") {
				t.Errorf("%s: /metrics lacks %q with its TYPE line:\n%s", step, strings.TrimSpace(want), b.String())
			}
		}
	}
	check("start", 1, 0)
	g.observe(cluster.Event{Kind: cluster.EventLeading})
	check("leading", 1, 1)
	g.observe(cluster.Event{Kind: cluster.EventUnavailable})
	check("unavailable", 0, 1)
	g.observe(cluster.Event{Kind: cluster.EventDeposed})
	check("deposed", 0, 0)
	g.observe(cluster.Event{Kind: cluster.EventAvailable})
	check("available", 1, 0)
	g.observe(cluster.Event{Kind: cluster.EventApplied})
	check("applied", 1, 0)
	var none *clusterGauges
	none.observe(cluster.Event{Kind: cluster.EventUnavailable}) // no --metrics-addr: no panic
}
