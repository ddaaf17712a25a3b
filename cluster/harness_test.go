//go:build !noetcd

// The tests in this file and its siblings with the same build constraint
// need a real etcd (see etcdtest); `go test -tags noetcd ./cluster` runs
// only the ones that do not (codec, key file, configuration).

package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/cluster/etcdtest"
	"github.com/schwabtools/token-refresh-sender/internal/testkit"
)

// waitLimit is a safety net against a hang, not a timing assertion.
const waitLimit = 60 * time.Second

const testTTL = 2 * time.Second

// fakeRefresher stands in for Schwab's token endpoint: it counts requests
// and answers each with a new access token, keeping the refresh token.
type fakeRefresher struct {
	calls atomic.Int64
	// callers records which node made each call.
	mu      sync.Mutex
	callers []string
}

func (f *fakeRefresher) refresh(node string, cur tokensender.Token) (tokensender.Token, error) {
	n := f.calls.Add(1)
	f.mu.Lock()
	f.callers = append(f.callers, node)
	f.mu.Unlock()
	return tokensender.Token{
		AccessToken:          fmt.Sprintf("access-%04d-%s", n, strings.Repeat("a", 24)),
		RefreshToken:         cur.RefreshToken,
		TokenType:            "Bearer",
		Scope:                "api",
		ExpiresIn:            1800,
		ExpiresAt:            time.Unix(1_900_000_000+n*1800, 0),
		RefreshTokenIssuedAt: cur.RefreshTokenIssuedAt,
	}, nil
}

func (f *fakeRefresher) Callers() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.callers...)
}

// world is a test's etcd plus the shared refresher and cycle trigger.
type world struct {
	t       *testing.T
	etcd    *etcdtest.Cluster
	prefix  string
	codec   Codec
	refresh *fakeRefresher
	// tick starts one refresh cycle on whichever instance leads.
	tick chan struct{}
	// cycled receives the result of each cycle.
	cycled chan cycleResult
}

type cycleResult struct {
	node string
	tok  tokensender.Token
	err  error
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ec := etcdtest.Start(t, 3)
	return &world{t: t, etcd: ec, prefix: "/trs-test/" + strings.ReplaceAll(t.Name(), "/", "_") + "/",
		refresh: &fakeRefresher{}, tick: make(chan struct{}), cycled: make(chan cycleResult, 16)}
}

// instance is one in-process daemon of the cluster.
type instance struct {
	name   string
	c      *Cluster
	node   *Node
	log    *testkit.Buffer
	proxy  *proxy // nil unless cut-able
	cancel context.CancelFunc
	done   chan struct{}

	beats atomic.Int64 // heartbeats so far

	mu      sync.Mutex
	local   *tokensender.Token // the "local token file"
	applied []Record
	ctxs    []context.Context // each Apply's ctx
	events  []Event
	notify  chan struct{}
}

type instanceOpts struct {
	local     *tokensender.Token
	viaProxy  bool
	endpoints []string
}

func (w *world) start(name string, o instanceOpts) *instance {
	w.t.Helper()
	in := &instance{name: name, log: &testkit.Buffer{}, local: o.local, done: make(chan struct{}), notify: make(chan struct{}, 1)}
	eps := w.etcd.Endpoints()
	if o.endpoints != nil {
		eps = o.endpoints
	}
	if o.viaProxy {
		in.proxy = newProxy(w.t, eps)
		eps = in.proxy.endpoints
	}
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(in.log, testWriter{w.t, name}), nil))
	c, err := Open(Config{Endpoints: eps, Prefix: w.prefix, LeaseTTL: testTTL, NodeName: name, DialTimeout: time.Second}, logger)
	if err != nil {
		w.t.Fatal(err)
	}
	c.Codec = w.codec
	in.c = c
	in.node = &Node{
		Cluster: c,
		Seed: func(context.Context) (tokensender.Token, error) {
			in.mu.Lock()
			defer in.mu.Unlock()
			if in.local == nil {
				return tokensender.Token{}, os.ErrNotExist
			}
			return *in.local, nil
		},
		Apply: func(ctx context.Context, rec Record) error {
			in.mu.Lock()
			in.ctxs = append(in.ctxs, ctx)
			tok := rec.Token
			in.local = &tok
			in.applied = append(in.applied, rec)
			in.mu.Unlock()
			in.poke()
			return nil
		},
		Lead: func(ctx context.Context, s *LeaderStore) error {
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-w.tick:
					tok, err := s.Update(ctx, func(cur tokensender.Token) (tokensender.Token, error) {
						return w.refresh.refresh(name, cur)
					})
					w.cycled <- cycleResult{node: name, tok: tok, err: err}
				}
			}
		},
		Heartbeat:      func() { in.beats.Add(1); in.poke() },
		HeartbeatEvery: 50 * time.Millisecond,
		OnEvent: func(ev Event) {
			in.mu.Lock()
			in.events = append(in.events, ev)
			in.mu.Unlock()
			in.poke()
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	go func() {
		defer close(in.done)
		_ = in.node.Run(ctx)
	}()
	w.t.Cleanup(in.stop)
	return in
}

