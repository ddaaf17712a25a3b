package testproc

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/fakeschwab"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// Schwab is a fake Schwab over TLS with what the binary needs to use it,
// written into a directory: an app config (Config) pointing at the fake, a
// token file (TokenFile) from a fresh login, and the fake's certificate
// (Cert; give the binary SSL_CERT_FILE=Cert).
type Schwab struct {
	Fake   *fakeschwab.Server
	Server *fakeschwab.TLSServer
	// Login is the token set the token file starts with; Secret the app
	// secret (both must never appear in any output).
	Login                   tokensender.Token
	Secret                  string
	Config, TokenFile, Cert string
}

// StartSchwab starts the fake for an app named name (its key and secret
// derive from it) and writes name-app.yaml, name-tokens.json and
// fake-schwab.pem into dir. The server stops when the test ends.
func StartSchwab(tb testing.TB, dir, name string) *Schwab {
	tb.Helper()
	const callback = "https://127.0.0.1:8182"
	key, secret := name+"-app-key", name+"-app-secret-0123456789"
	fake := fakeschwab.New(fakeschwab.Config{AppKey: key, AppSecret: secret, CallbackURL: callback})
	srv, err := fakeschwab.StartTLS(fake)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(srv.Close)
	s := &Schwab{Fake: fake, Server: srv, Login: fake.Login(), Secret: secret,
		Config:    filepath.Join(dir, name+"-app.yaml"),
		TokenFile: filepath.Join(dir, name+"-tokens.json"),
		Cert:      filepath.Join(dir, "fake-schwab.pem"),
	}
	if err := tokenfile.Write(s.TokenFile, tokenfile.New(s.Login, time.Now())); err != nil {
		tb.Fatal(err)
	}
	writePrivate(tb, s.Cert, string(srv.CertPEM))
	writePrivate(tb, s.Config, fmt.Sprintf("app_key: %s\napp_secret: %s\ncallback_url: %s\ntoken_url: %s\n",
		key, secret, callback, srv.TokenURL))
	return s
}

func writePrivate(tb testing.TB, path, content string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
}
