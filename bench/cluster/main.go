// Command cluster measures cluster mode on a real 3-member etcd (Debian's
// etcd-server binary) on loopback, with three in-process instances and a
// refresher that answers at once: how long a refreshed token takes to reach
// every instance's consumer (leader write to the last watcher's apply), and
// how long the cluster is without a leader when the leader crashes (its
// lease must run out) or shuts down (it resigns).
//
//	go run ./bench/cluster [-cycles 200] [-failovers 5] [-ttl 3s]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/cluster"
	"github.com/schwabtools/token-refresh-sender/cluster/etcdtest"
)

func main() {
	cycles := flag.Int("cycles", 200, "refresh cycles to time")
	failovers := flag.Int("failovers", 5, "failovers of each kind to time")
	ttl := flag.Duration("ttl", 3*time.Second, "session lease TTL")
	idle := flag.Duration("idle", 20*time.Second, "idle window for counting wake-ups with and without one connected instance (0: skip)")
	flag.Parse()
	if err := run(*cycles, *failovers, *ttl, *idle); err != nil {
		fmt.Fprintln(os.Stderr, "bench/cluster:", err)
		os.Exit(1)
	}
}

// bench is the shared state of one run.
type bench struct {
	etcd   *etcdtest.Cluster
	ttl    time.Duration
	tick   chan chan time.Time // a cycle: the leader answers with when it wrote
	leader chan string         // names each new leader as it starts leading
	seq    int

	current string // the instance leading now (under mu)

	mu      sync.Mutex
	applied map[string]map[string]time.Time // node -> access token -> applied at
	nodes   map[string]*node
}

type node struct {
	name   string
	c      *cluster.Cluster
	cancel context.CancelFunc
	done   chan struct{}
}

func run(cycles, failovers int, ttl, idle time.Duration) error {
	bin, err := exec.LookPath(etcdtest.Binary)
	if err != nil {
		return errors.New("etcd binary not found on PATH (apt-get install etcd-server)")
	}
	dir, err := os.MkdirTemp("", "bench-cluster")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ec, err := etcdtest.Launch(dir, bin, 3)
	if err != nil {
		return err
	}
	defer ec.Close()
	b := &bench{etcd: ec, ttl: ttl, tick: make(chan chan time.Time), leader: make(chan string, 16),
		applied: map[string]map[string]time.Time{}, nodes: map[string]*node{}}
	defer b.stopAll()
	for _, name := range []string{"a", "b", "c"} {
		if err := b.start(name); err != nil {
			return err
		}
	}
	<-b.leader
	if err := b.waitAll("access-seed"); err != nil {
		return err
	}

	// Delivery latency.
	var lat []time.Duration
	for range cycles {
		d, err := b.cycle()
		if err != nil {
			return err
		}
		lat = append(lat, d)
	}
	fmt.Printf("etcd %s, 3 members on loopback; 3 instances; lease TTL %s\n", etcdVersion(bin), ttl)
	fmt.Printf("leader write -> every watcher applied, %d cycles: %s\n", cycles, summary(lat))

	// Failover.
	for _, kind := range []string{"crash", "stop"} {
		var took []time.Duration
		for range failovers {
			d, err := b.failover(kind)
			if err != nil {
				return err
			}
			took = append(took, d)
		}
		what := map[string]string{"crash": "leader crashes (no resign; the lease runs out)", "stop": "leader shuts down (resigns)"}[kind]
		fmt.Printf("failover, %s, %d times: %s\n", what, failovers, summary(took))
	}
	if idle > 0 {
		return b.idleCost(idle)
	}
	return nil
}

// idleCost compares this process idle without any instance and with one
// instance connected (leading alone, the default 10s TTL): wake-ups
// (voluntary context switches, all threads). Memory is left to bench/perf
// on the real binary: in this process the earlier instances' freed heap
// hides the figure.
func (b *bench) idleCost(idle time.Duration) error {
	b.stopAll()
	b.mu.Lock()
	b.nodes = map[string]*node{}
	b.mu.Unlock()
	w0, err := idleWindow(idle)
	if err != nil {
		return err
	}
	b.ttl = cluster.DefaultLeaseTTL
	for len(b.leader) > 0 {
		<-b.leader
	}
	if err := b.start("solo"); err != nil {
		return err
	}
	<-b.leader
	if _, err := b.cycle(); err != nil {
		return err
	}
	w1, err := idleWindow(idle)
	if err != nil {
		return err
	}
	fmt.Printf("wake-ups of this process in %s idle: %d with no instance, %d with one connected instance (lease TTL %s)\n",
		idle, w0, w1, cluster.DefaultLeaseTTL)
	return nil
}

func idleWindow(d time.Duration) (wakeups int, err error) {
	before, err := switches()
	if err != nil {
		return 0, err
	}
	time.Sleep(d)
	after, err := switches()
	return after - before, err
}

