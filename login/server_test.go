package login

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"net/url"
	"strconv"
	"testing"
	"time"
)

func TestSelfSignedCert(t *testing.T) {
	now := time.Date(2025, 11, 13, 8, 0, 0, 0, time.UTC)
	cert, err := selfSignedCert(now)
	if err != nil {
		t.Fatal(err)
	}
	key, ok := cert.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		t.Fatalf("key is %T, want ECDSA P-256", cert.PrivateKey)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	for _, host := range []string{"127.0.0.1", "::1", "localhost"} {
		if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool, CurrentTime: now}); err != nil {
			t.Errorf("not valid for %s: %v", host, err)
		}
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: pool, CurrentTime: now}); err == nil {
		t.Error("valid for example.com")
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: "127.0.0.1", Roots: pool, CurrentTime: now.Add(48 * time.Hour)}); err == nil {
		t.Error("still valid two days later")
	}
}

func TestListen(t *testing.T) {
	port := freePort(t)
	cb, _ := url.Parse("https://localhost:" + strconv.Itoa(port))
	lns, err := listen(cb)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	if len(lns) == 0 || lns[0].Addr().String() != "127.0.0.1:"+strconv.Itoa(port) {
		t.Errorf("listeners: %v", lns)
	}
	if _, err := listen(cb); err == nil {
		t.Error("a second listen on the same port succeeded")
	}
}