func (in *instance) poke() {
	select {
	case in.notify <- struct{}{}:
	default:
	}
}

// stop shuts the instance down cleanly (it resigns).
func (in *instance) stop() {
	in.cancel()
	<-in.done
	_ = in.c.Close()
}

// crash closes the etcd client under the running node without resigning
// or revoking: to etcd the instance just vanished, as after kill -9.
func (in *instance) crash() {
	_ = in.c.Client.Close()
	in.cancel()
	<-in.done
}

// waitFor polls cond each time the instance reports something, until it
// holds or the safety limit passes.
func (in *instance) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	limit := time.NewTimer(waitLimit)
	defer limit.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		in.mu.Lock()
		ok := cond()
		in.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-in.notify:
		case <-tick.C:
		case <-limit.C:
			t.Fatalf("%s: gave up waiting for %s; log:\n%s", in.name, what, in.log.String())
		}
	}
}

func (in *instance) waitApplied(t *testing.T, seq uint64) Record {
	t.Helper()
	var rec Record
	in.waitFor(t, fmt.Sprintf("record #%d applied", seq), func() bool {
		for _, r := range in.applied {
			if r.Seq == seq {
				rec = r
				return true
			}
		}
		return false
	})
	return rec
}

func (in *instance) countEvents(k EventKind) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := 0
	for _, ev := range in.events {
		if ev.Kind == k {
			n++
		}
	}
	return n
}

func (in *instance) waitEvent(t *testing.T, k EventKind, n int) {
	t.Helper()
	in.waitFor(t, fmt.Sprintf("%d %s event(s)", n, k), func() bool {
		c := 0
		for _, ev := range in.events {
			if ev.Kind == k {
				c++
			}
		}
		return c >= n
	})
}

// cycle triggers one refresh on the leader and returns its result.
func (w *world) cycle(t *testing.T) cycleResult {
	t.Helper()
	limit := time.NewTimer(waitLimit)
	defer limit.Stop()
	select {
	case w.tick <- struct{}{}:
	case <-limit.C:
		t.Fatal("no leader took the refresh cycle")
	}
	select {
	case r := <-w.cycled:
		return r
	case <-limit.C:
		t.Fatal("the refresh cycle did not finish")
	}
	return cycleResult{}
}

// leader waits until exactly one of ins leads and returns it.
func (w *world) leader(t *testing.T, ins ...*instance) *instance {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		var leading []*instance
		for _, in := range ins {
			in.node.mu.Lock()
			s := in.node.leadStore
			in.node.mu.Unlock()
			if s == nil || !s.Leading() {
				continue
			}
			// Leading as etcd sees it: its election key is there.
			resp, err := in.c.Client.Get(context.Background(), s.key)
			if err == nil && len(resp.Kvs) == 1 && resp.Kvs[0].CreateRevision == s.rev {
				leading = append(leading, in)
			}
		}
		if len(leading) == 1 {
			return leading[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no single leader")
	return nil
}

type testWriter struct {
	t    *testing.T
	name string
}

func (w testWriter) Write(p []byte) (int, error) {
	if testing.Verbose() {
		w.t.Log(w.name + ": " + strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// proxy forwards TCP to the etcd members and can be cut: a cut proxy
// drops every byte both ways and accepts no new data, as a network
// partition does (connections stay open; nothing gets through).
type proxy struct {
	endpoints []string
	cut       atomic.Bool
	mu        sync.Mutex
	conns     []net.Conn
}

func newProxy(t *testing.T, targets []string) *proxy {
	t.Helper()
	p := &proxy{}
	for _, target := range targets {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		addr := strings.TrimPrefix(target, "http://")
		p.endpoints = append(p.endpoints, "http://"+ln.Addr().String())
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go p.serve(c, addr)
			}
		}()
	}
	t.Cleanup(p.closeAll)
	return p
}

func (p *proxy) serve(c net.Conn, addr string) {
	up, err := net.Dial("tcp", addr)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, c, up)
	p.mu.Unlock()
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 && !p.cut.Load() {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		dst.Close()
		src.Close()
	}
	go pipe(up, c)
	go pipe(c, up)
}

func (p *proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// heal lets traffic through again; connections the cut starved are closed
// so the client dials afresh.
func (p *proxy) heal() {
	p.closeAll()
	p.cut.Store(false)
}
