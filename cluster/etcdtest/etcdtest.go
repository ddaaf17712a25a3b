// Package etcdtest starts a real etcd cluster (the etcd binary, Debian's
// etcd-server package) on loopback for tests and benchmarks: one process
// per member, random ports below the ephemeral range, a data directory
// each. Members can be stopped and started again to act out failures.
//
// Tests skip when the etcd binary is missing, unless CI is set: in CI the
// binary must be there and a missing one fails the test.
package etcdtest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Binary is the etcd server looked up on PATH (Debian: /usr/bin/etcd).
const Binary = "etcd"

// readyLimit bounds the wait for a member to answer: a safety net against a
// hang, not a timing assertion.
const readyLimit = 30 * time.Second

// Cluster is a running etcd cluster.
type Cluster struct {
	dir     string
	bin     string
	host    string // the extra client address, or ""
	members []*member
}

type member struct {
	name    string
	client  string // http://127.0.0.1:port
	extra   string // http://<extra host>:port, or ""
	peer    string
	dataDir string
	logPath string
	initial string
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	started bool
}

// Start launches an n-member cluster for tb, waits until every member
// serves clients, and stops it when the test ends. It skips the test when
// the etcd binary is missing and the CI environment variable is not set.
func Start(tb testing.TB, n int) *Cluster {
	tb.Helper()
	return StartOn(tb, n, "")
}

// StartOn is Start with the members also serving clients on host ("":
// loopback only; else an address of this machine, such as one end of a
// veth pair that a network namespace reaches): EndpointsOn(host) are those
// URLs.
func StartOn(tb testing.TB, n int, host string) *Cluster {
	tb.Helper()
	bin, err := exec.LookPath(Binary)
	if err != nil {
		if os.Getenv("CI") == "" {
			tb.Skipf("etcd binary not found on PATH (apt-get install etcd-server); set CI=true to make this a failure")
		}
		tb.Fatalf("etcd binary not found on PATH, and CI is set: install etcd-server (%v)", err)
	}
	c, err := LaunchOn(tb.TempDir(), bin, n, host)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

// Launch starts an n-member cluster with its data under dir, running the
// etcd binary bin. Close stops it.
func Launch(dir, bin string, n int) (*Cluster, error) {
	return LaunchOn(dir, bin, n, "")
}

// LaunchOn is Launch with the members also serving clients on host ("":
// loopback only).
func LaunchOn(dir, bin string, n int, host string) (*Cluster, error) {
	c := &Cluster{dir: dir, bin: bin, host: host}
	ports, err := freePorts(2*n, host)
	if err != nil {
		return nil, err
	}
	var initial []string
	for i := range n {
		m := &member{
			name:    "m" + strconv.Itoa(i),
			client:  "http://127.0.0.1:" + strconv.Itoa(ports[2*i]),
			peer:    "http://127.0.0.1:" + strconv.Itoa(ports[2*i+1]),
			dataDir: filepath.Join(dir, "m"+strconv.Itoa(i)),
			logPath: filepath.Join(dir, "m"+strconv.Itoa(i)+".log"),
		}
		if host != "" {
			m.extra = "http://" + net.JoinHostPort(host, strconv.Itoa(ports[2*i]))
		}
		c.members = append(c.members, m)
		initial = append(initial, m.name+"="+m.peer)
	}
	for _, m := range c.members {
		m.initial = strings.Join(initial, ",")
		if err := c.start(m); err != nil {
			c.Close()
			return nil, err
		}
	}
	for i := range c.members {
		if err := c.WaitReady(i); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// Endpoints are the members' client URLs.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.client)
	}
	return eps
}

// EndpointsOn are the members' client URLs on the extra host given to
// StartOn or LaunchOn.
func (c *Cluster) EndpointsOn() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.extra)
	}
	return eps
}

// Endpoint is member i's client URL.
func (c *Cluster) Endpoint(i int) string { return c.members[i].client }

