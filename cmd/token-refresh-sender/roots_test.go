package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/schwabtools/token-refresh-sender/internal/sysroots"
	"github.com/schwabtools/token-refresh-sender/schwab"
)

// testCA signs server certificates for the roots tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "roots test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{cert, key}
}

// serverCert is a certificate for names (DNS names or IP addresses),
// valid until notAfter.
func (ca testCA) serverCert(t *testing.T, notAfter time.Time, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "server"},
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: notAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// trustOnly makes ca the system's only root for this test (sysroots
// reads SSL_CERT_FILE and SSL_CERT_DIR as crypto/x509 does).
func trustOnly(t *testing.T, ca testCA) {
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", bundle)
	t.Setenv("SSL_CERT_DIR", dir)
}

// tlsServer serves cert and records the body and the SNI name of each
// request.
type tlsServer struct {
	*httptest.Server
	body, sni chan string
}

func newTLSServer(t *testing.T, cert tls.Certificate) *tlsServer {
	t.Helper()
	s := &tlsServer{body: make(chan string, 8), sni: make(chan string, 8)}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.body <- string(b)
		s.sni <- r.TLS.ServerName
	}))
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

// systemClient is the daemon's client (withSystemRoots) with every
// connection dialled to srv, whatever the URL's host.
func systemClient(srv *tlsServer) *http.Client {
	hc := schwab.NewHTTPClient(nil)
	hc.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, srv.Listener.Addr().String())
	}
	return withSystemRoots(hc)
}

func post(hc *http.Client, rawURL, body string) error {
	resp, err := hc.Post(rawURL, "application/x-www-form-urlencoded", strings.NewReader(body))
	if err == nil {
		resp.Body.Close()
	}
	return err
}

// The server is checked for the request's own host, by name or address,
// against the system roots; a certificate for another server, from
// another CA, or expired is refused before anything is sent, as
// crypto/tls refuses it.
func TestSystemRoots_checksTheServer(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	trustOnly(t, ca)
	later := time.Now().Add(time.Hour)
	for _, tc := range []struct {
		name   string
		cert   tls.Certificate
		host   string
		wantOK bool
	}{
		{"a name the certificate holds", ca.serverCert(t, later, "api.schwab.test"), "api.schwab.test", true},
		{"an address the certificate holds", ca.serverCert(t, later, "127.0.0.1"), "127.0.0.1", true},
		{"another name", ca.serverCert(t, later, "evil.test"), "api.schwab.test", false},
		{"another address", ca.serverCert(t, later, "127.0.0.2"), "127.0.0.1", false},
		{"an address for a name", ca.serverCert(t, later, "127.0.0.1"), "api.schwab.test", false},
		{"another CA", other.serverCert(t, later, "api.schwab.test"), "api.schwab.test", false},
		{"expired", ca.serverCert(t, time.Now().Add(-time.Hour), "api.schwab.test"), "api.schwab.test", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newTLSServer(t, tc.cert)
			_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
			err := post(systemClient(srv), "https://"+net.JoinHostPort(tc.host, port)+"/v1/oauth/token", "grant_type=refresh_token")
			if (err == nil) != tc.wantOK {
				t.Fatalf("error %v, want success %v", err, tc.wantOK)
			}
			if !tc.wantOK {
				var verr *tls.CertificateVerificationError
				if !errors.As(err, &verr) {
					t.Errorf("error %v is not a *tls.CertificateVerificationError", err)
				}
				if len(srv.body) != 0 {
					t.Error("the request reached a server that was refused")
				}
				return
			}
			if got := <-srv.body; got != "grant_type=refresh_token" {
				t.Errorf("the server received %q", got)
			}
			// SNI carries names, never addresses, as crypto/tls sends it.
			wantSNI := tc.host
			if net.ParseIP(tc.host) != nil {
				wantSNI = ""
			}
			if got := <-srv.sni; got != wantSNI {
				t.Errorf("SNI %q, want %q", got, wantSNI)
			}
		})
	}
}

// verifyFunc is a verifier.
type verifyFunc func(certs []*x509.Certificate, name string, now time.Time) error

func (f verifyFunc) Verify(certs []*x509.Certificate, name string, now time.Time) error {
	return f(certs, name, now)
}

// The check gets the request's host, or the configured ServerName, for
// every request anew, and the peer's chain. The roots are read once per
// request, after the first write to the server and before its answer is
// read (so that reading them overlaps the wait for it).
func TestSystemRoots_nameOfEachRequest(t *testing.T) {
	ca := newTestCA(t)
	srv := newTLSServer(t, ca.serverCert(t, time.Now().Add(time.Hour), "127.0.0.1"))
	var names []string
	var writes, reads atomic.Int32 // the request's body is written by another goroutine
	var prefetches int
	hc := systemClient(srv)
	r := hc.Transport.(*systemRoots)
	dial := r.base.DialContext
	r.base.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		return countIO{c, &writes, &reads}, err
	}
	r.prefetch = func() verifier {
		prefetches++
		if writes.Load() == 0 || reads.Load() != 0 {
			t.Errorf("the roots are read after %d writes and %d reads, want after the first write, before any read", writes.Load(), reads.Load())
		}
		return verifyFunc(func(certs []*x509.Certificate, name string, now time.Time) error {
			names = append(names, name)
			if len(certs) != 1 || !certs[0].Equal(srv.Certificate()) || time.Since(now) > time.Minute {
				t.Errorf("verify got %d certificates (want the server's), time %v", len(certs), now)
			}
			return nil
		})
	}
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	for _, host := range []string{"a.test", "b.test"} {
		writes.Store(0)
		reads.Store(0)
		if err := post(hc, "https://"+net.JoinHostPort(host, port), ""); err != nil {
			t.Fatal(err)
		}
	}
	r.base.TLSClientConfig.ServerName = "configured.test"
	writes.Store(0)
	reads.Store(0)
	if err := post(hc, "https://a.test:"+port, ""); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names, ","); got != "a.test,b.test,configured.test" || prefetches != 3 {
		t.Errorf("verified for %s with %d readings of the roots, want a.test,b.test,configured.test and 3", got, prefetches)
	}
	if r.base.TLSClientConfig.InsecureSkipVerify || r.base.TLSClientConfig.VerifyConnection != nil {
		t.Error("the shared transport's settings were changed")
	}
}

