package main

import (
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/schwabtools/token-refresh-sender/schwab"
)

// TestRootsOnFirstUse: the roots are loaded once, at the first request,
// and the transport trusts them; nil from the loader leaves crypto/x509's
// own roots (which do not trust the test server).
func TestRootsOnFirstUse(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	trusting := x509.NewCertPool()
	trusting.AddCert(srv.Certificate())

	for _, tc := range []struct {
		name   string
		pool   *x509.CertPool
		wantOK bool
	}{
		{"loaded roots are trusted", trusting, true},
		{"nil keeps crypto/x509's roots", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc := schwab.NewHTTPClient(nil)
			loads := 0
			r := &rootsOnFirstUse{t: hc.Transport.(*http.Transport), load: func() *x509.CertPool { loads++; return tc.pool }}
			hc.Transport = r
			if loads != 0 {
				t.Fatal("roots loaded before the first request")
			}
			for range 2 {
				resp, err := hc.Get(srv.URL)
				if err == nil {
					resp.Body.Close()
				}
				if (err == nil) != tc.wantOK {
					t.Fatalf("request error %v, want success %v", err, tc.wantOK)
				}
			}
			if loads != 1 {
				t.Errorf("roots loaded %d times, want 1", loads)
			}
			hc.CloseIdleConnections()
		})
	}
}

func TestWithSystemRoots_wrapsTheTransport(t *testing.T) {
	hc := withSystemRoots(schwab.NewHTTPClient(nil))
	if _, ok := hc.Transport.(*rootsOnFirstUse); !ok {
		t.Fatalf("transport is %T, want *rootsOnFirstUse", hc.Transport)
	}
}

// TestPreloadRoots: a preload and the first request share one load.
func TestPreloadRoots(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	hc := schwab.NewHTTPClient(nil)
	loaded := make(chan struct{}, 2)
	hc.Transport = &rootsOnFirstUse{t: hc.Transport.(*http.Transport), load: func() *x509.CertPool { loaded <- struct{}{}; return pool }}
	preloadRoots(hc)
	<-loaded
	resp, err := hc.Get(srv.URL)
	if err != nil {
		t.Fatalf("request after the preload: %v", err)
	}
	resp.Body.Close()
	if len(loaded) != 0 {
		t.Error("the request loaded the roots again")
	}
	preloadRoots(&http.Client{}) // not set up by withSystemRoots: nothing to do
}
