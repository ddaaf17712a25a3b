//go:build linux

package main_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/schwabtools/token-refresh-sender/cluster/etcdtest"
	"github.com/schwabtools/token-refresh-sender/fakeschwab"
	"github.com/schwabtools/token-refresh-sender/internal/testproc"
)

// netns is a network namespace joined to this host by two veth pairs on
// private /30s: one carries the namespace's etcd traffic (cut it to
// partition the namespace from etcd), the other its traffic to Schwab
// (left up: a leader cut off from etcd can still reach Schwab, and must
// not). Unix sockets and files are shared with the host: only TCP is cut.
type netns struct {
	name                   string
	etcdLink, schwabLink   string // the namespace's ends
	etcdHost, schwabHost   string // the host's addresses, reachable from inside
	etcdInside, schwabFrom string // the namespace's addresses
}

// needRoot skips the test when it cannot make network namespaces (not
// root, or no ip command), unless CI is set: then it fails.
func needRoot(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root (network namespaces and veth pairs)"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "needs the ip command (iproute2)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "" {
		t.Skip(why + "; run as root, or set CI=true to make this a failure")
	}
	t.Fatal(why + ", and CI is set")
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newNetns makes the namespace and its two links; everything goes when the
// test ends.
func newNetns(t *testing.T) *netns {
	t.Helper()
	id := make([]byte, 3)
	if _, err := rand.Read(id); err != nil {
		t.Fatal(err)
	}
	tag := hex.EncodeToString(id)
	net3 := fmt.Sprintf("10.213.%d.", 1+mrand.IntN(254))
	n := &netns{name: "trs-" + tag, etcdLink: "trse" + tag + "n", schwabLink: "trss" + tag + "n",
		etcdHost: net3 + "1", etcdInside: net3 + "2", schwabHost: net3 + "5", schwabFrom: net3 + "6"}
	ipCmd(t, "netns", "add", n.name)
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", n.name).Run() // takes the veth pairs with it
		_ = exec.Command("ip", "link", "del", "trse"+tag+"h").Run()
		_ = exec.Command("ip", "link", "del", "trss"+tag+"h").Run()
	})
	ipCmd(t, "-n", n.name, "link", "set", "lo", "up")
	for _, l := range []struct{ host, inside, hostAddr, insideAddr string }{
		{"trse" + tag + "h", n.etcdLink, n.etcdHost, n.etcdInside},
		{"trss" + tag + "h", n.schwabLink, n.schwabHost, n.schwabFrom},
	} {
		ipCmd(t, "link", "add", l.host, "type", "veth", "peer", "name", l.inside)
		ipCmd(t, "link", "set", l.inside, "netns", n.name)
		ipCmd(t, "addr", "add", l.hostAddr+"/30", "dev", l.host)
		ipCmd(t, "link", "set", l.host, "up")
		ipCmd(t, "-n", n.name, "addr", "add", l.insideAddr+"/30", "dev", l.inside)
		ipCmd(t, "-n", n.name, "link", "set", l.inside, "up")
	}
	return n
}

// exec is the command prefix that runs a program inside the namespace.
func (n *netns) exec() []string { return []string{"ip", "netns", "exec", n.name} }

// cutEtcd takes the namespace's etcd link down.
func (n *netns) cutEtcd(t *testing.T) { ipCmd(t, "-n", n.name, "link", "set", n.etcdLink, "down") }

// serveSchwabOn serves s's fake Schwab over HTTPS on addr too, with a
// certificate for that address; it counts the token requests it gets and
// writes an app config and a CA file pointing there.
func serveSchwabOn(t *testing.T, s *sandbox, addr string) (config, certFile string, requests *atomic.Int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fake Schwab in " + addr},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP(addr)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	requests = &atomic.Int64{}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == fakeschwab.TokenPath {
				requests.Add(1)
			}
			s.fake.ServeHTTP(w, r)
		}),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12},
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { srv.Close() })
	certFile = s.write("netns-schwab.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), 0o644)
	config = s.write("configs/netns_app_config.yaml", fmt.Sprintf(
		"app_name: E2E\napp_key: %s\napp_secret: %s\ncallback_url: https://127.0.0.1:8182\ntoken_url: https://%s%s\n",
		appKey, appSecret, ln.Addr().String(), fakeschwab.TokenPath), 0o600)
	return config, certFile, requests
}

