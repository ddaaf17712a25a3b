package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ListenAddr checks a --metrics-addr value: host:port with a numeric port,
// and unless allowRemote a loopback host (127.0.0.0/8, ::1 or localhost),
// because the metrics and health endpoints have no authentication.
func ListenAddr(addr string, allowRemote bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--metrics-addr %q is not host:port: use e.g. 127.0.0.1:9464", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return fmt.Errorf("--metrics-addr %q: port %q is not a number from 0 to 65535: use e.g. 127.0.0.1:9464", addr, port)
	}
	if allowRemote || isLoopback(host) {
		return nil
	}
	what := "host " + strconv.Quote(host) + " is not a loopback address"
	if host == "" {
		what = "no host means every network interface"
	}
	return fmt.Errorf("--metrics-addr %q: %s; use 127.0.0.1:%s, or add --metrics-allow-remote to serve metrics to the network (they have no authentication)", addr, what, port)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	// An IPv6 zone ("::1%lo") does not change whether it is loopback.
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i]
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Server timeouts: scrapes are small and local.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	shutdownTimeout   = 5 * time.Second
)

// Serve listens on addr (check it with ListenAddr first) and serves Handler
// until ctx is cancelled, then shuts the server down. It returns nil after
// a shutdown caused by ctx, and an error if it cannot listen or the server
// fails.
func (m *Metrics) Serve(ctx context.Context, addr string, logger *slog.Logger) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("--metrics-addr %s: cannot listen: %w", addr, err)
	}
	return m.ServeListener(ctx, ln, logger)
}

// ServeListener is Serve on a listener the caller opened; it closes ln.
func (m *Metrics) ServeListener(ctx context.Context, ln net.Listener, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Handler:           m.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	logger.Info(fmt.Sprintf("Serving metrics on http://%s/metrics and health on http://%s/healthz", ln.Addr(), ln.Addr()))

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("metrics server on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics server on %s: %w", ln.Addr(), err)
	}
	return nil
}
