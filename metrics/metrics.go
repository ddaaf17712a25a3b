// Package metrics exposes the refresh loop's state to Prometheus and to
// health checks. Metrics lives in a private registry (never the global
// one): main builds it, feeds it the loop's events and delivery results,
// and serves Handler on --metrics-addr.
//
//	/metrics  Prometheus text format: token_sender_* plus Go runtime and
//	          process metrics
//	/healthz  200 while the access token the daemon holds is unexpired,
//	          503 with a one-line reason otherwise
package metrics

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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

// refreshBuckets cover a refresh request from a fast answer to the HTTP
// client's timeout.
var refreshBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Metrics holds the daemon's metrics and health state. Its methods are safe
// for concurrent use.
type Metrics struct {
	// RefreshTokenLifetime turns the login time into the refresh token's
	// expiry (--refresh-token-lifetime); New sets
	// DefaultRefreshTokenLifetime, and zero or less means it too. Change it
	// only before the first Observe.
	RefreshTokenLifetime time.Duration

	now      func() time.Time
	registry *prometheus.Registry
	refresh  *prometheus.CounterVec
	duration prometheus.Histogram
	delivery *prometheus.CounterVec

	mu          sync.Mutex
	expiresAt   time.Time // access token held by the loop; zero: none yet
	issuedAt    time.Time // refresh token's login time; zero: unknown
	lastSuccess time.Time // zero: no successful refresh yet
}

// New returns Metrics with its own registry, holding the token_sender_*
// metrics and the Go runtime and process collectors. now is the clock for
// /healthz; nil means time.Now.
func New(now func() time.Time) *Metrics {
	if now == nil {
		now = time.Now
	}
	m := &Metrics{
		RefreshTokenLifetime: DefaultRefreshTokenLifetime,
		now:                  now,
		registry:             prometheus.NewRegistry(),
		refresh: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "token_sender_refresh_total",
			Help: "Token refresh attempts by result (success, transient_error, relogin_required).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "token_sender_refresh_duration_seconds",
			Help:    "How long each token refresh request to Schwab took.",
			Buckets: refreshBuckets,
		}),
		delivery: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "token_sender_delivery_total",
			Help: "Token deliveries to trading bots by result (delivered, delivered_no_ack, not_found, failed, canceled, withheld).",
		}, []string{"result"}),
	}
	// Every label value exists from the start, so rate() and alerts see
	// a 0 rather than a missing series.
	for _, r := range []string{RefreshSuccess, RefreshTransientError, RefreshReloginRequired} {
		m.refresh.WithLabelValues(r)
	}
	for _, o := range []delivery.Outcome{delivery.Delivered, delivery.DeliveredNoAck, delivery.NotFound, delivery.Failed, delivery.Canceled, delivery.Withheld} {
		m.delivery.WithLabelValues(DeliveryResult(o))
	}
	m.registry.MustRegister(
		m.refresh, m.duration, m.delivery,
		stateCollector{m},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Registry is the private registry, for tests and for adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

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
		m.refresh.WithLabelValues(result).Inc()
		m.duration.Observe(ev.Duration.Seconds())
	}
}

// ObserveDelivery records the final result of delivering one token to one
// target. The label is the outcome only, never the socket path, so the
// number of series stays fixed.
func (m *Metrics) ObserveDelivery(r delivery.Result) {
	m.delivery.WithLabelValues(DeliveryResult(r.Outcome)).Inc()
}

// DeliveryResult is the result label for an outcome: delivered,
// delivered_no_ack, not_found, failed, canceled, withheld (unknown for
// anything else).
func DeliveryResult(o delivery.Outcome) string {
	switch o {
	case delivery.Delivered:
		return "delivered"
	case delivery.DeliveredNoAck:
		return "delivered_no_ack"
	case delivery.NotFound:
		return "not_found"
	case delivery.Failed:
		return "failed"
	case delivery.Canceled:
		return "canceled"
	case delivery.Withheld:
		return "withheld"
	}
	return "unknown"
}

// Health reports whether the access token the daemon holds is unexpired,
// and if not, why, in one line.
func (m *Metrics) Health() (ok bool, reason string) {
	m.mu.Lock()
	exp := m.expiresAt
	m.mu.Unlock()
	switch {
	case exp.IsZero():
		return false, "no token yet"
	case !m.now().Before(exp):
		return false, "access token expired at " + exp.Format(logging.TimeLayout)
	}
	return true, "ok: access token valid until " + exp.Format(logging.TimeLayout)
}

// Handler serves /metrics and /healthz.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		// A collector that fails (a hardened unit may hide parts of
		// /proc) costs its own series, not the whole scrape; failures
		// are counted in promhttp_metric_handler_errors_total.
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.registry,
	}))
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

// stateCollector exports the timestamps Metrics holds. A timestamp that is
// not known (no token yet, login time unknown, no success yet) is left out
// rather than exported as 0, so absent() tells "unknown" from "expired".
type stateCollector struct{ m *Metrics }

var (
	accessExpiryDesc = prometheus.NewDesc("token_sender_access_token_expiry_timestamp_seconds",
		"When the access token the daemon holds expires (Unix time).", nil, nil)
	refreshExpiryDesc = prometheus.NewDesc("token_sender_refresh_token_expiry_timestamp_seconds",
		"When the refresh token expires and a new browser login is needed (Unix time; absent when the login time is unknown).", nil, nil)
	lastSuccessDesc = prometheus.NewDesc("token_sender_last_refresh_success_timestamp_seconds",
		"When the last successful token refresh finished (Unix time).", nil, nil)
)

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- accessExpiryDesc
	ch <- refreshExpiryDesc
	ch <- lastSuccessDesc
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	exp, issued, last := c.m.expiresAt, c.m.issuedAt, c.m.lastSuccess
	lifetime := c.m.RefreshTokenLifetime
	c.m.mu.Unlock()
	gauge := func(d *prometheus.Desc, t time.Time) {
		if !t.IsZero() {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, unixSeconds(t))
		}
	}
	gauge(accessExpiryDesc, exp)
	if refreshExp, ok := expiry.ExpiresAt(issued, lifetime); ok {
		gauge(refreshExpiryDesc, refreshExp)
	}
	gauge(lastSuccessDesc, last)
}

func unixSeconds(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}
