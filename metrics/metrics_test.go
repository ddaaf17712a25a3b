package metrics

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/delivery"
)

// clock is a settable time source for /healthz.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

var (
	login   = time.Date(2025, 11, 10, 8, 0, 0, 0, time.UTC)
	start   = time.Date(2025, 11, 13, 8, 44, 23, 0, time.UTC)
	expires = time.Date(2025, 11, 13, 9, 14, 24, 0, time.UTC)
)

func heldToken(exp, issued time.Time) tokensender.Token {
	return tokensender.Token{AccessToken: "AT-secret-value", RefreshToken: "RT-secret-value",
		ExpiresIn: 1800, ExpiresAt: exp, RefreshTokenIssuedAt: issued}
}

// scrape fetches /metrics over real HTTP and parses it.
func scrape(tb testing.TB, url string) map[string]*dto.MetricFamily {
	tb.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		tb.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET /metrics: status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		tb.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// labelled returns the metric of family name whose result label is result.
func labelled(tb testing.TB, mfs map[string]*dto.MetricFamily, name, result string) *dto.Metric {
	tb.Helper()
	mf, ok := mfs[name]
	if !ok {
		tb.Fatalf("%s missing from the scrape", name)
	}
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "result" && l.GetValue() == result {
				return m
			}
		}
	}
	tb.Fatalf("%s{result=%q} missing from the scrape", name, result)
	return nil
}

func gaugeValue(tb testing.TB, mfs map[string]*dto.MetricFamily, name string) float64 {
	tb.Helper()
	mf, ok := mfs[name]
	if !ok {
		tb.Fatalf("%s missing from the scrape", name)
	}
	if len(mf.GetMetric()) != 1 {
		tb.Fatalf("%s has %d series, want 1", name, len(mf.GetMetric()))
	}
	return mf.GetMetric()[0].GetGauge().GetValue()
}

