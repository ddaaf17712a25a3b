// Package metrics exposes the refresh loop's state to Prometheus and to
// health checks. It is built on github.com/VictoriaMetrics/metrics, a
// lighter library than the Prometheus client (issue 15): every Metrics
// holds its own metric sets (never the library's global default set), main
// builds it, feeds it the loop's events and delivery results, and serves
// Handler on --metrics-addr.
//
//	/metrics  Prometheus text format: token_sender_* with HELP and TYPE
//	          lines, then the library's Go runtime (go_*) and process
//	          (process_*) metrics
//	/healthz  200 while the access token the daemon holds is unexpired,
//	          503 with a one-line reason otherwise
//
// The library writes its HELP lines without text, and only when its global
// metadata switch (ExposeMetadata) is on; this package leaves that switch
// off and writes the HELP and TYPE lines of its own metrics itself.
package metrics

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	vmetrics "github.com/VictoriaMetrics/metrics"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/delivery"
	"github.com/schwabtools/token-refresh-sender/expiry"
	"github.com/schwabtools/token-refresh-sender/logging"
)

// DefaultRefreshTokenLifetime is how long Schwab's refresh token lives
// after the browser login.
const DefaultRefreshTokenLifetime = expiry.DefaultLifetime

// Values of the result label of token_sender_refresh_total.
const (
	RefreshSuccess         = "success"
	RefreshTransientError  = "transient_error"
	RefreshReloginRequired = "relogin_required"
)

// Metric names.
const (
	refreshTotalName  = "token_sender_refresh_total"
	durationName      = "token_sender_refresh_duration_seconds"
	deliveryTotalName = "token_sender_delivery_total"
	accessExpiryName  = "token_sender_access_token_expiry_timestamp_seconds"
	refreshExpiryName = "token_sender_refresh_token_expiry_timestamp_seconds"
	lastSuccessName   = "token_sender_last_refresh_success_timestamp_seconds"
)

// refreshBuckets cover a refresh request from a fast answer to the HTTP
// client's timeout.
var refreshBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// contentType is the Content-Type of /metrics: the Prometheus text format.
const contentType = "text/plain; version=0.0.4; charset=utf-8"

// Metrics holds the daemon's metrics and health state. Its methods are safe
// for concurrent use.
type Metrics struct {
	// RefreshTokenLifetime turns the login time into the refresh token's
	// expiry (--refresh-token-lifetime); New sets
	// DefaultRefreshTokenLifetime, and zero or less means it too. Change it
	// only before the first Observe.
	RefreshTokenLifetime time.Duration

	now      func() time.Time
	refresh  *vmetrics.Set // token_sender_refresh_total{result}
	duration *vmetrics.PrometheusHistogram
	delivery *vmetrics.Set // token_sender_delivery_total{result}

	mu          sync.Mutex
	families    []family  // in exposition order; NewGauge appends
	expiresAt   time.Time // access token held by the loop; zero: none yet
	issuedAt    time.Time // refresh token's login time; zero: unknown
	lastSuccess time.Time // zero: no successful refresh yet
}

// family is one metric name of /metrics: its HELP and TYPE lines, then the
// samples write gives. A family whose write gives no sample (a timestamp
// not known yet) is left out whole, metadata included.
type family struct {
	name, help, typ string
	write           func(io.Writer)
}

// New returns Metrics with its own metric sets, holding the token_sender_*
// metrics; /metrics adds the Go runtime and process metrics. now is the
// clock for /healthz; nil means time.Now.
func New(now func() time.Time) *Metrics {
	if now == nil {
		now = time.Now
	}
	durations := vmetrics.NewSet()
	m := &Metrics{
		RefreshTokenLifetime: DefaultRefreshTokenLifetime,
		now:                  now,
		refresh:              vmetrics.NewSet(),
		duration:             durations.NewPrometheusHistogramExt(durationName, refreshBuckets),
		delivery:             vmetrics.NewSet(),
	}
	// Every label value exists from the start, so rate() and alerts see
	// a 0 rather than a missing series.
	for _, r := range []string{RefreshSuccess, RefreshTransientError, RefreshReloginRequired} {
		m.refreshCounter(r)
	}
	for _, o := range []delivery.Outcome{delivery.Delivered, delivery.DeliveredNoAck, delivery.NotFound, delivery.Failed, delivery.Canceled, delivery.Withheld} {
		m.deliveryCounter(DeliveryResult(o))
	}
	m.families = []family{
		{refreshTotalName, "Token refresh attempts by result (success, transient_error, relogin_required).",
			"counter", m.refresh.WritePrometheus},
		{durationName, "How long each token refresh request to Schwab took.",
			"histogram", durations.WritePrometheus},
		{deliveryTotalName, "Token deliveries to trading bots by result (delivered, delivered_no_ack, not_found, failed, canceled, withheld).",
			"counter", m.delivery.WritePrometheus},
		timestampFamily(accessExpiryName, "When the access token the daemon holds expires (Unix time).",
			m.accessExpiry),
		timestampFamily(refreshExpiryName, "When the refresh token expires and a new browser login is needed (Unix time; absent when the login time is unknown).",
			m.refreshExpiry),
		timestampFamily(lastSuccessName, "When the last successful token refresh finished (Unix time).",
			m.lastRefreshSuccess),
	}
	return m
}

func (m *Metrics) refreshCounter(result string) *vmetrics.Counter {
	return m.refresh.GetOrCreateCounter(refreshTotalName + `{result="` + result + `"}`)
}

