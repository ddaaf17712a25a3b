package main

import (
	"crypto/x509"
	"net/http"
	"sync"

	"github.com/schwabtools/token-refresh-sender/internal/sysroots"
)

// withSystemRoots makes hc, a schwab.NewHTTPClient(nil), trust the system
// roots as sysroots loads them (each certificate parsed once, not two or
// three times as crypto/x509 does on Debian: about 7 ms and 1.3 MB of
// private memory less), loaded at the first request, so commands that
// never call Schwab do not pay for them. Where sysroots defers to the
// platform (not Linux, nothing found) hc keeps crypto/x509's own roots.
func withSystemRoots(hc *http.Client) *http.Client {
	if t, ok := hc.Transport.(*http.Transport); ok {
		hc.Transport = &rootsOnFirstUse{t: t, load: sysroots.Load}
	}
	return hc
}

// rootsOnFirstUse sets the transport's RootCAs before its first request.
type rootsOnFirstUse struct {
	once sync.Once
	t    *http.Transport
	load func() *x509.CertPool
}

// RoundTrip loads the roots once, then sends req.
func (r *rootsOnFirstUse) RoundTrip(req *http.Request) (*http.Response, error) {
	r.once.Do(r.setRoots)
	return r.t.RoundTrip(req)
}

func (r *rootsOnFirstUse) setRoots() {
	if pool := r.load(); pool != nil {
		cfg := r.t.TLSClientConfig.Clone()
		cfg.RootCAs = pool
		r.t.TLSClientConfig = cfg
	}
}

// preloadRoots starts loading hc's roots in the background, if
// withSystemRoots set it up: the daemon reads its files meanwhile, and the
// first request then finds them ready (or waits for the rest).
func preloadRoots(hc *http.Client) {
	if r, ok := hc.Transport.(*rootsOnFirstUse); ok {
		go r.once.Do(r.setRoots)
	}
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// transport.
func (r *rootsOnFirstUse) CloseIdleConnections() { r.t.CloseIdleConnections() }