func TestMetrics_Handler_scrape(t *testing.T) {
	m := New((&clock{t: start}).Now)
	m.Handler() // a second handler on the same registry must not panic
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()

	// Before any event: counters at zero, timestamps absent (unknown).
	mfs := scrape(t, srv.URL)
	for _, r := range []string{"success", "transient_error", "relogin_required"} {
		if v := labelled(t, mfs, "token_sender_refresh_total", r).GetCounter().GetValue(); v != 0 {
			t.Errorf("refresh_total{result=%q} = %v before any event, want 0", r, v)
		}
	}
	for _, r := range []string{"delivered", "delivered_no_ack", "not_found", "failed", "canceled", "withheld"} {
		labelled(t, mfs, "token_sender_delivery_total", r)
	}
	for _, name := range []string{
		"token_sender_access_token_expiry_timestamp_seconds",
		"token_sender_refresh_token_expiry_timestamp_seconds",
		"token_sender_last_refresh_success_timestamp_seconds",
	} {
		if _, ok := mfs[name]; ok {
			t.Errorf("%s exported before anything is known", name)
		}
	}

	tok := heldToken(expires, login)
	refreshedAt := start.Add(time.Second)
	events := []tokensender.Event{
		{Kind: tokensender.EventStarted, At: start, Token: heldToken(start.Add(10*time.Minute), login), RefreshTokenIssuedAt: login},
		{Kind: tokensender.EventRefreshFailed, At: start, Token: heldToken(start.Add(10*time.Minute), login), RefreshTokenIssuedAt: login,
			Err: errors.New("HTTP 503"), Failures: 1, Duration: 250 * time.Millisecond, Next: start.Add(2 * time.Second)},
		{Kind: tokensender.EventReloginRequired, At: start, Token: heldToken(start.Add(10*time.Minute), login), RefreshTokenIssuedAt: login,
			Err: errors.New("HTTP 401"), Failures: 2, Duration: 750 * time.Millisecond, Next: start.Add(2 * time.Minute)},
		{Kind: tokensender.EventRecovered, At: refreshedAt, Token: tok, RefreshTokenIssuedAt: login, Failures: 2, Duration: 1500 * time.Millisecond},
		{Kind: tokensender.EventRefreshed, At: refreshedAt, Token: tok, RefreshTokenIssuedAt: login, Duration: 1500 * time.Millisecond,
			Next: refreshedAt.Add(25 * time.Minute)},
	}
	for _, ev := range events {
		m.Observe(ev)
	}
	for _, o := range []delivery.Outcome{delivery.Delivered, delivery.Delivered, delivery.DeliveredNoAck,
		delivery.NotFound, delivery.Failed, delivery.Canceled, delivery.NotFound, delivery.NotFound, delivery.Withheld, delivery.Withheld} {
		m.ObserveDelivery(delivery.Result{Target: delivery.Address{Network: "unix", Addr: "/tmp/bot-" + o.String() + ".sock"}, Outcome: o})
	}

	mfs = scrape(t, srv.URL)
	t.Run("refresh_total", func(t *testing.T) {
		// Recovered is followed by Refreshed: one success, not two.
		want := map[string]float64{"success": 1, "transient_error": 1, "relogin_required": 1}
		for r, w := range want {
			if got := labelled(t, mfs, "token_sender_refresh_total", r).GetCounter().GetValue(); got != w {
				t.Errorf("refresh_total{result=%q} = %v, want %v", r, got, w)
			}
		}
		if n := len(mfs["token_sender_refresh_total"].GetMetric()); n != 3 {
			t.Errorf("refresh_total has %d series, want 3", n)
		}
	})
	t.Run("refresh_duration_seconds", func(t *testing.T) {
		mf := mfs["token_sender_refresh_duration_seconds"]
		if mf.GetType() != dto.MetricType_HISTOGRAM {
			t.Fatalf("type %v, want histogram", mf.GetType())
		}
		h := mf.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != 3 {
			t.Errorf("sample count %d, want 3", h.GetSampleCount())
		}
		if math.Abs(h.GetSampleSum()-2.5) > 1e-9 {
			t.Errorf("sample sum %v, want 2.5", h.GetSampleSum())
		}
		for _, b := range h.GetBucket() {
			if b.GetUpperBound() == 1 && b.GetCumulativeCount() != 2 {
				t.Errorf("bucket le=1 has %d, want 2 (0.25 s and 0.75 s)", b.GetCumulativeCount())
			}
		}
	})
	t.Run("timestamps", func(t *testing.T) {
		for name, want := range map[string]time.Time{
			"token_sender_access_token_expiry_timestamp_seconds":  expires,
			"token_sender_refresh_token_expiry_timestamp_seconds": login.Add(7 * 24 * time.Hour),
			"token_sender_last_refresh_success_timestamp_seconds": refreshedAt,
		} {
			if got := gaugeValue(t, mfs, name); got != float64(want.Unix()) {
				t.Errorf("%s = %v, want %v (%s)", name, got, want.Unix(), want)
			}
		}
	})
	t.Run("delivery_total", func(t *testing.T) {
		want := map[string]float64{"delivered": 2, "delivered_no_ack": 1, "not_found": 3, "failed": 1, "canceled": 1, "withheld": 2}
		for r, w := range want {
			if got := labelled(t, mfs, "token_sender_delivery_total", r).GetCounter().GetValue(); got != w {
				t.Errorf("delivery_total{result=%q} = %v, want %v", r, got, w)
			}
		}
		if n := len(mfs["token_sender_delivery_total"].GetMetric()); n != len(want) {
			t.Errorf("delivery_total has %d series, want %d (no label per socket)", n, len(want))
		}
	})
	t.Run("runtime", func(t *testing.T) {
		for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes"} {
			if _, ok := mfs[name]; !ok {
				t.Errorf("%s missing: Go and process collectors not registered", name)
			}
		}
	})
	t.Run("no secrets", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), "secret-value") {
			t.Error("/metrics shows a token")
		}
	})
}

func TestMetrics_Observe_unknownLoginTime(t *testing.T) {
	m := New(nil)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	m.Observe(tokensender.Event{Kind: tokensender.EventStarted, At: start, Token: heldToken(expires, login), RefreshTokenIssuedAt: login})
	if _, ok := scrape(t, srv.URL)["token_sender_refresh_token_expiry_timestamp_seconds"]; !ok {
		t.Fatal("refresh token expiry missing while the login time is known")
	}
	// A token from a file without refresh_token_issued_at: the login
	// time becomes unknown, and the old value must not linger.
	m.Observe(tokensender.Event{Kind: tokensender.EventRefreshed, At: start, Token: heldToken(expires, time.Time{})})
	if mf, ok := scrape(t, srv.URL)["token_sender_refresh_token_expiry_timestamp_seconds"]; ok {
		t.Errorf("refresh token expiry exported with an unknown login time: %v", mf)
	}
}