// The leader runs in a network namespace and is cut off from etcd (its
// veth link down) while it can still reach Schwab: it says it lost its
// session and stops calling Schwab at once (the fake sees no token request
// from it after the cut); another instance leads within the lease TTL plus
// 2 s and refreshes, and the bots on the surviving hosts get every token.
func TestCluster_leaderCutOffFromEtcd(t *testing.T) {
	needRoot(t)
	ns := newNetns(t)
	etcd := etcdtest.StartOn(t, 3, ns.etcdHost)
	s := newClusterSandbox(t, clusterTokenLifetime)
	nsConfig, nsCert, nsRequests := serveSchwabOn(t, s, ns.schwabHost)
	key := clusterKey(t, s)
	hosts := newClusterHosts(t, s, 3)

	leader := hosts[0]
	leader.startIn(t, ns.exec(), nsConfig, nsCert, etcd.EndpointsOn(), key)
	leader.proc.WaitFor("Cluster: this instance (node0) is now the leader", 1)
	for _, h := range hosts[1:] {
		h.start(t, s, etcd.Endpoints(), key)
	}
	for _, h := range hosts[1:] {
		h.proc.WaitFor("Cluster: new token from etcd", 1)
	}
	leader.proc.WaitFor("Next refresh at", 2)
	if n := nsRequests.Load(); n != 2 {
		t.Fatalf("the leader in the namespace made %d token requests in 2 cycles, want 2 (through its own link to Schwab)", n)
	}
	waitBots(t, hosts, s.fake.Stats().Refreshes+1)

	cutAt := time.Now()
	ns.cutEtcd(t)
	atCut := nsRequests.Load()
	leader.proc.WaitFor("stopped refreshing at once", 1)
	t.Logf("the cut-off leader stopped %v after the cut", time.Since(cutAt).Round(time.Millisecond))
	if leader.proc.Count("Cluster: lost the etcd session") != 1 {
		t.Errorf("the cut-off leader does not say it lost its etcd session:\n%s", leader.proc.Text())
	}
	next := -1
	for next < 0 {
		next = leaderIndex(hosts, 0)
		if next < 0 && time.Since(cutAt) > testproc.WaitLimit {
			t.Fatalf("no instance took over:\n%s\n%s", hosts[1].proc.Text(), hosts[2].proc.Text())
		}
		time.Sleep(10 * time.Millisecond)
	}
	failover := time.Since(cutAt)
	t.Logf("another instance (%s) leads %v after the cut (lease TTL %v)", hosts[next].name, failover.Round(time.Millisecond), clusterLeaseTTL)
	if failover > clusterLeaseTTL+2*time.Second {
		t.Errorf("takeover took %v, more than the lease TTL %v plus 2s", failover, clusterLeaseTTL)
	}
	survivors := []*clusterHost{hosts[1], hosts[2]}
	hosts[next].proc.WaitFor("Next refresh at", 2)
	waitBots(t, survivors, s.fake.Stats().Refreshes+1)
	if n := nsRequests.Load(); n != atCut {
		t.Errorf("the cut-off leader made %d token request(s) after the cut, want none:\n%s", n-atCut, leader.proc.Text())
	}

	end := time.Now()
	for _, h := range hosts {
		h.proc.Signal(syscall.SIGTERM)
	}
	for _, h := range hosts {
		h.proc.Wait()
	}
	for _, h := range survivors {
		avail, margin := h.availability(t, end)
		t.Logf("%s: bot held an unexpired token %.2f%% of the time across the cut; tightest margin %v", h.name, 100*avail, margin.Round(time.Millisecond))
		if avail < 1 {
			t.Errorf("%s's bot held an unexpired token only %.4f%% of the time", h.name, 100*avail)
		}
	}
	// Every token request was a refresh some instance completed.
	done := 0
	for _, h := range hosts {
		done += h.proc.Count("Token refreshed successfully")
	}
	if st := s.fake.Stats(); st.TokenRequests != done || st.Refreshes != done {
		t.Errorf("fake Schwab saw %d token requests (%d refreshes) for %d completed refreshes", st.TokenRequests, st.Refreshes, done)
	}
	for _, h := range hosts {
		s.assertNoSecrets(h.proc.Text(), h.proc.Stderr())
	}
}
