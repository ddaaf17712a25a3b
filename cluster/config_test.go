package cluster

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	return Config{Endpoints: []string{"https://10.0.0.1:2379", "http://127.0.0.1:2379/"}, Prefix: "/trs/x/", LeaseTTL: 10 * time.Second, NodeName: "host-a"}
}

func TestConfig_Validate(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no endpoints", func(c *Config) { c.Endpoints = nil }, "--etcd-endpoints: no endpoint"},
		{"bare host", func(c *Config) { c.Endpoints = []string{"10.0.0.1:2379"} }, `"10.0.0.1:2379" is not an etcd client URL`},
		{"scheme", func(c *Config) { c.Endpoints = []string{"unix:///x"} }, "is not an etcd client URL"},
		{"path", func(c *Config) { c.Endpoints = []string{"http://h:2379/v3"} }, "is not an etcd client URL"},
		{"no host", func(c *Config) { c.Endpoints = []string{"http://"} }, "is not an etcd client URL"},
		{"bad url", func(c *Config) { c.Endpoints = []string{"http://[::1"} }, "is not an etcd client URL"},
		{"prefix no slash", func(c *Config) { c.Prefix = "trs/" }, "--etcd-prefix"},
		{"prefix no trailing slash", func(c *Config) { c.Prefix = "/trs" }, "--etcd-prefix"},
		{"prefix root", func(c *Config) { c.Prefix = "/" }, "--etcd-prefix"},
		{"prefix empty segment", func(c *Config) { c.Prefix = "//" }, "--etcd-prefix"},
		{"ttl short", func(c *Config) { c.LeaseTTL = time.Second }, "--etcd-lease-ttl: 1s is out of range"},
		{"ttl long", func(c *Config) { c.LeaseTTL = time.Hour + time.Second }, "out of range"},
		{"ttl fraction", func(c *Config) { c.LeaseTTL = 2500 * time.Millisecond }, "not whole seconds"},
		{"node empty", func(c *Config) { c.NodeName = "" }, "--node-name"},
		{"node slash", func(c *Config) { c.NodeName = "a/b" }, "--node-name"},
		{"node space", func(c *Config) { c.NodeName = "a b" }, "--node-name"},
		{"cert alone", func(c *Config) { c.CertFile = "c.pem" }, "go together"},
		{"key alone", func(c *Config) { c.KeyFile = "k.pem" }, "go together"},
		{"password alone", func(c *Config) { c.Password = "pw" }, "TOKEN_SENDER_ETCD_PASSWORD is set but --etcd-username is not"},
		{"user alone", func(c *Config) { c.Username = "u" }, "TOKEN_SENDER_ETCD_PASSWORD is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mod(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	// The bounds themselves are accepted.
	for _, ttl := range []time.Duration{MinLeaseTTL, time.Hour} {
		c := validConfig()
		c.LeaseTTL = ttl
		if err := c.Validate(); err != nil {
			t.Fatalf("ttl %s: %v", ttl, err)
		}
	}
	c := validConfig()
	c.Prefix = "/a/"
	if err := c.Validate(); err != nil {
		t.Fatalf("shortest prefix: %v", err)
	}
	c = validConfig()
	c.CertFile, c.KeyFile, c.Username, c.Password = "c", "k", "u", "p"
	if err := c.Validate(); err != nil {
		t.Fatalf("cert+key+user+password: %v", err)
	}
}

func TestDefaultPrefix(t *testing.T) {
	a, b := DefaultPrefix("app-key-one"), DefaultPrefix("app-key-two")
	if a == b {
		t.Fatal("two app keys share a prefix")
	}
	if !strings.HasPrefix(a, "/token-refresh-sender/") || !strings.HasSuffix(a, "/") || len(a) != len("/token-refresh-sender/")+12+1 {
		t.Fatalf("prefix %q", a)
	}
	if strings.Contains(a, "app-key") {
		t.Fatal("the app key is in the prefix")
	}
	if DefaultPrefix("app-key-one") != a {
		t.Fatal("prefix not stable")
	}
}

func TestConfig_WithDefaults(t *testing.T) {
	env := map[string]string{PasswordEnv: "s3cret"}
	c, err := Config{Endpoints: []string{"http://h:2379"}}.WithDefaults("k", func() (string, error) { return "box", nil }, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Prefix != DefaultPrefix("k") || c.LeaseTTL != DefaultLeaseTTL || c.NodeName != "box" || c.Password != "s3cret" {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = Config{Prefix: "/p/", LeaseTTL: 3 * time.Second, NodeName: "n", Password: "given"}.WithDefaults("k", nil, func(string) string { return "env" })
	if err != nil || c.Prefix != "/p/" || c.LeaseTTL != 3*time.Second || c.NodeName != "n" || c.Password != "given" {
		t.Fatalf("set values overridden: %+v %v", c, err)
	}
	_, err = Config{}.WithDefaults("k", func() (string, error) { return "", errors.New("boom") }, nil)
	if err == nil || !strings.Contains(err.Error(), "--node-name") {
		t.Fatalf("err = %v", err)
	}
}

func TestOpen_Warnings(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	c, err := Open(validConfig(), logger)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Codec.Encrypted() {
		t.Fatal("encrypted without a key")
	}
	if n := strings.Count(buf.String(), "level=WARN"); n != 1 || !strings.Contains(buf.String(), "in clear") || !strings.Contains(buf.String(), "--etcd-encryption-key-file") {
		t.Fatalf("want one WARNING about clear tokens, got:\n%s", buf.String())
	}

	buf.Reset()
	cfg := validConfig()
	cfg.EncryptionKeyFile = writeKey(t, 32, 0o600)
	c2, err := Open(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if !c2.Codec.Encrypted() || buf.Len() != 0 {
		t.Fatalf("with a key: encrypted=%v, log %q", c2.Codec.Encrypted(), buf.String())
	}
	if c2.TokenKey() != "/trs/x/token" || c2.ElectionPrefix() != "/trs/x/election" || c2.LoginLockPrefix() != "/trs/x/login" || c2.NodeKey("n") != "/trs/x/nodes/n" {
		t.Fatal("key layout changed")
	}

	cfg.EncryptionKeyFile = writeKey(t, 32, 0o644)
	if _, err := Open(cfg, logger); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("loose key accepted: %v", err)
	}
	cfg = validConfig()
	cfg.CAFile = "/nonexistent/ca.pem"
	if _, err := Open(cfg, logger); err == nil || !strings.Contains(err.Error(), "--etcd-ca-file") {
		t.Fatalf("missing CA accepted: %v", err)
	}
	cfg = validConfig()
	cfg.LeaseTTL = 0
	if _, err := Open(cfg, logger); err == nil {
		t.Fatal("invalid config opened")
	}
}

func writeCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestClientConfig(t *testing.T) {
	cfg := validConfig()
	cfg.Endpoints = []string{"http://127.0.0.1:2379"}
	cfg.Username, cfg.Password = "u", "p"
	cc, err := clientConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cc.TLS != nil {
		t.Fatal("TLS on for a plain http endpoint without TLS files")
	}
	if cc.DialTimeout != defaultDialTimeout || cc.DialKeepAliveTime != 5*time.Second || cc.DialKeepAliveTimeout != 5*time.Second {
		t.Fatalf("timeouts: dial %s, keepalive %s/%s", cc.DialTimeout, cc.DialKeepAliveTime, cc.DialKeepAliveTimeout)
	}
	if cc.Username != "u" || cc.Password != "p" || len(cc.Endpoints) != 1 || cc.Logger == nil {
		t.Fatal("credentials, endpoints or logger not passed on")
	}
	cfg.DialTimeout = 3 * time.Second
	if cc, _ := clientConfig(cfg); cc.DialTimeout != 3*time.Second {
		t.Fatalf("dial timeout %s", cc.DialTimeout)
	}

	cfg = validConfig()
	cfg.Endpoints = []string{"http://a:2379", "https://b:2379"}
	if cc, err := clientConfig(cfg); err != nil || cc.TLS == nil {
		t.Fatalf("an https endpoint without a CA file: TLS %v, %v", cc.TLS, err)
	}
	cfg.Endpoints = []string{"http://a:2379"}
	cfg.CAFile = writeCA(t)
	cc, err = clientConfig(cfg)
	if err != nil || cc.TLS == nil || cc.TLS.RootCAs == nil {
		t.Fatalf("CA file: %v", err)
	}
	cfg.CAFile = ""
	cfg.CertFile, cfg.KeyFile = "/nonexistent/c.pem", "/nonexistent/k.pem"
	if _, err := clientConfig(cfg); err == nil || !strings.Contains(err.Error(), "--etcd-cert-file") {
		t.Fatalf("missing client certificate: %v", err)
	}
}

func TestState_Summary(t *testing.T) {
	rec := testRecord()
	for _, tc := range []struct {
		st   State
		want string
	}{
		{State{Available: true}, "Cluster follower; no token yet"},
		{State{Available: true, Leading: true, Held: rec, HaveRecord: true}, "Cluster leader; token valid until " + rec.Token.ExpiresAt.Format(time.RFC3339) + " (record #7 by host-a)"},
		{State{Available: false, DownSince: time.Unix(1_800_000_000, 0).UTC(), Held: rec, HaveRecord: true}, "Cluster UNAVAILABLE since 2027-01-15T08:00:00Z: nobody refreshes; token valid until " + rec.Token.ExpiresAt.Format(time.RFC3339)},
	} {
		if got := tc.st.Summary(); got != tc.want {
			t.Errorf("Summary() = %q\nwant       %q", got, tc.want)
		}
	}
}
