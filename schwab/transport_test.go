package schwab_test

import (
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/schwabtools/token-refresh-sender/fakeschwab"
	"github.com/schwabtools/token-refresh-sender/schwab"
)

// The glue between the client and the refresh loop keeps Schwab's advice:
// a 429's Retry-After and a superseded token's relogin reach RetryAdvice.
func TestRetryAdvice_fromClient(t *testing.T) {
	e := mustStart(t)
	tok := e.fake.Login()
	e.fake.Inject(fakeschwab.FaultRateLimit(30 * time.Second))
	_, err := e.client.Refresh(t.Context(), tok.RefreshToken)
	if relogin, after := schwab.RetryAdvice(err); relogin || after != 30*time.Second {
		t.Errorf("429: RetryAdvice = %v, %v; want false, 30s (err %v)", relogin, after, err)
	}
	e.fake.Login() // supersedes tok
	_, err = e.client.Refresh(t.Context(), tok.RefreshToken)
	if relogin, after := schwab.RetryAdvice(err); !relogin || after != 0 {
		t.Errorf("superseded: RetryAdvice = %v, %v; want true, 0 (err %v)", relogin, after, err)
	}
}

// countingServer is an HTTPS token endpoint that counts the connections
// it accepted.
type countingServer struct {
	*httptest.Server
	newConns atomic.Int64
}

func startCountingServer(tb testing.TB) *countingServer {
	tb.Helper()
	s := &countingServer{}
	body := []byte(tokenBody())
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.newConns.Add(1)
		}
	}
	s.StartTLS()
	tb.Cleanup(s.Close)
	return s
}

func (s *countingServer) rootCAs() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	return pool
}

// The token client opens a connection per request and keeps none idle.
func TestNewHTTPClient_noKeepAlive(t *testing.T) {
	s := startCountingServer(t)
	c := &schwab.Client{AppKey: appKey, AppSecret: appSecret, TokenURL: s.URL + "/v1/oauth/token",
		HTTPClient: schwab.NewHTTPClient(s.rootCAs())}
	for range 3 {
		if _, err := c.Refresh(t.Context(), "refresh@"); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.newConns.Load(); n != 3 {
		t.Errorf("3 refreshes used %d connections, want 3 (no keep-alive)", n)
	}
}

// BenchmarkClient_RefreshSplitWrites: one refresh against a fake that
// writes headers and body separately with Nagle on (as many servers do).
// "fresh" is NewHTTPClient (no keep-alive); "keepalive" reuses one
// connection, as the client did before, and pays the delayed-ACK stall
// (~40 ms) on every reused connection.
func BenchmarkClient_RefreshSplitWrites(b *testing.B) {
	fake := fakeschwab.New(fakeschwab.Config{AppKey: appKey, AppSecret: appSecret, CallbackURL: callback, SplitWrites: true})
	ts, err := fakeschwab.StartTLS(fake)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ts.Close)
	rt := fake.Login().RefreshToken
	for _, keepAlive := range []bool{false, true} {
		name := "fresh"
		if keepAlive {
			name = "keepalive"
		}
		b.Run(name, func(b *testing.B) {
			hc := schwab.NewHTTPClient(ts.RootCAs)
			hc.Transport.(*http.Transport).DisableKeepAlives = !keepAlive
			b.Cleanup(hc.CloseIdleConnections)
			c := &schwab.Client{AppKey: appKey, AppSecret: appSecret, TokenURL: ts.TokenURL, HTTPClient: hc}
			for b.Loop() {
				if _, err := c.Refresh(b.Context(), rt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
