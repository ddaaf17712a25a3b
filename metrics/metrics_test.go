package metrics

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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

// gaugeValue returns the value of the one sample of gauge name, and checks
// its metadata.
func gaugeValue(tb testing.TB, e *exposition, name string) float64 {
	tb.Helper()
	if e.typ[name] != "gauge" || e.help[name] == "" {
		tb.Errorf("%s: TYPE %q HELP %q, want a gauge with help", name, e.typ[name], e.help[name])
	}
	if n := len(e.series(name)); n != 1 {
		tb.Fatalf("%s has %d series, want 1", name, n)
	}
	return e.value(tb, name)
}

var (
	refreshResults  = []string{"relogin_required", "success", "transient_error"}
	deliveryResults = []string{"canceled", "delivered", "delivered_no_ack", "failed", "not_found", "withheld"}
	timestampNames  = []string{
		"token_sender_access_token_expiry_timestamp_seconds",
		"token_sender_refresh_token_expiry_timestamp_seconds",
		"token_sender_last_refresh_success_timestamp_seconds",
	}
)

func TestMetrics_Handler_scrape(t *testing.T) {
	m := New((&clock{t: start}).Now)
	m.Handler() // a second handler on the same metrics must not panic
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()

	// Before any event: counters at zero, timestamps absent (unknown),
	// metadata and all.
	e := scrape(t, srv.URL)
	if got := e.labelValues("token_sender_refresh_total", "result"); !slices.Equal(got, refreshResults) {
		t.Errorf("refresh_total results %q before any event, want %q", got, refreshResults)
	}
	for _, r := range refreshResults {
		if v := e.value(t, "token_sender_refresh_total", "result", r); v != 0 {
			t.Errorf("refresh_total{result=%q} = %v before any event, want 0", r, v)
		}
	}
	if got := e.labelValues("token_sender_delivery_total", "result"); !slices.Equal(got, deliveryResults) {
		t.Errorf("delivery_total results %q before any event, want %q", got, deliveryResults)
	}
	if v := e.value(t, "token_sender_refresh_duration_seconds_count"); v != 0 {
		t.Errorf("refresh_duration_seconds_count = %v before any event, want 0", v)
	}
	for _, name := range timestampNames {
		if e.has(name) {
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
		// Only a refresh is a success: the last one stays refreshedAt.
		{Kind: tokensender.EventStopping, At: refreshedAt.Add(time.Minute), Token: tok, RefreshTokenIssuedAt: login},
	}
	for _, ev := range events {
		m.Observe(ev)
	}
	for _, o := range []delivery.Outcome{delivery.Delivered, delivery.Delivered, delivery.DeliveredNoAck,
		delivery.NotFound, delivery.Failed, delivery.Canceled, delivery.NotFound, delivery.NotFound, delivery.Withheld, delivery.Withheld} {
		m.ObserveDelivery(delivery.Result{Target: delivery.Address{Network: "unix", Addr: "/tmp/bot-" + o.String() + ".sock"}, Outcome: o})
	}

	e = scrape(t, srv.URL)
	t.Run("metadata", func(t *testing.T) {
		for name, typ := range map[string]string{
			"token_sender_refresh_total":            "counter",
			"token_sender_refresh_duration_seconds": "histogram",
			"token_sender_delivery_total":           "counter",
			timestampNames[0]:                       "gauge",
			timestampNames[1]:                       "gauge",
			timestampNames[2]:                       "gauge",
		} {
			if e.typ[name] != typ {
				t.Errorf("%s: TYPE %q, want %q", name, e.typ[name], typ)
			}
			if !strings.HasSuffix(e.help[name], ".") || strings.HasPrefix(e.help[name], name) {
				t.Errorf("%s: HELP %q, want a sentence", name, e.help[name])
			}
		}
		if got := e.help["token_sender_refresh_total"]; got != "Token refresh attempts by result (success, transient_error, relogin_required)." {
			t.Errorf("refresh_total HELP %q", got)
		}
	})
	t.Run("refresh_total", func(t *testing.T) {
		// Recovered is followed by Refreshed: one success, not two.
		want := map[string]float64{"success": 1, "transient_error": 1, "relogin_required": 1}
		for r, w := range want {
			if got := e.value(t, "token_sender_refresh_total", "result", r); got != w {
				t.Errorf("refresh_total{result=%q} = %v, want %v", r, got, w)
			}
		}
		if n := len(e.series("token_sender_refresh_total")); n != 3 {
			t.Errorf("refresh_total has %d series, want 3", n)
		}
	})
	t.Run("refresh_duration_seconds", func(t *testing.T) {
		if got := e.value(t, "token_sender_refresh_duration_seconds_count"); got != 3 {
			t.Errorf("sample count %v, want 3", got)
		}
		if got := e.value(t, "token_sender_refresh_duration_seconds_sum"); math.Abs(got-2.5) > 1e-9 {
			t.Errorf("sample sum %v, want 2.5", got)
		}
		// 0.25 s, 0.75 s and 1.5 s, cumulative, in the same buckets as
		// before the move to VictoriaMetrics.
		want := map[string]float64{"0.1": 0, "0.25": 1, "0.5": 1, "1": 2, "2.5": 3, "5": 3, "10": 3, "30": 3, "60": 3, "+Inf": 3}
		if n := len(e.series("token_sender_refresh_duration_seconds_bucket")); n != len(want) {
			t.Errorf("%d buckets, want %d", n, len(want))
		}
		for le, w := range want {
			if got := e.value(t, "token_sender_refresh_duration_seconds_bucket", "le", le); got != w {
				t.Errorf("bucket le=%s has %v, want %v", le, got, w)
			}
		}
	})
	t.Run("timestamps", func(t *testing.T) {
		for name, want := range map[string]time.Time{
			"token_sender_access_token_expiry_timestamp_seconds":  expires,
			"token_sender_refresh_token_expiry_timestamp_seconds": login.Add(7 * 24 * time.Hour),
			"token_sender_last_refresh_success_timestamp_seconds": refreshedAt,
		} {
			if got := gaugeValue(t, e, name); got != float64(want.Unix()) {
				t.Errorf("%s = %v, want %v (%s)", name, got, want.Unix(), want)
			}
		}
	})
	t.Run("delivery_total", func(t *testing.T) {
		want := map[string]float64{"delivered": 2, "delivered_no_ack": 1, "not_found": 3, "failed": 1, "canceled": 1, "withheld": 2}
		for r, w := range want {
			if got := e.value(t, "token_sender_delivery_total", "result", r); got != w {
				t.Errorf("delivery_total{result=%q} = %v, want %v", r, got, w)
			}
		}
		if n := len(e.series("token_sender_delivery_total")); n != len(want) {
			t.Errorf("delivery_total has %d series, want %d (no label per socket)", n, len(want))
		}
	})
	t.Run("runtime", func(t *testing.T) {
		for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "go_gc_duration_seconds_count",
			"process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds", "process_max_fds"} {
			if len(e.series(name)) != 1 {
				t.Errorf("%s missing: Go runtime or process metrics not written", name)
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

// An outcome the metrics do not know yet still counts, as "unknown".
func TestMetrics_ObserveDelivery_unknownOutcome(t *testing.T) {
	m := New(nil)
	m.ObserveDelivery(delivery.Result{Outcome: delivery.Outcome(42)})
	var b bytes.Buffer
	m.WritePrometheus(&b)
	e := parseExposition(t, b.String())
	if got := e.value(t, "token_sender_delivery_total", "result", "unknown"); got != 1 {
		t.Errorf(`delivery_total{result="unknown"} = %v, want 1`, got)
	}
}

// Each Metrics has its own metrics: two in one process (tests, or a
// library user) do not count into each other, and none of it lands in the
// library's global set.
func TestMetrics_private(t *testing.T) {
	a, b := New(nil), New(nil)
	a.Observe(tokensender.Event{Kind: tokensender.EventRefreshed, At: start, Token: heldToken(expires, login), Duration: time.Second})
	a.ObserveDelivery(delivery.Result{Outcome: delivery.Delivered})
	a.NewGauge("token_sender_test_private", "Only in a.")
	var buf bytes.Buffer
	b.WritePrometheus(&buf)
	e := parseExposition(t, buf.String())
	if v := e.value(t, "token_sender_refresh_total", "result", "success"); v != 0 {
		t.Errorf("b counts a's refresh: %v", v)
	}
	if v := e.value(t, "token_sender_delivery_total", "result", "delivered"); v != 0 {
		t.Errorf("b counts a's delivery: %v", v)
	}
	if v := e.value(t, "token_sender_refresh_duration_seconds_count"); v != 0 {
		t.Errorf("b counts a's duration: %v", v)
	}
	if e.has("token_sender_test_private") || e.has(timestampNames[0]) {
		t.Error("b shows a's gauges")
	}
}

func TestMetrics_NewGauge(t *testing.T) {
	m := New(nil)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	g := m.NewGauge("token_sender_cluster_leader", "1 while this instance leads.\nA second line with a \\.")
	e := scrape(t, srv.URL)
	if got := gaugeValue(t, e, "token_sender_cluster_leader"); got != 0 || g.Value() != 0 {
		t.Errorf("new gauge = %v (Value %v), want 0", got, g.Value())
	}
	if got := e.help["token_sender_cluster_leader"]; got != "1 while this instance leads.\nA second line with a \\." {
		t.Errorf("HELP %q: not escaped and unescaped to the same text", got)
	}
	g.Set(1)
	if got := gaugeValue(t, scrape(t, srv.URL), "token_sender_cluster_leader"); got != 1 || g.Value() != 1 {
		t.Errorf("gauge after Set(1) = %v (Value %v), want 1", got, g.Value())
	}
	m.NewGauge("token_sender_cluster_available", "1 while in contact.").Set(0.5)
	if got := gaugeValue(t, scrape(t, srv.URL), "token_sender_cluster_available"); got != 0.5 {
		t.Errorf("second gauge = %v, want 0.5", got)
	}

	for _, name := range []string{
		"token_sender_cluster_leader", // twice
		"token_sender_refresh_total",  // one of New's
		timestampNames[1],             // one of New's, even while absent
		`token_sender_x{result="a"}`,  // labels
		"token-sender",                // not a metric name
		"",
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewGauge(%q) did not panic", name)
				}
			}()
			m.NewGauge(name, "help.")
		}()
	}
	parseExposition(t, func() string { var b bytes.Buffer; m.WritePrometheus(&b); return b.String() }())
}

func TestMetrics_Observe_unknownLoginTime(t *testing.T) {
	m := New(nil)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	m.Observe(tokensender.Event{Kind: tokensender.EventStarted, At: start, Token: heldToken(expires, login), RefreshTokenIssuedAt: login})
	if !scrape(t, srv.URL).has("token_sender_refresh_token_expiry_timestamp_seconds") {
		t.Fatal("refresh token expiry missing while the login time is known")
	}
	// A token from a file without refresh_token_issued_at: the login
	// time becomes unknown, and the old value must not linger.
	m.Observe(tokensender.Event{Kind: tokensender.EventRefreshed, At: start, Token: heldToken(expires, time.Time{})})
	if e := scrape(t, srv.URL); e.has("token_sender_refresh_token_expiry_timestamp_seconds") {
		t.Errorf("refresh token expiry exported with an unknown login time: %v", e.series("token_sender_refresh_token_expiry_timestamp_seconds"))
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
	if len(scrape(t, url).samples) == 0 {
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
