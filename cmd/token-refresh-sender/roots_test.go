package main

import (
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/schwabtools/token-refresh-sender/schwab"
)

// rootsServer is a TLS server that records the bodies it receives, and a
// pool trusting it.
func rootsServer(t *testing.T) (*httptest.Server, *x509.CertPool, *atomic.Value) {
	t.Helper()
	var got atomic.Value
	got.Store("")
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(string(b))
	}))
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return srv, pool, &got
}

// stagedClient is an HTTP client whose roots come in the given stages,
// counting how often each is loaded.
func stagedClient(bundle, all *x509.CertPool, bundleLoads, allLoads *int) (*http.Client, *stagedRoots) {
	hc := schwab.NewHTTPClient(nil)
	r := &stagedRoots{base: hc.Transport.(*http.Transport), load: func() (*x509.CertPool, func() *x509.CertPool) {
		*bundleLoads++
		return bundle, func() *x509.CertPool { *allLoads++; return all }
	}}
	hc.Transport = r
	return hc, r
}

// The roots are loaded for each request, none before the first; the
// whole only when the bundle does not verify the server, and then the
// request is sent again, body included, and later requests use the whole
// at once; the whole's decision is final.
func TestStagedRoots(t *testing.T) {
	srv, trusting, got := rootsServer(t)
	for _, tc := range []struct {
		name         string
		bundle, all  *x509.CertPool
		wantOK       bool
		wantAllLoads int
	}{
		{"the bundle verifies: the directories are never read", trusting, x509.NewCertPool(), true, 0},
		{"only the whole verifies: sent again, body and all", x509.NewCertPool(), trusting, true, 3},
		{"no bundle: the whole at once", nil, trusting, true, 3},
		{"neither verifies: the whole's refusal", x509.NewCertPool(), x509.NewCertPool(), false, 3},
		{"nothing found: crypto/x509's roots, which do not trust the server", nil, nil, false, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bundleLoads, allLoads := 0, 0
			hc, _ := stagedClient(tc.bundle, tc.all, &bundleLoads, &allLoads)
			defer hc.CloseIdleConnections()
			if bundleLoads != 0 {
				t.Fatal("roots loaded before the first request")
			}
			for i := range 3 {
				got.Store("")
				body := "grant_type=refresh_token&n=" + string(rune('0'+i))
				resp, err := hc.Post(srv.URL, "application/x-www-form-urlencoded", strings.NewReader(body))
				if err == nil {
					resp.Body.Close()
				}
				if (err == nil) != tc.wantOK {
					t.Fatalf("request %d: error %v, want success %v", i, err, tc.wantOK)
				}
				if tc.wantOK && got.Load() != body {
					t.Fatalf("request %d: the server received %q, want %q", i, got.Load(), body)
				}
			}
			if bundleLoads != 3 || allLoads != tc.wantAllLoads {
				t.Errorf("roots loaded %d times, the whole %d; want 3 and %d", bundleLoads, allLoads, tc.wantAllLoads)
			}
		})
	}
}

// A failure other than the certificate's (nothing listening) does not
// read the directories.
func TestStagedRoots_otherErrorsKeepTheBundle(t *testing.T) {
	srv, trusting, _ := rootsServer(t)
	url := srv.URL
	srv.Close()
	bundleLoads, allLoads := 0, 0
	hc, r := stagedClient(trusting, trusting, &bundleLoads, &allLoads)
	if resp, err := hc.Get(url); err == nil {
		resp.Body.Close()
		t.Fatal("a closed server answered")
	}
	if r.widened || allLoads != 0 {
		t.Errorf("widened %v, whole loaded %d times; want neither", r.widened, allLoads)
	}
}

// A body that cannot be rewound is not sent again: the bundle's refusal
// is returned, and the next request uses the whole.
func TestStagedRoots_bodyWithoutGetBody(t *testing.T) {
	srv, trusting, got := rootsServer(t)
	bundleLoads, allLoads := 0, 0
	hc, _ := stagedClient(x509.NewCertPool(), trusting, &bundleLoads, &allLoads)
	defer hc.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodPost, srv.URL, io.NopCloser(strings.NewReader("once")))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := hc.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("a body without GetBody was sent again")
	}
	resp, err := hc.Post(srv.URL, "text/plain", strings.NewReader("twice"))
	if err != nil {
		t.Fatalf("the next request: %v", err)
	}
	resp.Body.Close()
	if got.Load() != "twice" || allLoads != 1 {
		t.Errorf("server got %q, whole loaded %d times; want \"twice\" and 1 (the next request only)", got.Load(), allLoads)
	}
}

func TestWithSystemRoots_wrapsTheTransport(t *testing.T) {
	hc := withSystemRoots(schwab.NewHTTPClient(nil))
	if _, ok := hc.Transport.(*stagedRoots); !ok {
		t.Fatalf("transport is %T, want *stagedRoots", hc.Transport)
	}
}
