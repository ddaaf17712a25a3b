package main

import (
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/fakeschwab"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

const (
	appKey    = "perf-key"
	appSecret = "perf-secret"
)

// server is a token server on loopback TLS, backed by a fakeschwab.Server.
type server struct {
	fake     *fakeschwab.Server
	tokenURL string
	certPEM  []byte
	close    func()
}

func (s *server) Close() { s.close() }

// startServer starts the named server: "fake" is fakeschwab.StartTLS as
// the tests use it; "split" serves the same fake through splitWrites on a
// listener whose connections have TCP_NODELAY set; "nagle" is split with
// TCP_NODELAY off, where the second write waits for the client's ACK of
// the first (delayed up to 40 ms on Linux).
func startServer(name string) (*server, error) {
	fake := fakeschwab.New(fakeschwab.Config{AppKey: appKey, AppSecret: appSecret, CallbackURL: "https://127.0.0.1:8182"})
	if name == "fake" {
		ts, err := fakeschwab.StartTLS(fake)
		if err != nil {
			return nil, err
		}
		return &server{fake: fake, tokenURL: ts.TokenURL, certPEM: ts.CertPEM, close: ts.Close}, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ts := &httptest.Server{
		Listener: noDelayListener{TCPListener: ln.(*net.TCPListener), noDelay: name != "nagle"},
		Config:   &http.Server{Handler: splitWrites(fake), ErrorLog: log.New(io.Discard, "", 0)},
	}
	ts.StartTLS() // HTTP/1.1 only: httptest offers h2 only with EnableHTTP2
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	return &server{fake: fake, tokenURL: ts.URL + fakeschwab.TokenPath, certPEM: cert, close: ts.Close}, nil
}

// splitWrites serves h's answer in two writes on the wire: the status line
// and headers (Content-Length set) are flushed on their own, then the body
// follows in a second TLS record.
func splitWrites(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		body := rec.Body.Bytes()
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		if err := http.NewResponseController(w).Flush(); err != nil {
			return
		}
		_, _ = w.Write(body)
	})
}

// noDelayListener sets TCP_NODELAY on (or off) on each accepted connection.
type noDelayListener struct {
	*net.TCPListener
	noDelay bool
}

func (l noDelayListener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	if err := c.SetNoDelay(l.noDelay); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// files are what the daemon is started with.
type files struct {
	dir, cert, config, tokens, socket string
	login                             func() tokensender.Token // a fresh login at the server
}

// writeFiles writes a CA bundle for SSL_CERT_FILE (the system's bundle
// plus the server's certificate: the daemon loads the system roots as it
// would in production), an app config pointing at the server, and a token
// file from a fresh login.
func (s *server) writeFiles(dir string) (files, error) {
	f := files{
		dir:    dir,
		cert:   filepath.Join(dir, "cert.pem"),
		config: filepath.Join(dir, "app.yaml"),
		tokens: filepath.Join(dir, "tokens.json"),
		socket: filepath.Join(dir, "bot.sock"),
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return f, err
	}
	if err := os.WriteFile(f.cert, append(systemBundle(), s.certPEM...), 0o644); err != nil {
		return f, err
	}
	app := "app_key: " + appKey + "\napp_secret: " + appSecret + "\ntoken_url: " + s.tokenURL + "\n"
	if err := os.WriteFile(f.config, []byte(app), 0o600); err != nil {
		return f, err
	}
	f.login = s.fake.Login
	return f, f.resetTokens()
}

// resetTokens writes a token file whose access token has just expired, as
// after a night with the daemon stopped: due at once in single-host and
// in cluster mode (where a new leader otherwise keeps the record's
// schedule).
func (f files) resetTokens() error {
	tok := f.login()
	tok.ExpiresAt = time.Now().Add(-time.Minute)
	return tokenfile.Write(f.tokens, tokenfile.New(tok, time.Now()))
}

// systemBundle is the system's CA bundle (the first found of the usual
// places), or nothing.
func systemBundle() []byte {
	for _, f := range []string{
		"/etc/ssl/certs/ca-certificates.crt",                // Debian, Ubuntu, Alpine
		"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // Fedora, RHEL
		"/etc/ssl/ca-bundle.pem",                            // openSUSE
	} {
		if b, err := os.ReadFile(f); err == nil {
			return b
		}
	}
	return nil
}
