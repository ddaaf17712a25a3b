package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/schwabtools/token-refresh-sender/internal/sysroots"
)

// withSystemRoots makes hc, a schwab.NewHTTPClient(nil), check servers
// against the system roots with sysroots (Prefetched.Verify): crypto/tls's
// decision, without parsing the ~145 roots that cannot be in the server's
// chain (4.6 ms and 1.4 MB of garbage for each token request before).
func withSystemRoots(hc *http.Client) *http.Client {
	if t, ok := hc.Transport.(*http.Transport); ok {
		hc.Transport = &systemRoots{base: t, prefetch: func() verifier { return sysroots.Prefetch() }}
	}
	return hc
}

// systemRoots is a transport whose TLS connections to the server of each
// request are checked by sysroots (Prefetched.Verify) for that server's
// name, in place of crypto/tls's own check against a pool of every system
// root.
//
// crypto/tls only lets a client verify a server itself with
// InsecureSkipVerify set; VerifyConnection then runs that check for every
// handshake, and a handshake whose chain it refuses fails. The name is
// bound per request: the request's host (or the configured ServerName),
// set as the connection's ServerName so that the SNI and the check agree;
// crypto/tls checks the server's signatures and key either way. Session
// resumption is off, so every handshake presents a chain. The roots are
// read once the first message has gone to the server (rootsAhead), so
// that reading them overlaps the wait for its answer. Each request
// gets its own copy of base (the daemon makes one request every 25
// minutes, with keep-alive off).
//
// Through an https:// proxy the proxy's handshake shares the
// connection's TLS settings, so those requests are left to base, which
// trusts crypto/x509's own system roots.
type systemRoots struct {
	base     *http.Transport
	prefetch func() verifier // starts reading the roots (sysroots.Prefetch)
}

// verifier checks a server's chain for its name at a time.
type verifier interface {
	Verify(certs []*x509.Certificate, name string, now time.Time) error
}

// RoundTrip sends req, verifying the server as systemRoots says.
func (r *systemRoots) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" || r.viaHTTPSProxy(req) {
		return r.base.RoundTrip(req)
	}
	t := r.base.Clone()
	cfg := t.TLSClientConfig.Clone()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = req.URL.Hostname()
	}
	name, now := cfg.ServerName, cfg.Time
	if now == nil {
		now = time.Now
	}
	cfg.InsecureSkipVerify = true // checked below, in VerifyConnection
	cfg.ClientSessionCache = nil
	roots := &rootsAhead{prefetch: r.prefetch}
	dial := t.DialContext
	if dial == nil {
		var d net.Dialer // what http.Transport dials with when DialContext is nil
		dial = d.DialContext
	}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &onWrite{Conn: c, written: roots.start}, nil
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := roots.get().Verify(cs.PeerCertificates, name, now()); err != nil {
			return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
		}
		return nil
	}
	t.TLSClientConfig = cfg
	return t.RoundTrip(req)
}

// viaHTTPSProxy reports whether req goes through an https:// proxy (an
// unusable proxy setting is base's to report).
func (r *systemRoots) viaHTTPSProxy(req *http.Request) bool {
	if r.base.Proxy == nil {
		return false
	}
	proxy, err := r.base.Proxy(req)
	return err != nil || (proxy != nil && proxy.Scheme == "https")
}

// rootsAhead starts reading the roots once, at the first call of start
// (after the first write to the server), and hands them over in get,
// which starts the reading itself if nothing was written.
type rootsAhead struct {
	once     sync.Once
	prefetch func() verifier
	roots    verifier
}

func (a *rootsAhead) start() { a.once.Do(func() { a.roots = a.prefetch() }) }

func (a *rootsAhead) get() verifier {
	a.start()
	return a.roots
}

// onWrite is a connection that calls written after each write to it (the
// first is the TLS ClientHello, or a proxy's CONNECT).
type onWrite struct {
	net.Conn
	written func()
}

func (c *onWrite) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written()
	return n, err
}
