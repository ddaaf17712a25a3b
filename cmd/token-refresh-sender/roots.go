package main

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"time"

	"github.com/schwabtools/token-refresh-sender/internal/sysroots"
)

// withSystemRoots makes hc, a schwab.NewHTTPClient(nil), check servers
// against the system roots with sysroots.Verify: crypto/tls's decision,
// without parsing the ~145 roots that cannot be in the server's chain
// (about 3 ms and 3.7 MB of garbage for each token request otherwise).
func withSystemRoots(hc *http.Client) *http.Client {
	if t, ok := hc.Transport.(*http.Transport); ok {
		hc.Transport = &systemRoots{base: t, verify: sysroots.Verify}
	}
	return hc
}

// systemRoots is a transport whose TLS connections to the server of each
// request are verified by verify for that server's name, in place of
// crypto/tls's own verification against a pool of every system root.
//
// crypto/tls only lets a client verify a server itself with
// InsecureSkipVerify set; VerifyConnection then runs verify for every
// handshake, and a handshake whose chain it refuses fails. The name is
// bound per request: the request's host (or the configured ServerName),
// set as the connection's ServerName so that the SNI and the check agree;
// crypto/tls checks the server's signatures and key either way. Session
// resumption is off, so every handshake presents a chain. Each request
// gets its own copy of base (the daemon makes one request every 25
// minutes, with keep-alive off).
//
// Through an https:// proxy the proxy's handshake shares the
// connection's TLS settings, so those requests are left to base, which
// trusts crypto/x509's own system roots.
type systemRoots struct {
	base   *http.Transport
	verify func(certs []*x509.Certificate, name string, now time.Time) error
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
	cfg.InsecureSkipVerify = true // verified below, by verify
	cfg.ClientSessionCache = nil
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := r.verify(cs.PeerCertificates, name, now()); err != nil {
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