// TestMetrics_RefreshTokenLifetime: the refresh token's expiry follows
// --refresh-token-lifetime, not Schwab's 7 days.
func TestMetrics_RefreshTokenLifetime(t *testing.T) {
	for _, tt := range []struct {
		lifetime time.Duration
		want     time.Time
	}{
		{48 * time.Hour, login.Add(48 * time.Hour)},
		{90 * time.Minute, login.Add(90 * time.Minute)},
		{0, login.Add(7 * 24 * time.Hour)}, // zero: Schwab's lifetime
	} {
		m := New(nil)
		m.RefreshTokenLifetime = tt.lifetime
		srv := httptest.NewServer(m.Handler())
		m.Observe(tokensender.Event{Kind: tokensender.EventStarted, At: start, Token: heldToken(expires, login), RefreshTokenIssuedAt: login})
		got := gaugeValue(t, scrape(t, srv.URL), "token_sender_refresh_token_expiry_timestamp_seconds")
		srv.Close()
		if got != float64(tt.want.Unix()) {
			t.Errorf("lifetime %v: refresh token expiry %v, want %v (%s)", tt.lifetime, got, tt.want.Unix(), tt.want)
		}
	}
	if DefaultRefreshTokenLifetime != 7*24*time.Hour || New(nil).RefreshTokenLifetime != DefaultRefreshTokenLifetime {
		t.Errorf("default lifetime %v, want 168h", New(nil).RefreshTokenLifetime)
	}
}

func TestMetrics_Handler_healthz(t *testing.T) {
	tests := []struct {
		name     string
		event    *tokensender.Event
		now      time.Time
		wantCode int
		wantBody string
	}{
		{"no token yet", nil, start, http.StatusServiceUnavailable, "no token yet\n"},
		{"valid", &tokensender.Event{Kind: tokensender.EventStarted, Token: heldToken(expires, login)}, start,
			http.StatusOK, "ok: access token valid until 2025-11-13 09:14:24\n"},
		{"one second before expiry", &tokensender.Event{Kind: tokensender.EventRefreshed, Token: heldToken(expires, login)}, expires.Add(-time.Second),
			http.StatusOK, "ok: access token valid until 2025-11-13 09:14:24\n"},
		{"at expiry", &tokensender.Event{Kind: tokensender.EventRefreshFailed, Err: errors.New("HTTP 503"), Token: heldToken(expires, login)}, expires,
			http.StatusServiceUnavailable, "access token expired at 2025-11-13 09:14:24\n"},
		{"long expired", &tokensender.Event{Kind: tokensender.EventReloginRequired, Err: errors.New("HTTP 401"), Token: heldToken(expires, login)}, expires.Add(time.Hour),
			http.StatusServiceUnavailable, "access token expired at 2025-11-13 09:14:24\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{t: tt.now}
			m := New(c.Now)
			if tt.event != nil {
				m.Observe(*tt.event)
			}
			srv := httptest.NewServer(m.Handler())
			defer srv.Close()
			resp, err := http.Get(srv.URL + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantCode || string(body) != tt.wantBody {
				t.Errorf("GET /healthz = %d %q, want %d %q", resp.StatusCode, body, tt.wantCode, tt.wantBody)
			}
		})
	}
}

func TestMetrics_Handler_healthzFollowsClock(t *testing.T) {
	c := &clock{t: start}
	m := New(c.Now)
	m.Observe(tokensender.Event{Kind: tokensender.EventStarted, Token: heldToken(expires, login)})
	if ok, reason := m.Health(); !ok {
		t.Fatalf("Health() = false %q before expiry", reason)
	}
	c.Set(expires)
	if ok, _ := m.Health(); ok {
		t.Fatal("Health() = true once the token expired")
	}
	// A Stopping event carries the same token: health is unchanged.
	m.Observe(tokensender.Event{Kind: tokensender.EventStopping, Token: heldToken(expires, login)})
	if ok, _ := m.Health(); ok {
		t.Fatal("Health() = true after Stopping with an expired token")
	}
	m.Observe(tokensender.Event{Kind: tokensender.EventRefreshed, Token: heldToken(expires.Add(30*time.Minute), login)})
	if ok, reason := m.Health(); !ok {
		t.Fatalf("Health() = false %q after a refresh", reason)
	}
}

