package main_test

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/schwabtools/token-refresh-sender/cluster/etcdtest"
	"github.com/schwabtools/token-refresh-sender/internal/testproc"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// clusterHost is one host of the cluster: its own directory, token file,
// log file and bot.
type clusterHost struct {
	name      string
	dir       string
	tokenFile string
	bot       *bot
	proc      *testproc.Proc
}

// clusterLeaseTTL is the session lease in the cluster tests (the issue's
// failover scenario: 3-second leases).
const clusterLeaseTTL = 3 * time.Second

// newClusterHosts makes n hosts sharing s's app config; host 0 gets the
// sandbox's token file (it seeds etcd), the others start without one.
func newClusterHosts(t *testing.T, s *sandbox, n int) []*clusterHost {
	t.Helper()
	var hosts []*clusterHost
	for i := range n {
		h := &clusterHost{name: fmt.Sprintf("node%d", i), dir: filepath.Join(s.dir, fmt.Sprintf("h%d", i))}
		if err := os.MkdirAll(h.dir, 0o700); err != nil {
			t.Fatal(err)
		}
		h.tokenFile = filepath.Join(h.dir, "schwab_tokens.json")
		if i == 0 {
			h.tokenFile = s.tokenFile
		}
		h.bot = startBot(t, filepath.Join(h.dir, "bot.sock"), "OK\n")
		hosts = append(hosts, h)
	}
	return hosts
}

// clusterKey writes a 32-byte record encryption key, mode 0600.
func clusterKey(t *testing.T, s *sandbox) string {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.dir, "etcd-record.key")
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (h *clusterHost) start(t *testing.T, s *sandbox, endpoints []string, keyFile string) {
	t.Helper()
	h.proc = start(t, []string{"SSL_CERT_FILE=" + s.certFile},
		"run", "--config", s.config, "--token-file", h.tokenFile,
		"--log-file", filepath.Join(h.dir, "token_refresh_sender.log"),
		"--socket", h.bot.path, "--interval", "2s",
		"--etcd-endpoints", strings.Join(endpoints, ","),
		"--etcd-lease-ttl", clusterLeaseTTL.String(),
		"--etcd-encryption-key-file", keyFile,
		"--node-name", h.name)
}

// distinct is the set of messages b received.
func distinct(b *bot) map[string]bool {
	out := map[string]bool{}
	for _, m := range b.received() {
		out[string(m)] = true
	}
	return out
}

var firstRecord = regexp.MustCompile(`Cluster: new token from etcd \(.*record #(\d+),`)

// firstSeq is the number of the first record h applied (a host that joins
// later starts from the record current then).
func (h *clusterHost) firstSeq(t *testing.T) int {
	t.Helper()
	for _, l := range h.proc.Output() {
		if m := firstRecord.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			return n
		}
	}
	t.Fatalf("%s applied no record:\n%s", h.name, h.proc.Text())
	return 0
}