// switches sums voluntary_ctxt_switches over this process's threads.
func switches() (int, error) {
	tasks, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil {
		return 0, err
	}
	total := 0
	for _, t := range tasks {
		n, err := statusField(t, "voluntary_ctxt_switches")
		if err != nil {
			continue // the thread exited
		}
		total += n
	}
	return total, nil
}

// statusField reads one numeric field of a /proc status file.
func statusField(path, name string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			return strconv.Atoi(f[0])
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, name)
}

func etcdVersion(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "?"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimPrefix(line, "etcd Version: ")
}

func summary(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	r := func(d time.Duration) string { return d.Round(10 * time.Microsecond).String() }
	return fmt.Sprintf("median %s, p95 %s, max %s", r(at(0.5)), r(at(0.95)), r(s[len(s)-1]))
}

func (b *bench) start(name string) error {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := cluster.Open(cluster.Config{Endpoints: b.etcd.Endpoints(), Prefix: "/bench/", LeaseTTL: b.ttl, NodeName: name}, logger)
	if err != nil {
		return err
	}
	seed := tokensender.Token{AccessToken: "access-seed", RefreshToken: "refresh-seed", ExpiresIn: 1800, ExpiresAt: time.Now().Add(30 * time.Minute)}
	n := &cluster.Node{
		Cluster: c,
		Seed:    func(context.Context) (tokensender.Token, error) { return seed, nil },
		Apply: func(_ context.Context, rec cluster.Record) error {
			now := time.Now()
			b.mu.Lock()
			if b.applied[name] == nil {
				b.applied[name] = map[string]time.Time{}
			}
			b.applied[name][rec.Token.AccessToken] = now
			b.mu.Unlock()
			return nil
		},
		Lead: func(ctx context.Context, s *cluster.LeaderStore) error {
			b.mu.Lock()
			b.current = name
			b.mu.Unlock()
			b.leader <- name
			for {
				select {
				case <-ctx.Done():
					return nil
				case reply := <-b.tick:
					var wrote time.Time
					_, err := s.Update(ctx, func(cur tokensender.Token) (tokensender.Token, error) {
						b.seq++
						cur.AccessToken = fmt.Sprintf("access-%d", b.seq)
						wrote = time.Now()
						return cur, nil
					})
					if err != nil {
						wrote = time.Time{}
					}
					reply <- wrote
				}
			}
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	nd := &node{name: name, c: c, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(nd.done); _ = n.Run(ctx) }()
	b.mu.Lock()
	b.nodes[name] = nd
	b.mu.Unlock()
	return nil
}

func (b *bench) stopAll() {
	b.mu.Lock()
	nodes := b.nodes
	b.mu.Unlock()
	for _, n := range nodes {
		n.cancel()
		<-n.done
		_ = n.c.Close()
	}
}

// cycle has the leader write a new token and returns the time from the
// write to the last watcher's apply.
func (b *bench) cycle() (time.Duration, error) {
	reply := make(chan time.Time)
	select {
	case b.tick <- reply:
	case <-time.After(time.Minute):
		return 0, errors.New("no leader took the cycle")
	}
	wrote := <-reply
	if wrote.IsZero() {
		return 0, errors.New("the leader's write failed")
	}
	tok := fmt.Sprintf("access-%d", b.seq)
	if err := b.waitAll(tok); err != nil {
		return 0, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var last time.Time
	for name := range b.nodes {
		if at := b.applied[name][tok]; at.After(last) {
			last = at
		}
	}
	return last.Sub(wrote), nil
}

// waitAll waits until every running instance applied tok.
func (b *bench) waitAll(tok string) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		b.mu.Lock()
		all := true
		for name := range b.nodes {
			if _, ok := b.applied[name][tok]; !ok {
				all = false
			}
		}
		b.mu.Unlock()
		if all {
			return nil
		}
		time.Sleep(200 * time.Microsecond)
	}
	return fmt.Errorf("token %s did not reach every instance", tok)
}

// failover removes the current leader (kind "crash": its client closes
// without resigning or revoking; "stop": it shuts down cleanly), measures
// the time until another instance leads, and starts the removed one again.
func (b *bench) failover(kind string) (time.Duration, error) {
	// A cycle makes sure a leader is in place; then forget past news.
	if _, err := b.cycle(); err != nil {
		return 0, err
	}
	for len(b.leader) > 0 {
		<-b.leader
	}
	b.mu.Lock()
	current := b.current
	b.mu.Unlock()
	b.mu.Lock()
	n := b.nodes[current]
	delete(b.nodes, current)
	b.mu.Unlock()
	began := time.Now()
	if kind == "crash" {
		_ = n.c.Client.Close()
		n.cancel()
	} else {
		n.cancel()
	}
	var next string
	select {
	case next = <-b.leader:
	case <-time.After(time.Minute):
		return 0, errors.New("no new leader within a minute")
	}
	took := time.Since(began)
	<-n.done
	_ = n.c.Close()
	if next == current {
		return 0, errors.New("the removed leader led again")
	}
	if err := b.start(current); err != nil {
		return 0, err
	}
	return took, nil
}
