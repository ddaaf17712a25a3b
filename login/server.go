package login

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// selfSignedCert makes a certificate for 127.0.0.1, ::1 and localhost,
// valid from an hour before now for a day. It lives only in memory.
func selfSignedCert(now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate callback certificate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate callback certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "token-refresh-sender login callback"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create callback certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("parse callback certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// listen opens the callback port on the callback's host; for "localhost"
// on both 127.0.0.1 and ::1 (the latter only where IPv6 is available).
func listen(cb *url.URL) ([]net.Listener, error) {
	port := cb.Port()
	hosts := []string{cb.Hostname()}
	if strings.EqualFold(cb.Hostname(), "localhost") {
		hosts = []string{"127.0.0.1", "::1"}
	}
	var lns []net.Listener
	for i, h := range hosts {
		addr := net.JoinHostPort(h, port)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			noIPv6 := errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT)
			if i > 0 && noIPv6 {
				continue // no IPv6 here; browsers then use 127.0.0.1
			}
			for _, l := range lns {
				l.Close()
			}
			return nil, listenError(addr, port, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func listenError(addr, port string, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("cannot listen on %s for the login callback: port %s is already in use (is another login running?): %w",
			addr, port, syscall.EADDRINUSE)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("cannot listen on %s for the login callback: permission denied (ports below 1024 need root; register a callback URL with a higher port, such as https://127.0.0.1:8182, and set callback_url to it): %w",
			addr, syscall.EACCES)
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return fmt.Errorf("cannot listen on %s for the login callback: %s: %w", addr, reason(oe.Err), err)
	}
	return fmt.Errorf("cannot listen on %s for the login callback: %w", addr, err)
}

// outcome is how a login ended.
type outcome struct {
	res *Result
	err error
}

// runServer serves the callback URL until a code arrives and is exchanged,
// the user denies, the timeout passes or ctx is done.
func (f *flow) runServer(ctx context.Context) (*Result, error) {
	cert, err := selfSignedCert(f.now())
	if err != nil {
		return nil, err
	}
	lns, err := listen(f.callback)
	if err != nil {
		return nil, err
	}
	h := &callbackHandler{flow: f, ctx: ctx, done: make(chan outcome, 1)}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       20 * time.Second,
		// The answer waits for the exchange (up to 30s) and the lock.
		WriteTimeout:   2 * time.Minute,
		IdleTimeout:    30 * time.Second,
		MaxHeaderBytes: 64 << 10,
		// Browsers abort handshakes while they warn about the self-signed
		// certificate; that is expected, not worth an INFO line.
		ErrorLog: slog.NewLogLogger(f.log.Handler(), slog.LevelDebug),
	}
	var wg sync.WaitGroup
	for _, ln := range lns {
		wg.Go(func() { _ = srv.ServeTLS(ln, "", "") })
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
		wg.Wait()
	}()

	f.announce()
	f.log.Info(fmt.Sprintf("Waiting for the login callback on %s://%s ...", f.callback.Scheme, f.callback.Host),
		"timeout", f.opts.Timeout.String())
	f.log.Info("The browser will warn that the connection to " + f.callback.Hostname() +
		" is not private: the callback uses a certificate made for this login; choose Advanced, then Proceed")
	if f.opts.Ready != nil {
		f.opts.Ready(f.authURL)
	}

	timer := time.NewTimer(f.opts.Timeout)
	defer timer.Stop()
	select {
	case o := <-h.done:
		return o.res, o.err
	case <-timer.C:
		if h.claim() {
			return nil, newError(ErrTimeout, nil,
				"no login callback within %v: run login again and click Allow in time; if Schwab showed an error page, check that callback_url in %s matches your app's registered callback URL exactly; if the browser runs on another machine, use manual mode",
				f.opts.Timeout, f.opts.App.Path)
		}
	case <-ctx.Done():
		if h.claim() {
			return nil, fmt.Errorf("login cancelled while waiting for the callback: %w", context.Cause(ctx))
		}
	}
	// A callback arrived just in time and is being handled: let it finish.
	o := <-h.done
	return o.res, o.err
}

// callbackHandler answers the browser's requests to the callback URL.
type callbackHandler struct {
	flow    *flow
	ctx     context.Context
	claimed atomic.Bool // the login's outcome is decided (or being decided)
	done    chan outcome
}

// claim reports whether the caller is the one that decides the outcome.
func (h *callbackHandler) claim() bool { return h.claimed.CompareAndSwap(false, true) }

func (h *callbackHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q, qerr := url.ParseQuery(r.URL.RawQuery)
	code, err := readRedirect(q, h.flow.state)
	switch {
	case qerr != nil && (err == nil || errors.Is(err, errNoCode)):
		h.flow.log.Warn("Ignored a request to the callback with a malformed address", "path", clean(r.URL.Path))
		renderPage(w, http.StatusBadRequest, failedPage("The address is damaged (malformed query). Run login again."))
		return
	case errors.Is(err, errNoCode):
		http.NotFound(w, r) // a favicon or a probe: keep waiting
		return
	case errors.Is(err, ErrStateMismatch):
		// A stale tab, or another user's code sent to us (login CSRF):
		// refuse it and keep waiting for the real redirect.
		h.flow.log.Warn("Refused a request to the login callback from " + clean(r.RemoteAddr) + ": it " + err.Error() +
			" (an old login page, or a forged request); still waiting for the redirect from this login")
		renderPage(w, http.StatusBadRequest, page{
			Title:   "token-refresh-sender - Not this login",
			Heading: "Not this login",
			ID:      "error",
			Message: "This address " + err.Error() + "; it was refused.",
			Detail:  "If you started this login, open the newest login page the terminal printed and click Allow there; the login is still waiting.",
		})
		return
	}
	if !h.claim() {
		renderPage(w, http.StatusConflict, failedPage("This login has already ended. Look at the terminal; run login again if needed."))
		return
	}
	var o outcome
	if err != nil {
		o.err = err
	} else {
		o.res, o.err = h.flow.complete(h.ctx, code)
	}
	if o.err != nil {
		renderPage(w, http.StatusBadRequest, failedPage("Login failed: "+o.err.Error()))
	} else {
		renderPage(w, http.StatusOK, page{
			Title:   "token-refresh-sender - Logged in",
			Heading: "Logged in to Schwab",
			ID:      "result",
			Message: "Login complete. You can close this tab.",
			Detail: fmt.Sprintf("Tokens were saved to %s. The next login is due by %s.",
				o.res.TokenFile, o.res.RefreshTokenExpiresAt.Format(timeLayout)),
		})
	}
	h.done <- o
}

// page is the content of a small HTML answer.
type page struct {
	Title, Heading, ID, Message, Detail string
}

func failedPage(msg string) page {
	return page{
		Title:   "token-refresh-sender - Login failed",
		Heading: "Login failed",
		ID:      "error",
		Message: msg,
	}
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{{.Title}}</title></head>
<body style="font-family: sans-serif; margin: 3em;">
<h1>{{.Heading}}</h1>
<p id="{{.ID}}">{{.Message}}</p>
{{if .Detail}}<p id="detail">{{.Detail}}</p>{{end}}
</body>
</html>
`))

func renderPage(w http.ResponseWriter, status int, p page) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, p)
}
