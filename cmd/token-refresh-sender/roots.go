package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"sync"

	"github.com/schwabtools/token-refresh-sender/internal/sysroots"
)

// withSystemRoots makes hc, a schwab.NewHTTPClient(nil), trust the system
// roots as sysroots loads them: each certificate parsed once (not two or
// three times as crypto/x509 does on Debian), at the first request (so
// commands that never call Schwab do not pay for them), and in two stages
// (see stagedRoots). Where sysroots defers to the platform (not Linux,
// nothing found) hc keeps crypto/x509's own roots.
func withSystemRoots(hc *http.Client) *http.Client {
	if t, ok := hc.Transport.(*http.Transport); ok {
		hc.Transport = &stagedRoots{base: t, load: sysroots.Staged}
	}
	return hc
}

// stagedRoots is a transport that trusts the system's CA bundle first and
// the bundle plus the certificate directories when that is not enough.
// The bundle trusts a subset of what the whole trusts, and a request that
// fails to verify the server's certificate against the bundle is sent
// again (at most once, and only when its body can be rewound) against the
// whole: the trust decision is the whole's, but the directories (on
// Debian 146 files repeating the bundle, about half the roots' loading
// time) are read only when a server needs them.
type stagedRoots struct {
	base *http.Transport
	load func() (bundle *x509.CertPool, all func() *x509.CertPool)

	once sync.Once
	all  func() *x509.CertPool

	mu      sync.Mutex
	current *http.Transport // base's copy with the roots in force
	widened bool            // current trusts the whole
}

// RoundTrip loads the first stage once, then sends req; see stagedRoots.
func (r *stagedRoots) RoundTrip(req *http.Request) (*http.Response, error) {
	r.once.Do(r.setRoots)
	t, widened := r.transport()
	resp, err := t.RoundTrip(req)
	var verr *tls.CertificateVerificationError
	if err == nil || widened || !errors.As(err, &verr) {
		return resp, err
	}
	// The handshake failed: nothing of req was sent.
	retry, ok := rewound(req)
	wide := r.widen()
	if !ok {
		return resp, err
	}
	return wide.RoundTrip(retry)
}

// setRoots loads the bundle; without one, the whole is used at once.
func (r *stagedRoots) setRoots() {
	bundle, all := r.load()
	r.all = all
	if bundle == nil {
		r.widen()
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.current = withRoots(r.base, bundle)
}

// widen makes the whole the roots in force, once, and returns the
// transport that trusts it.
func (r *stagedRoots) widen() *http.Transport {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.widened {
		if r.current != nil {
			r.current.CloseIdleConnections()
		}
		r.current, r.widened = withRoots(r.base, r.all()), true
	}
	return r.current
}

func (r *stagedRoots) transport() (*http.Transport, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.current, r.widened
}

// withRoots is a copy of t trusting pool (nil: t's own RootCAs, which for
// schwab.NewHTTPClient(nil) means crypto/x509's system roots).
func withRoots(t *http.Transport, pool *x509.CertPool) *http.Transport {
	c := t.Clone()
	if pool != nil {
		cfg := c.TLSClientConfig.Clone()
		cfg.RootCAs = pool
		c.TLSClientConfig = cfg
	}
	return c
}

// rewound is req ready to be sent again: with a fresh body from GetBody
// (what http.NewRequest sets for an in-memory body), or as it is when it
// has none.
func rewound(req *http.Request) (*http.Request, bool) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, true
	}
	if req.GetBody == nil {
		return nil, false
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, false
	}
	retry := req.Clone(req.Context())
	retry.Body = body
	return retry, true
}

// preloadRoots starts loading hc's first stage of roots in the
// background, if withSystemRoots set it up: the daemon reads its files
// meanwhile, and the first request then finds them ready (or waits for
// the rest).
func preloadRoots(hc *http.Client) {
	if r, ok := hc.Transport.(*stagedRoots); ok {
		go r.once.Do(r.setRoots)
	}
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// transport in force.
func (r *stagedRoots) CloseIdleConnections() {
	if t, _ := r.transport(); t != nil {
		t.CloseIdleConnections()
	}
}
