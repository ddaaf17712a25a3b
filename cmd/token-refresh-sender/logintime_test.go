package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// writeLikeSchwabPy rewrites the token file the way schwab-py does: in
// place, with only creation_timestamp and token, dropping
// refresh_token_issued_at.
func writeLikeSchwabPy(t *testing.T, path string, tok tokensender.Token) {
	t.Helper()
	doc := map[string]any{
		"creation_timestamp": time.Now().Unix(),
		"token": map[string]any{
			"expires_in": tok.ExpiresIn, "token_type": "Bearer", "scope": "api",
			"refresh_token": tok.RefreshToken, "access_token": tok.AccessToken,
			"expires_at": tok.ExpiresAt.Unix(),
		},
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
}

func loginTime(t *testing.T, path string) (time.Time, bool) {
	t.Helper()
	doc, err := tokenfile.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return doc.RefreshTokenIssuedAt()
}

// Issue 12: the login time survives another program's rewrite of the file.
func TestRun_loginTimeSurvivesSchwabPyWrites(t *testing.T) {
	s := newSandbox(t)
	loggedIn := time.Now().Add(-6 * 24 * time.Hour).Truncate(time.Second)
	if err := tokenfile.Write(s.tokenFile, tokenfile.New(s.login, loggedIn)); err != nil {
		t.Fatal(err)
	}
	b := startBot(t, filepath.Join(s.dir, "bot.sock"), "OK")
	p := start(t, []string{"SSL_CERT_FILE=" + s.certFile}, s.args("run", "--socket", b.path)...)
	p.WaitFor("Next refresh at", 1)

	// Same refresh token, login time dropped: the next save puts it back.
	doc, err := tokenfile.Load(s.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	writeLikeSchwabPy(t, s.tokenFile, doc.Token())
	if _, ok := loginTime(t, s.tokenFile); ok {
		t.Fatal("the schwab-py style write kept refresh_token_issued_at")
	}
	p.Signal(syscall.SIGUSR1)
	p.WaitFor("Next refresh at", 2)
	if got, ok := loginTime(t, s.tokenFile); !ok || !got.Equal(loggedIn) {
		t.Errorf("after the next refresh the file's login time is %v (present %v), want %v restored", got, ok, loggedIn)
	}

	// A new login written by schwab-py, without a login time: recorded
	// when the daemon saw it.
	fresh := s.fake.Login()
	before := time.Now().Truncate(time.Second)
	writeLikeSchwabPy(t, s.tokenFile, fresh)
	p.WaitFor("The token file has a new refresh token (a new login); refreshing now", 1)
	p.WaitFor("Next refresh at", 3)
	after := time.Now()
	p.Signal(syscall.SIGINT)
	p.Wait()
	got, ok := loginTime(t, s.tokenFile)
	if !ok || got.Before(before) || got.After(after) {
		t.Errorf("login time of the new refresh token %v (present %v), want when the daemon saw it, between %v and %v", got, ok, before, after)
	}
}