// Log is member i's log so far, for a failing test's message.
func (c *Cluster) Log(i int) string {
	b, _ := os.ReadFile(c.members[i].logPath)
	return string(b)
}

func (c *Cluster) start(m *member) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	state := "new"
	if m.started {
		state = "existing"
	}
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	// Short heartbeat and election timeouts: a lost member's successor is
	// elected in well under a second, below the shortest lease TTL the
	// tests use (etcd's minimum lease TTL follows from them: 1.5 x election).
	listen := m.client
	if m.extra != "" {
		listen += "," + m.extra
	}
	cmd := exec.Command(c.bin,
		"--name", m.name,
		"--data-dir", m.dataDir,
		"--listen-client-urls", listen,
		"--advertise-client-urls", m.client,
		"--listen-peer-urls", m.peer,
		"--initial-advertise-peer-urls", m.peer,
		"--initial-cluster", m.initial,
		"--initial-cluster-state", state,
		"--initial-cluster-token", "etcdtest",
		"--heartbeat-interval", "50",
		"--election-timeout", "500",
		"--snapshot-count", "10000",
	)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = dieWithParent()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start etcd member %s: %w", m.name, err)
	}
	m.started = true
	m.cmd = cmd
	exited := make(chan struct{})
	m.exited = exited
	go func() { _ = cmd.Wait(); close(exited) }()
	return nil
}

// WaitReady waits until member i accepts client connections and answers
// its health endpoint.
func (c *Cluster) WaitReady(i int) error {
	m := c.members[i]
	deadline := time.Now().Add(readyLimit)
	for time.Now().Before(deadline) {
		m.mu.Lock()
		exited := m.exited
		m.mu.Unlock()
		select {
		case <-exited:
			return fmt.Errorf("etcd member %s exited:\n%s", m.name, c.Log(i))
		default:
		}
		if healthy(m.client) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("etcd member %s not healthy after %s:\n%s", m.name, readyLimit, c.Log(i))
}

// healthy asks the member's /health endpoint (served on the client URL).
func healthy(url string) bool {
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "http://"), time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("GET /health HTTP/1.0\r\nHost: x\r\n\r\n")); err != nil {
		return false
	}
	buf := make([]byte, 512)
	n, _ := conn.Read(buf)
	for n < len(buf) {
		k, err := conn.Read(buf[n:])
		n += k
		if err != nil {
			break
		}
	}
	return strings.Contains(string(buf[:n]), `"health":"true"`)
}

// Stop kills member i (SIGKILL, as a crash) and waits until it is gone.
func (c *Cluster) Stop(i int) {
	m := c.members[i]
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Restart starts a stopped member i again with its old data and waits
// until it is healthy.
func (c *Cluster) Restart(i int) error {
	if err := c.start(c.members[i]); err != nil {
		return err
	}
	return c.WaitReady(i)
}

// RestartAll starts every stopped member again (a cluster that lost its
// quorum needs them all starting before any is healthy) and waits until
// all are healthy.
func (c *Cluster) RestartAll() error {
	for _, m := range c.members {
		if err := c.start(m); err != nil {
			return err
		}
	}
	for i := range c.members {
		if err := c.WaitReady(i); err != nil {
			return err
		}
	}
	return nil
}

// Close kills every member. Data directories go with the test's temp dir.
func (c *Cluster) Close() {
	for i := range c.members {
		c.Stop(i)
	}
}

// freePorts picks n distinct TCP ports on 127.0.0.1 (and on host, if
// given) that were free a moment ago, below Linux's ephemeral range (32768
// and up) so no outgoing connection takes them in the meantime.
func freePorts(n int, host string) ([]int, error) {
	seen := map[int]bool{}
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			return nil, errors.New("no free TCP ports between 20000 and 32000 on 127.0.0.1")
		}
		p := 20000 + rand.IntN(12000)
		if seen[p] {
			continue
		}
		seen[p] = true
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		ln.Close()
		if host != "" {
			ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
			if err != nil {
				continue
			}
			ln.Close()
		}
		ports = append(ports, p)
	}
	return ports, nil
}