// waitBots waits (safety limit, not a timing assertion) until every bot
// has received every record from the first its host applied up to record
// latest (distinct tokens), the last being its host's token file.
func waitBots(t *testing.T, hosts []*clusterHost, latest int) {
	t.Helper()
	deadline := time.Now().Add(testproc.WaitLimit)
	for {
		ok := true
		for _, h := range hosts {
			msgs := h.bot.received()
			doc, err := tokenfile.Load(h.tokenFile)
			if len(distinct(h.bot)) != latest-h.firstSeq(t)+1 || len(msgs) == 0 || err != nil ||
				string(msgs[len(msgs)-1]) != string(doc.Token().Message().Wire()) {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			for _, h := range hosts {
				t.Logf("%s: bot has %d distinct tokens\n%s", h.name, len(distinct(h.bot)), h.proc.Text())
			}
			t.Fatalf("bots did not all receive every record up to #%d", latest)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leaderIndex is the host whose log says it leads, or -1.
func leaderIndex(hosts []*clusterHost, skip int) int {
	for i, h := range hosts {
		if i != skip && h.proc.Count("is now the leader") > 0 {
			return i
		}
	}
	return -1
}

// Three instances against a real 3-member etcd: one leader refreshes
// (exactly one token request per cycle), every host's file and bot get
// every token; after kill -9 of the leader another instance leads within
// the lease TTL plus 2 s and the surviving bots keep receiving tokens.
func TestCluster_steadyStateAndLeaderKill(t *testing.T) {
	etcd := etcdtest.Start(t, 3)
	s := newSandbox(t)
	key := clusterKey(t, s)
	hosts := newClusterHosts(t, s, 3)

	// Host 0 seeds etcd from its token file and leads; the others join
	// without a token file and follow.
	hosts[0].start(t, s, etcd.Endpoints(), key)
	hosts[0].proc.WaitFor("Cluster: this instance (node0) is now the leader", 1)
	hosts[0].proc.WaitFor("seeded etcd with the local token file's token", 1)
	for _, h := range hosts[1:] {
		h.start(t, s, etcd.Endpoints(), key)
	}
	for _, h := range hosts[1:] {
		h.proc.WaitFor("Cluster: new token from etcd", 1)
	}

	// Steady state: three refresh cycles on the leader, between two
	// cycles (the next one is 2 s away).
	leader := hosts[0]
	leader.proc.WaitFor("Next refresh at", 3)
	refreshes := s.fake.Stats().Refreshes
	if refreshes != 3 {
		t.Errorf("fake Schwab saw %d refreshes after 3 cycles, want 3", refreshes)
	}
	waitBots(t, hosts, refreshes+1) // record #1 is the seed, then one per refresh
	for _, h := range hosts[1:] {
		if h.proc.Count("--- Refresh Cycle") != 0 {
			t.Errorf("%s ran a refresh cycle as a follower:\n%s", h.name, h.proc.Text())
		}
		if h.proc.Count("refresh by node0") == 0 {
			t.Errorf("%s does not say where its tokens came from:\n%s", h.name, h.proc.Text())
		}
	}
	// The record in etcd is sealed: etcd's data holds no token. (Checked
	// through the instances' files: all hold the leader's token.)
	lead, _ := tokenfile.Load(leader.tokenFile)
	for _, h := range hosts[1:] {
		doc, err := tokenfile.Load(h.tokenFile)
		if err != nil {
			t.Fatalf("%s: %v", h.name, err)
		}
		if doc.Token().AccessToken != lead.Token().AccessToken {
			t.Errorf("%s's token file differs from the leader's", h.name)
		}
		if fi, _ := os.Stat(h.tokenFile); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: token file mode %v, want 0600", h.name, fi.Mode().Perm())
		}
	}

	// kill -9 of the leader, right after a cycle.
	leader.proc.WaitFor("Next refresh at", 4)
	waitBots(t, hosts, s.fake.Stats().Refreshes+1)
	killedAt := time.Now()
	leader.proc.Signal(syscall.SIGKILL)
	leader.proc.Wait()
	beforeKill := s.fake.Stats().Refreshes
	next := -1
	deadline := time.Now().Add(testproc.WaitLimit)
	for next < 0 {
		next = leaderIndex(hosts, 0)
		if next < 0 && time.Now().After(deadline) {
			t.Fatalf("no instance took over:\n%s\n%s", hosts[1].proc.Text(), hosts[2].proc.Text())
		}
		time.Sleep(10 * time.Millisecond)
	}
	failover := time.Since(killedAt)
	t.Logf("failover after kill -9 of the leader: %v (lease TTL %v)", failover.Round(time.Millisecond), clusterLeaseTTL)
	if failover > clusterLeaseTTL+2*time.Second {
		t.Errorf("failover took %v, more than the lease TTL %v plus 2s", failover, clusterLeaseTTL)
	}

	// The new leader refreshes (at once, then every 2 s) and both
	// surviving bots receive every token.
	survivors := []*clusterHost{hosts[1], hosts[2]}
	hosts[next].proc.WaitFor("Next refresh at", 2)
	total := s.fake.Stats().Refreshes
	if total < beforeKill+2 {
		t.Errorf("fake Schwab saw %d refreshes after the new leader's 2 cycles, want at least %d", total, beforeKill+2)
	}
	waitBots(t, survivors, total+1)
	if got := len(distinct(hosts[0].bot)); got != beforeKill+1 {
		t.Errorf("the killed host's bot got %d distinct tokens, want %d", got, beforeKill+1)
	}

	for _, h := range survivors {
		h.proc.Signal(syscall.SIGTERM)
	}
	for _, h := range survivors {
		if code := h.proc.Wait(); code != 0 {
			t.Errorf("%s exited %d; stderr: %s", h.name, code, h.proc.Stderr())
		}
	}
	// Exactly one token request per refresh cycle, across every instance.
	cycles := 0
	for _, h := range hosts {
		cycles += h.proc.Count("--- Refresh Cycle")
	}
	if st := s.fake.Stats(); st.TokenRequests != cycles || st.Refreshes != cycles {
		t.Errorf("fake Schwab saw %d token requests (%d refreshes) for %d refresh cycles, want one each", st.TokenRequests, st.Refreshes, cycles)
	}
	for _, h := range hosts {
		s.assertNoSecrets(h.proc.Text(), h.proc.Stderr())
	}
}
