package main_test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
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
	receipts  *receipts
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
		h.bot, h.receipts = startTimedBot(t, filepath.Join(h.dir, "bot.sock"))
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

func (h *clusterHost) start(t *testing.T, s *sandbox, endpoints []string, keyFile string, extra ...string) {
	t.Helper()
	h.startIn(t, nil, s.config, s.certFile, endpoints, keyFile, extra...)
}

// startIn starts the host's instance behind the command prefix (such as
// ip netns exec NAME), with the app config and the CA file given.
func (h *clusterHost) startIn(t *testing.T, prefix []string, config, certFile string, endpoints []string, keyFile string, extra ...string) {
	t.Helper()
	cmd := append(append([]string{}, prefix...), binary)
	h.proc = testproc.Start(t, "token-refresh-sender", []string{"SSL_CERT_FILE=" + certFile}, cmd[0],
		append(append(cmd[1:], "run", "--config", config, "--token-file", h.tokenFile,
			"--log-file", filepath.Join(h.dir, "token_refresh_sender.log"),
			"--socket", h.bot.path, "--interval", "2s",
			"--etcd-endpoints", strings.Join(endpoints, ","),
			"--etcd-lease-ttl", clusterLeaseTTL.String(),
			"--etcd-encryption-key-file", keyFile,
			"--node-name", h.name), extra...)...)
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

// startCluster starts the hosts: host 0 seeds etcd from its token file
// and leads; the others join without a token file and follow.
func startCluster(t *testing.T, s *sandbox, hosts []*clusterHost, endpoints []string, key string) {
	t.Helper()
	hosts[0].start(t, s, endpoints, key)
	hosts[0].proc.WaitFor("Cluster: this instance (node0) is now the leader", 1)
	hosts[0].proc.WaitFor("seeded etcd with the local token file's token", 1)
	for _, h := range hosts[1:] {
		h.start(t, s, endpoints, key)
	}
	for _, h := range hosts[1:] {
		h.proc.WaitFor("Cluster: new token from etcd", 1)
	}
}

// Three instances against a real 3-member etcd, with 20-second tokens and
// 3-second leases: one leader refreshes (exactly one token request per
// cycle) and every host's file and bot get every token; SIGUSR1 on a
// follower only names the leader; one etcd member (raft's leader) is
// killed and nothing is interrupted; after kill -9 of the leader another
// instance leads within the lease TTL plus 2 s, continues the record's
// schedule (no refresh at takeover: the token is not due), and the bots on
// the surviving hosts hold an unexpired token 100.00% of the time.
//
// The first leader refreshes every 2 s (a quick steady state), the others
// every 6 s: the record they take over is then not due yet, so a refresh at
// takeover would be an extra one.
func TestCluster_steadyStateMemberLossAndLeaderKill(t *testing.T) {
	etcd := etcdtest.Start(t, 3)
	s := newClusterSandbox(t, clusterTokenLifetime)
	key := clusterKey(t, s)
	hosts := newClusterHosts(t, s, 3)
	hosts[0].start(t, s, etcd.Endpoints(), key)
	hosts[0].proc.WaitFor("Cluster: this instance (node0) is now the leader", 1)
	hosts[0].proc.WaitFor("seeded etcd with the local token file's token", 1)
	for _, h := range hosts[1:] {
		h.start(t, s, etcd.Endpoints(), key, "--interval", survivorInterval.String())
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

	// status with the cluster flags: the leader, the record, each node.
	statusArgs := []string{"status", "--json", "--config", s.config, "--token-file", hosts[1].tokenFile,
		"--socket", hosts[1].bot.path, "--etcd-endpoints", strings.Join(etcd.Endpoints(), ","), "--etcd-encryption-key-file", key}
	out, errOut, code := runToEnd(t, nil, statusArgs...)
	var st struct {
		State   string `json:"state"`
		Cluster struct {
			Leader string `json:"leader"`
			Record *struct {
				Seq                  int    `json:"seq"`
				Writer               string `json:"writer"`
				AccessTokenExpiresAt string `json:"access_token_expires_at"`
			} `json:"record"`
			Nodes []struct {
				Name string `json:"name"`
				Seq  int    `json:"seq"`
			} `json:"nodes"`
		} `json:"cluster"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 {
		t.Fatalf("status --json: exit %d, %v\n%s\n%s", code, err, out, errOut)
	}
	if st.Cluster.Leader != "node0" || st.Cluster.Record == nil || st.Cluster.Record.Writer != "node0" ||
		st.Cluster.Record.AccessTokenExpiresAt == "" || len(st.Cluster.Nodes) != 3 {
		t.Errorf("status --json cluster part: %+v\n%s", st.Cluster, out)
	}
	text, _, code := runToEnd(t, nil, append([]string{"status"}, statusArgs[2:]...)...)
	if code != 0 || !strings.Contains(text, "Cluster leader:        node0") || !strings.Contains(text, "Cluster node node2:") {
		t.Errorf("status: exit %d\n%s", code, text)
	}
	t.Logf("status:\n%s", text)
	s.assertNoSecrets(out, text)

	// SIGUSR1 on a follower: one line naming the leader, no refresh.
	hosts[1].proc.Signal(syscall.SIGUSR1)
	hosts[1].proc.WaitFor("Refresh requested (SIGUSR1), but this instance (node1) follows and only the leader refreshes: the leader is node0; send SIGUSR1 there", 1)

	// One etcd member lost (raft's leader, the harshest): the cluster
	// goes on, every bot gets every token, nobody loses its session.
	lost := raftLeader(t, etcd)
	etcd.Stop(lost)
	t.Logf("killed etcd member %d (raft leader)", lost)
	cycles := leader.proc.Count("Next refresh at")
	leader.proc.WaitFor("Next refresh at", cycles+3)
	waitBots(t, hosts, s.fake.Stats().Refreshes+1)
	for _, h := range hosts {
		for _, bad := range []string{"Cluster unavailable", "lost the etcd session", "no longer the leader", "is now the leader"} {
			if n := h.proc.Count(bad); n != 0 && !(h == leader && bad == "is now the leader" && n == 1) {
				t.Errorf("%s logged %q after one etcd member was lost:\n%s", h.name, bad, h.proc.Text())
			}
		}
	}

	// kill -9 of the leader, right after a cycle.
	leader.proc.WaitFor("Next refresh at", leader.proc.Count("Next refresh at")+1)
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
	// The new leader continues the record's schedule: the token it took
	// over is not due (6 s interval), so no refresh at takeover.
	newLeader := hosts[next]
	newLeader.proc.WaitFor("Cluster: the token in etcd is valid until", 1)
	if got := s.fake.Stats().Refreshes; got != beforeKill {
		t.Errorf("fake Schwab saw %d refreshes at takeover, want %d (the token was not due)", got, beforeKill)
	}
	if n := newLeader.proc.Count("due for a refresh"); n != 0 {
		t.Errorf("%s found the record due at takeover:\n%s", newLeader.name, newLeader.proc.Text())
	}

	// It refreshes on the record's schedule; SIGUSR1 now reaches its
	// refresh loop; both surviving bots receive every token.
	survivors := []*clusterHost{hosts[1], hosts[2]}
	newLeader.proc.WaitFor("Next refresh at", 1)
	newLeader.proc.Signal(syscall.SIGUSR1)
	newLeader.proc.WaitFor("Refresh requested (SIGUSR1)", 1)
	newLeader.proc.WaitFor("Next refresh at", 2)
	total := s.fake.Stats().Refreshes
	if total != beforeKill+2 {
		t.Errorf("fake Schwab saw %d refreshes after the new leader's 2 cycles (the second on SIGUSR1), want %d", total, beforeKill+2)
	}
	waitBots(t, survivors, total+1)
	if got := len(distinct(hosts[0].bot)); got != beforeKill+1 {
		t.Errorf("the killed host's bot got %d distinct tokens, want %d", got, beforeKill+1)
	}
	// A leadership change prints one line, not the start banner again.
	for _, h := range survivors {
		if n := h.proc.Count("Token Refresh Sender Started"); n != 1 {
			t.Errorf("%s printed the start banner %d times, want once:\n%s", h.name, n, h.proc.Text())
		}
	}

	end := time.Now()
	for _, h := range survivors {
		h.proc.Signal(syscall.SIGTERM)
	}
	for _, h := range survivors {
		if code := h.proc.Wait(); code != 0 {
			t.Errorf("%s exited %d; stderr: %s", h.name, code, h.proc.Stderr())
		}
		if n := h.proc.Count("Token Refresh Sender Stopped"); n != 1 {
			t.Errorf("%s printed the stop banner %d times, want once", h.name, n)
		}
	}
	// Availability across the kill: the share of time each surviving bot
	// held an unexpired token, from its first token to the end.
	for _, h := range survivors {
		avail, margin := h.availability(t, end)
		t.Logf("%s: bot held an unexpired token %.2f%% of the time across the leader kill; tightest margin %v before expiry", h.name, 100*avail, margin.Round(time.Millisecond))
		if avail < 1 {
			t.Errorf("%s's bot held an unexpired token only %.4f%% of the time, want 100.00%%", h.name, 100*avail)
		}
	}
	// Exactly one token request per refresh cycle, across every instance.
	cycles = 0
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

// A login on a follower, with the cluster flags: it takes the login lock,
// writes the follower's token file as a login does, stores the token in
// etcd, and every host's bot receives it.
func TestCluster_loginOnFollowerReachesEveryBot(t *testing.T) {
	etcd := etcdtest.Start(t, 3)
	s := newSandbox(t)
	s.write("configs/schwab_app_config.yaml", "app_key: "+appKey+"\napp_secret: "+appSecret+
		"\ncallback_url: https://127.0.0.1:8182\ntoken_url: "+s.srv.TokenURL+"\nauthorize_url: "+s.srv.AuthorizeURL+"\n", 0o600)
	key := clusterKey(t, s)
	hosts := newClusterHosts(t, s, 3)
	startCluster(t, s, hosts, etcd.Endpoints(), key)
	follower := hosts[1]
	hosts[0].proc.WaitFor("Next refresh at", 1)

	out := clusterLogin(t, s, follower, "--etcd-endpoints", strings.Join(etcd.Endpoints(), ","), "--etcd-lease-ttl", clusterLeaseTTL.String(),
		"--etcd-encryption-key-file", key, "--node-name", "login-on-node1")
	stored := time.Now()
	if !strings.Contains(out, "the new login's token is stored in etcd") {
		t.Errorf("login did not store the token in etcd:\n%s", out)
	}
	if got := s.fake.Stats().Exchanges; got != 1 {
		t.Errorf("fake Schwab saw %d code exchanges, want 1", got)
	}
	loginTok := mustToken(t, follower.tokenFile)
	if !s.fake.ValidAccessToken(loginTok.AccessToken) {
		t.Fatal("the follower's token file does not hold the login's working token")
	}

	// Every bot receives a token carrying the login's refresh token (the
	// login's own, or the leader's refresh from it right after).
	waitLoginEverywhere(t, hosts, loginTok, stored)
	for _, h := range hosts {
		if h.proc.Count("login by login-on-node1") == 0 {
			t.Errorf("%s does not say the token came from the login:\n%s", h.name, h.proc.Text())
		}
	}

	// A login on another host without the cluster flags writes only that
	// host's token file; its daemon sees a login newer than the cluster's
	// and stores it in etcd, and every bot gets it.
	other := hosts[2]
	out2 := clusterLogin(t, s, other)
	if strings.Contains(out2, "etcd") {
		t.Errorf("a login without --etcd-endpoints spoke of etcd:\n%s", out2)
	}
	local := mustToken(t, other.tokenFile)
	if local.RefreshToken == loginTok.RefreshToken {
		t.Fatal("the second login did not write a new refresh token")
	}
	other.proc.WaitFor("made without --etcd-endpoints; storing it in etcd for every instance", 1)
	waitLoginEverywhere(t, hosts, local, time.Now())
	for _, h := range hosts {
		if h.proc.Count("login by node2") == 0 {
			t.Errorf("%s does not say the token came from node2's login:\n%s", h.name, h.proc.Text())
		}
	}

	// An older token put in a host's file (a restored backup) is not a
	// login: one WARNING, etcd keeps the cluster's token, and the next
	// record puts it back in the file.
	current := mustToken(t, other.tokenFile)
	stale := current
	stale.AccessToken, stale.RefreshToken = "I0.stale-access-token-from-a-backup@", "stale-refresh-token-from-a-backup@"
	stale.ExpiresAt = time.Now().Add(20 * time.Minute).Truncate(time.Second)
	stale.RefreshTokenIssuedAt = local.RefreshTokenIssuedAt.Add(-time.Hour)
	restored := hosts[1]
	// Right after a record was written to the file and delivered (the
	// next is 2 s away), so the watcher reads the stale file before a
	// record replaces it.
	recs := restored.proc.Count("Cluster: new token from etcd") + 1
	restored.proc.WaitFor("Cluster: new token from etcd", recs)
	restored.proc.WaitFor("Token successfully sent to trading bot", recs)
	if err := tokenfile.Write(restored.tokenFile, tokenfile.New(stale, time.Now())); err != nil {
		t.Fatal(err)
	}
	restored.proc.WaitFor("that did not come from etcd, but its login", 1)
	restored.proc.WaitFor("Token successfully sent to trading bot", recs+1) // the next record, written and delivered
	for _, h := range hosts {
		if got := mustToken(t, h.tokenFile); got.RefreshToken != current.RefreshToken {
			t.Errorf("%s's token file does not hold the cluster's refresh token after a stale token was put in %s", h.name, restored.name)
		}
		for _, m := range h.bot.received() {
			if strings.Contains(string(m), "stale-") {
				t.Errorf("%s's bot got the stale token", h.name)
			}
		}
	}
	for _, h := range hosts {
		s.assertNoSecrets(h.proc.Text(), h.proc.Stderr())
	}
	s.assertNoSecrets(out, out2)
}

// clusterLogin runs a manual login for h's token file with the extra flags
// (the cluster's, or none), plays the browser, and returns its output.
func clusterLogin(t *testing.T, s *sandbox, h *clusterHost, extra ...string) string {
	t.Helper()
	args := append([]string{"login", "--config", s.config, "--token-file", h.tokenFile,
		"--log-file", filepath.Join(h.dir, "login.log"), "--manual", "--no-browser", "--timeout", "1m"}, extra...)
	out, stderr := runManualLogin(t, s, args, func(authorizeURL string) string { return consent(t, s.srv, authorizeURL) })
	s.assertNoSecrets(out, stderr)
	return out
}

// waitLoginEverywhere waits until every host's bot has a token with
// login's refresh token, logging how long after since.
func waitLoginEverywhere(t *testing.T, hosts []*clusterHost, login tokensender.Token, since time.Time) {
	t.Helper()
	for _, h := range hosts {
		deadline := time.Now().Add(testproc.WaitLimit)
		for {
			got := false
			for _, m := range h.bot.received() {
				if strings.Contains(string(m), login.RefreshToken) {
					got = true
				}
			}
			if got {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s's bot never got the login's token:\n%s", h.name, h.proc.Text())
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("%s's bot has the login's token %v after the login stored it", h.name, time.Since(since).Round(time.Millisecond))
	}
}

// status with the cluster flags and etcd unreachable: one line, UNKNOWN,
// exit 3, in text and in JSON.
func TestCluster_statusEtcdUnreachable(t *testing.T) {
	s := newSandbox(t)
	for _, asJSON := range []bool{false, true} {
		args := s.args("status", "--socket", filepath.Join(s.dir, "bot.sock"), "--etcd-endpoints", "http://127.0.0.1:1")
		if asJSON {
			args = append(args, "--json")
		}
		out, errOut, code := runToEnd(t, nil, args...)
		if code != 3 || strings.Count(out, "\n") != 1 || !strings.Contains(out, "etcd at http://127.0.0.1:1 does not answer") {
			t.Errorf("json=%v: exit %d, want 3 and one line:\n%s\n%s", asJSON, code, out, errOut)
		}
		if asJSON && !json.Valid([]byte(out)) {
			t.Errorf("not JSON: %s", out)
		}
	}
}

// Cluster flags that cannot work: one line naming the flag, exit 2, and
// nothing started (the token file untouched).
func TestCluster_badFlagsAreUsageErrors(t *testing.T) {
	s := newSandbox(t)
	before := snap(t, s.tokenFile)
	badKey := s.write("loose.key", strings.Repeat("k", 32), 0o644)
	cases := []struct {
		name  string
		extra []string
		env   []string
		want  string
	}{
		{"not a URL", []string{"--etcd-endpoints", "ftp://127.0.0.1:2379"}, nil, "--etcd-endpoints"},
		{"short TTL", []string{"--etcd-endpoints", "http://127.0.0.1:2379", "--etcd-lease-ttl", "1s"}, nil, "--etcd-lease-ttl"},
		{"user without password", []string{"--etcd-endpoints", "http://127.0.0.1:2379", "--etcd-username", "u"}, []string{"TOKEN_SENDER_ETCD_PASSWORD="}, "TOKEN_SENDER_ETCD_PASSWORD"},
		{"cert without key", []string{"--etcd-endpoints", "http://127.0.0.1:2379", "--etcd-cert-file", "c.pem"}, nil, "--etcd-key-file"},
		{"key file readable by others", []string{"--etcd-endpoints", "http://127.0.0.1:2379", "--etcd-encryption-key-file", badKey}, nil, "loose.key"},
		{"refresh in cluster mode", []string{"--etcd-endpoints", "http://127.0.0.1:2379"}, nil, "only the leader refreshes"},
	}
	for _, tc := range cases {
		cmd := "run"
		if strings.HasPrefix(tc.name, "refresh") {
			cmd = "refresh"
		}
		args := s.args(cmd, append([]string{"--socket", filepath.Join(s.dir, "bot.sock")}, tc.extra...)...)
		_, errOut, code := runToEnd(t, tc.env, args...)
		if code != 2 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, want 2 and one line naming %s:\n%s", tc.name, code, tc.want, errOut)
		}
	}
	before.assertUnchanged(t)
}

// etcd lost everywhere: the instance says so once, the alert hooks get
// cluster_unavailable, nobody refreshes; when etcd is back, it says so and
// the hooks get cluster_available.
func TestCluster_etcdDownAlertsAndRecovers(t *testing.T) {
	etcd := etcdtest.Start(t, 3)
	s := newSandbox(t)
	key := clusterKey(t, s)
	hosts := newClusterHosts(t, s, 1)
	events := filepath.Join(s.dir, "events")
	h := hosts[0]
	h.start(t, s, etcd.Endpoints(), key, "--interval", "1h",
		"--notify-exec", `printf '%s\n' "$TOKEN_SENDER_EVENT" >> `+events)
	// The seeded token is fresh: the leader waits for its usual refresh
	// time (25 minutes away).
	h.proc.WaitFor("Cluster: the token in etcd is valid until", 1)
	refreshes := s.fake.Stats().Refreshes

	for i := range 3 {
		etcd.Stop(i)
	}
	h.proc.WaitFor("Cluster unavailable: no contact with etcd since", 1)
	if got := s.fake.Stats().Refreshes; got != refreshes {
		t.Errorf("fake Schwab saw %d refreshes while etcd was down, want none more than %d", got, refreshes)
	}
	if err := etcd.RestartAll(); err != nil {
		t.Fatal(err)
	}
	h.proc.WaitFor("etcd is reachable again", 1)
	h.proc.Signal(syscall.SIGTERM)
	if code := h.proc.Wait(); code != 0 {
		t.Errorf("exit %d; stderr: %s", code, h.proc.Stderr())
	}
	// The hooks ran in the background; the daemon waited for them at exit.
	data, err := os.ReadFile(events)
	if err != nil {
		t.Fatalf("no hook ran: %v\n%s", err, h.proc.Text())
	}
	if got := string(data); !strings.Contains(got, "cluster_unavailable\n") || !strings.Contains(got, "cluster_available\n") {
		t.Errorf("hook events:\n%s\nwant cluster_unavailable and cluster_available", got)
	}
	if n := h.proc.Count("Cluster unavailable:"); n != 1 {
		t.Errorf("said %d times that the cluster is unavailable, want once:\n%s", n, h.proc.Text())
	}
	s.assertNoSecrets(h.proc.Text(), h.proc.Stderr(), string(data))
}