func (m *Metrics) deliveryCounter(result string) *vmetrics.Counter {
	return m.delivery.GetOrCreateCounter(deliveryTotalName + `{result="` + result + `"}`)
}

// Observe records one event from the refresh loop. It never blocks for
// long, so it can be called from daemon.Daemon.OnEvent.
func (m *Metrics) Observe(ev tokensender.Event) {
	m.mu.Lock()
	if !ev.Token.ExpiresAt.IsZero() {
		// The loop's current token wins, including an unknown login time.
		m.expiresAt = ev.Token.ExpiresAt
		m.issuedAt = ev.RefreshTokenIssuedAt
		if m.issuedAt.IsZero() {
			m.issuedAt = ev.Token.RefreshTokenIssuedAt
		}
	}
	if ev.Kind == tokensender.EventRefreshed {
		m.lastSuccess = ev.At
	}
	m.mu.Unlock()

	result := ""
	switch ev.Kind {
	case tokensender.EventRefreshed:
		result = RefreshSuccess
	case tokensender.EventRefreshFailed:
		result = RefreshTransientError
	case tokensender.EventReloginRequired:
		result = RefreshReloginRequired
	}
	if result != "" {
		m.refreshCounter(result).Inc()
		m.duration.Update(ev.Duration.Seconds())
	}
}

// ObserveDelivery records the final result of delivering one token to one
// target. The label is the outcome only, never the socket path, so the
// number of series stays fixed.
func (m *Metrics) ObserveDelivery(r delivery.Result) {
	m.deliveryCounter(DeliveryResult(r.Outcome)).Inc()
}

// DeliveryResult is the result label for an outcome: delivered,
// delivered_no_ack, not_found, failed, canceled, withheld (unknown for
// anything else); the same word as the delivery log lines' result field.
func DeliveryResult(o delivery.Outcome) string { return o.Label() }

// Health reports whether the access token the daemon holds is unexpired,
// and if not, why, in one line.
func (m *Metrics) Health() (ok bool, reason string) {
	exp := m.accessExpiry()
	switch {
	case exp.IsZero():
		return false, "no token yet"
	case !m.now().Before(exp):
		return false, "access token expired at " + exp.Format(logging.TimeLayout)
	}
	return true, "ok: access token valid until " + exp.Format(logging.TimeLayout)
}

// Gauge is a settable gauge on /metrics, made by NewGauge. Its methods are
// safe for concurrent use.
type Gauge struct{ g *vmetrics.Gauge }

// Set sets the gauge to v.
func (g *Gauge) Set(v float64) { g.g.Set(v) }

// Value is the gauge's current value.
func (g *Gauge) Value() float64 { return g.g.Get() }

// NewGauge adds a gauge named name (a bare metric name, no labels) with
// the HELP text help to /metrics, for metrics another part of the program
// owns (cluster mode's). It starts at 0. Like registering a metric twice,
// a name already on /metrics or one that is not a valid metric name is a
// programming error: NewGauge panics.
func (m *Metrics) NewGauge(name, help string) *Gauge {
	if strings.ContainsAny(name, "{}") {
		panic(fmt.Sprintf("metrics: gauge %q: want a metric name without labels", name))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range m.families {
		if f.name == name {
			panic(fmt.Sprintf("metrics: gauge %q: the name is already on /metrics", name))
		}
	}
	set := vmetrics.NewSet()
	g := &Gauge{set.NewGauge(name, nil)} // panics on an invalid name
	m.families = append(m.families, family{name, help, "gauge", set.WritePrometheus})
	return g
}

// WritePrometheus writes every metric to w in the Prometheus text format,
// as GET /metrics serves it: the token_sender_* families (and NewGauge's)
// with HELP and TYPE lines, then the Go runtime and process metrics.
func (m *Metrics) WritePrometheus(w io.Writer) {
	m.mu.Lock()
	families := m.families // NewGauge only appends: the elements never change
	m.mu.Unlock()
	var samples bytes.Buffer
	for _, f := range families {
		samples.Reset()
		f.write(&samples)
		if samples.Len() == 0 {
			continue
		}
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", f.name, helpEscaper.Replace(f.help), f.name, f.typ)
		w.Write(samples.Bytes())
	}
	// go_*, process_* (a part of /proc that cannot be read costs its own
	// series, not the scrape), and process_open_fds, process_max_fds.
	vmetrics.WriteProcessMetrics(w)
	vmetrics.WriteFDMetrics(w)
}

// helpEscaper escapes a HELP text as the text format requires.
var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)

// Handler serves /metrics and /healthz.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		var body bytes.Buffer
		m.WritePrometheus(&body)
		w.Header().Set("Content-Type", contentType)
		w.Write(body.Bytes())
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		ok, reason := m.Health()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, reason)
	})
	return mux
}

// timestampFamily is a gauge family whose one sample is the Unix time at
// returns. A time not known (zero: no token yet, login time unknown, no
// success yet) is left out rather than exported as 0, so absent() tells
// "unknown" from "expired".
func timestampFamily(name, help string, at func() time.Time) family {
	return family{name, help, "gauge", func(w io.Writer) {
		if t := at(); !t.IsZero() {
			vmetrics.WriteGaugeFloat64(w, name, unixSeconds(t))
		}
	}}
}

func (m *Metrics) accessExpiry() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.expiresAt
}

func (m *Metrics) refreshExpiry() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, _ := expiry.ExpiresAt(m.issuedAt, m.RefreshTokenLifetime)
	return t
}

func (m *Metrics) lastRefreshSuccess() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastSuccess
}

func unixSeconds(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}