func TestDeliveryResult(t *testing.T) {
	tests := []struct {
		o    delivery.Outcome
		want string
	}{
		{delivery.Delivered, "delivered"},
		{delivery.DeliveredNoAck, "delivered_no_ack"},
		{delivery.NotFound, "not_found"},
		{delivery.Failed, "failed"},
		{delivery.Canceled, "canceled"},
		{delivery.Withheld, "withheld"},
		{delivery.Outcome(42), "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := DeliveryResult(tt.o); got != tt.want {
				t.Errorf("DeliveryResult(%v) = %q, want %q", tt.o, got, tt.want)
			}
		})
	}
}

func TestListenAddr(t *testing.T) {
	tests := []struct {
		addr        string
		allowRemote bool
		wantErr     string // substring; "" means valid
	}{
		{"127.0.0.1:9464", false, ""},
		{"127.0.0.2:9464", false, ""},
		{"[::1]:9464", false, ""},
		{"localhost:9464", false, ""},
		{"LOCALHOST:9464", false, ""},
		{"127.0.0.1:0", false, ""},
		{"0.0.0.0:9464", false, `--metrics-addr "0.0.0.0:9464": host "0.0.0.0" is not a loopback address; use 127.0.0.1:9464, or add --metrics-allow-remote`},
		{":9464", false, "no host means every network interface"},
		{"[::]:9464", false, "--metrics-allow-remote"},
		{"192.168.1.10:9464", false, "--metrics-allow-remote"},
		{"example.com:9464", false, "is not a loopback address"},
		{"0.0.0.0:9464", true, ""},
		{":9464", true, ""},
		{"example.com:9464", true, ""},
		{"127.0.0.1", false, `--metrics-addr "127.0.0.1" is not host:port`},
		{"", false, "is not host:port"},
		{"127.0.0.1:http", false, `port "http" is not a number`},
		{"127.0.0.1:65536", false, "is not a number from 0 to 65535"},
		{"127.0.0.1:-1", false, "is not a number"},
		{"0.0.0.0:99999", true, "is not a number"},
	}
	for _, tt := range tests {
		t.Run(tt.addr+map[bool]string{true: " remote"}[tt.allowRemote], func(t *testing.T) {
			err := ListenAddr(tt.addr, tt.allowRemote)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("ListenAddr(%q, %v) = %v, want nil", tt.addr, tt.allowRemote, err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("ListenAddr(%q, %v) = nil, want an error containing %q", tt.addr, tt.allowRemote, tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("ListenAddr(%q, %v) = %q, want it to contain %q", tt.addr, tt.allowRemote, err, tt.wantErr)
			}
		})
	}
}

func FuzzListenAddr(f *testing.F) {
	for _, s := range []string{"127.0.0.1:9464", "[::1]:0", "localhost:1", ":9464", "0.0.0.0:80", "[fe80::1%lo]:9", "a:b:c", "[::ffff:127.0.0.1]:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		local := ListenAddr(addr, false)
		remote := ListenAddr(addr, true)
		if local == nil && remote != nil {
			t.Fatalf("%q allowed locally but not with --metrics-allow-remote: %v", addr, remote)
		}
		for _, err := range []error{local, remote} {
			if err != nil && (strings.ContainsAny(err.Error(), "\n\r") || !strings.HasPrefix(err.Error(), "--metrics-addr ")) {
				t.Fatalf("error is not one line naming the flag: %q", err)
			}
		}
		if local == nil {
			host, _, _ := net.SplitHostPort(addr)
			if !isLoopback(host) {
				t.Fatalf("%q accepted without --metrics-allow-remote but %q is not loopback", addr, host)
			}
		}
	})
}

func TestMetrics_ServeListener(t *testing.T) {
	m := New((&clock{t: start}).Now)
	m.Observe(tokensender.Event{Kind: tokensender.EventStarted, Token: heldToken(expires, login)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.ServeListener(ctx, ln, nil) }()

	url := "http://" + ln.Addr().String()
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz = %d, want 200", resp.StatusCode)
	}
	if len(scrape(t, url)) == 0 {
		t.Error("empty scrape")
	}
	resp, err = http.Get(url + "/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /other = %d, want 404", resp.StatusCode)
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("ServeListener after cancel = %v, want nil", err)
	}
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Error("server still answers after ctx was cancelled")
	}
}

func TestMetrics_Serve_cannotListen(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	err = New(nil).Serve(context.Background(), busy.Addr().String(), nil)
	if err == nil || !strings.Contains(err.Error(), "--metrics-addr "+busy.Addr().String()+": cannot listen") {
		t.Errorf("Serve on a busy port = %v, want a cannot-listen error", err)
	}
}
