package fakeschwab

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
)

// TLSServer is a running HTTPS listener for a Server.
type TLSServer struct {
	URL          string // base URL, https://127.0.0.1:port
	TokenURL     string
	AuthorizeURL string
	// RootCAs trusts the server's self-signed certificate (valid for
	// 127.0.0.1, ::1 and example.com).
	RootCAs *x509.CertPool
	// CertPEM is the same certificate PEM-encoded, for a subprocess to
	// trust through SSL_CERT_FILE.
	CertPEM []byte

	ts *httptest.Server
}

// Close stops the listener and closes open connections.
func (t *TLSServer) Close() { t.ts.Close() }

// StartTLS serves s over HTTPS on a free port of 127.0.0.1. TLS handshake
// errors from clients that do not trust the certificate are not logged.
// With Config.SplitWrites, accepted connections have Nagle's algorithm on.
func StartTLS(s *Server) (*TLSServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start fake Schwab: listen on 127.0.0.1: %w", err)
	}
	if s.cfg.SplitWrites {
		ln = nagleListener{ln}
	}
	ts := &httptest.Server{
		Listener: ln,
		Config:   &http.Server{Handler: s, ErrorLog: log.New(io.Discard, "", 0)},
	}
	ts.StartTLS()
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	return &TLSServer{
		URL:          ts.URL,
		TokenURL:     ts.URL + TokenPath,
		AuthorizeURL: ts.URL + AuthorizePath,
		RootCAs:      pool,
		CertPEM:      pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}),
		ts:           ts,
	}, nil
}

// nagleListener turns Nagle's algorithm back on for accepted connections
// (Go turns it off).
type nagleListener struct{ net.Listener }

func (l nagleListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(false)
	}
	return c, err
}