// countIO counts the writes to a connection and the reads from it.
type countIO struct {
	net.Conn
	writes, reads *atomic.Int32
}

func (c countIO) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

func (c countIO) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.reads.Add(1)
	return n, err
}

// get starts the reading itself when nothing was written first (TLS
// clients speak first, but the check must never lack its roots), and the
// roots are read once.
func TestRootsAhead_getStartsTheReading(t *testing.T) {
	n := 0
	a := &rootsAhead{prefetch: func() verifier { n++; return verifyFunc(nil) }}
	if a.get() == nil || n != 1 {
		t.Fatalf("get without start: read %d times", n)
	}
	a.start()
	a.get()
	if n != 1 {
		t.Errorf("read %d times, want once", n)
	}
}

// Plain http (a test server) and requests through an https:// proxy go
// to the base transport untouched: the proxy's own handshake would share
// the server's name and check.
func TestSystemRoots_leavesOtherRequestsToTheBase(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer plain.Close()
	called, prefetches := 0, 0
	hc := withSystemRoots(schwab.NewHTTPClient(nil))
	r := hc.Transport.(*systemRoots)
	r.prefetch = func() verifier {
		prefetches++
		return verifyFunc(func([]*x509.Certificate, string, time.Time) error { called++; return nil })
	}
	if err := post(hc, plain.URL, ""); err != nil || called != 0 || prefetches != 0 {
		t.Errorf("plain http: err %v, roots read %d times, verify called %d times; want none", err, prefetches, called)
	}

	proxyErr := errors.New("proxy setting refused")
	for _, tc := range []struct {
		name  string
		proxy func(*http.Request) (*url.URL, error)
		want  bool
	}{
		{"no proxy function", nil, false},
		{"no proxy for this request", func(*http.Request) (*url.URL, error) { return nil, nil }, false},
		{"an http:// proxy (CONNECT, then our handshake)", func(*http.Request) (*url.URL, error) { return url.Parse("http://proxy:3128") }, false},
		{"an https:// proxy", func(*http.Request) (*url.URL, error) { return url.Parse("https://proxy:3128") }, true},
		{"a proxy setting that fails", func(*http.Request) (*url.URL, error) { return nil, proxyErr }, true},
	} {
		r.base.Proxy = tc.proxy
		req, _ := http.NewRequest(http.MethodGet, "https://api.schwab.test/", nil)
		if got := r.viaHTTPSProxy(req); got != tc.want {
			t.Errorf("%s: via an https proxy %v, want %v", tc.name, got, tc.want)
		}
	}
	// The base reports the failing proxy setting itself.
	if err := post(hc, "https://api.schwab.test/", ""); !errors.Is(err, proxyErr) || called != 0 {
		t.Errorf("failing proxy: err %v, verify called %d times; want the proxy's error and no call", err, called)
	}
}

func TestWithSystemRoots_wrapsTheTransport(t *testing.T) {
	hc := withSystemRoots(schwab.NewHTTPClient(nil))
	r, ok := hc.Transport.(*systemRoots)
	if !ok || r.prefetch == nil {
		t.Fatalf("transport is %T, want *systemRoots reading the system roots", hc.Transport)
	}
	if _, ok := r.prefetch().(*sysroots.Prefetched); !ok {
		t.Error("the roots are not sysroots'")
	}
	// Anything but an *http.Transport is left as it is.
	other := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, nil })}
	if _, ok := withSystemRoots(other).Transport.(roundTripFunc); !ok {
		t.Error("a custom transport was replaced")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Every handshake presents the server's chain to the check: a session
// cache in the base settings is not used, so no connection resumes a
// session (whose chain would not be shown again).
func TestSystemRoots_noSessionResumption(t *testing.T) {
	ca := newTestCA(t)
	trustOnly(t, ca)
	resumed := make(chan bool, 4)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		resumed <- r.TLS.DidResume
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.serverCert(t, time.Now().Add(time.Hour), "127.0.0.1")}}
	srv.StartTLS()
	defer srv.Close()
	hc := withSystemRoots(schwab.NewHTTPClient(nil))
	hc.Transport.(*systemRoots).base.TLSClientConfig.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	for i := range 3 {
		if err := post(hc, srv.URL, ""); err != nil {
			t.Fatal(err)
		}
		if <-resumed {
			t.Errorf("request %d resumed a TLS session", i+1)
		}
	}
}
