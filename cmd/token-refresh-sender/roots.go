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
// three times as crypto/x509 does on Debian), in two stages (see
// stagedRoots), and for each request anew (see rootsPerRequest). Where
// sysroots defers to the platform (not Linux, nothing found) hc keeps
// crypto/x509's own roots.
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
// again (once, and only when its body can be rewound) against the whole,
// which every later request then uses: the trust decision is the
// whole's, but the directories (on Debian 146 files repeating the bundle,
// about half the roots' loading time) are read only when a server needs
// them.
//
// The roots are loaded for each request and dropped after it: the daemon
// makes one request every 25 minutes, with a new connection each time
// (no keep-alive), and about 4 ms of parsing then is cheaper than holding
// the pool, and the heap it fragments, in memory for 25 minutes (0.4 MB
// of private memory after the first cycle, bench/perf). It also means an
// updated CA bundle is used without a restart.
type stagedRoots struct {
	base *http.Transport
	load func() (bundle *x509.CertPool, all func() *x509.CertPool)

	mu      sync.Mutex
	widened bool // the bundle was not enough once: the whole from now on
}

// RoundTrip sends req trusting the bundle, or the whole; see stagedRoots.
func (r *stagedRoots) RoundTrip(req *http.Request) (*http.Response, error) {
	bundle, all := r.load()
	r.mu.Lock()
	wide := r.widened || bundle == nil
	r.mu.Unlock()
	if wide {
		return withRoots(r.base, all()).RoundTrip(req)
	}
	resp, err := withRoots(r.base, bundle).RoundTrip(req)
	var verr *tls.CertificateVerificationError
	if err == nil || !errors.As(err, &verr) {
		return resp, err
	}
	r.mu.Lock()
	r.widened = true
	r.mu.Unlock()
	// The handshake failed: nothing of req was sent.
	retry, ok := rewound(req)
	if !ok {
		return resp, err
	}
	return withRoots(r.base, all()).RoundTrip(retry)
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
