package main_test

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/schwabtools/token-refresh-sender/fakeschwab"
	"github.com/schwabtools/token-refresh-sender/internal/testkit"
	"github.com/schwabtools/token-refresh-sender/schwab"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// Login CSRF acted out (issue 10 item 2): while the operator's login waits,
// another local user (uid 65534) sends their own authorization code to the
// callback, without a state, with a guessed one, and an error without one.
// Each is answered 400 and logged as a WARNING; nothing of theirs is
// exchanged or written; the login then succeeds with the real redirect.
func TestLogin_forgedCallbackFromAnotherUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to act the attacker as uid 65534")
	}
	for _, tool := range []string{"setpriv", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found", tool)
		}
	}
	s := newSandbox(t)
	// A callback port of this test's own, and a fake that redirects there.
	callback := "https://127.0.0.1:" + strconv.Itoa(testkit.FreePort(t))
	s.fake = fakeschwab.New(fakeschwab.Config{AppKey: appKey, AppSecret: appSecret, CallbackURL: callback, Now: s.clock.now})
	srv, err := fakeschwab.StartTLS(s.fake)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	s.srv = srv
	s.write("fake-schwab.pem", string(srv.CertPEM), 0o644)
	s.write("configs/schwab_app_config.yaml", fmt.Sprintf(
		"app_name: E2E\napp_key: %s\napp_secret: %s\ncallback_url: %s\ntoken_url: %s\nauthorize_url: %s\n",
		appKey, appSecret, callback, srv.TokenURL, srv.AuthorizeURL), 0o600)
	before := snap(t, s.tokenFile)

	p := start(t, []string{"SSL_CERT_FILE=" + s.certFile}, s.args("login", "--no-browser", "--timeout", "1m")...)
	p.WaitFor("Waiting for the login callback", 1)
	var authorizeURL string
	for _, l := range p.Output() {
		if strings.HasPrefix(l, srv.AuthorizeURL+"?") {
			authorizeURL = strings.TrimSpace(l)
		}
	}
	if authorizeURL == "" {
		t.Fatalf("no authorize URL printed:\n%s", p.Text())
	}
	// The attacker's own login gives them a valid code.
	au, _ := url.Parse(authorizeURL)
	q := au.Query()
	state := q.Get("state")
	q.Set("state", "attacker")
	au.RawQuery = q.Encode()
	attackerCode, err := url.Parse(consent(t, srv, au.String()))
	if err != nil {
		t.Fatal(err)
	}
	code := attackerCode.Query().Get("code")
	for _, query := range []string{
		"code=" + url.QueryEscape(code) + "&session=0b6a5d1e-2f7c-4b8e-9a1d-3c5e7f9a1b2c",
		"code=" + url.QueryEscape(code) + "&state=guessed",
		"error=access_denied",
	} {
		out, err := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
			"curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", callback+"/?"+query).Output()
		if err != nil || string(out) != "400" {
			t.Errorf("attacker's request: HTTP %s, %v; want 400", out, err)
		}
	}
	p.WaitFor("WARNING: Refused a request to the login callback from 127.0.0.1:", 3)
	if st := s.fake.Stats(); st.TokenRequests != 0 {
		t.Fatalf("the attacker's code was sent to Schwab")
	}
	before.assertUnchanged(t)

	// The operator's real redirect still completes the login.
	browser := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // the callback's certificate is made per login
		Timeout: time.Minute}
	resp, err := browser.Get(consent(t, srv, authorizeURL))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if c := p.Wait(); c != 0 || resp.StatusCode != http.StatusOK {
		t.Fatalf("login: exit %d, callback HTTP %d:\n%s\n%s", c, resp.StatusCode, p.Text(), p.Stderr())
	}
	tok := mustToken(t, s.tokenFile)
	if !s.fake.ValidAccessToken(tok.AccessToken) {
		t.Error("token file does not hold the login's token")
	}
	// The attacker's code was never traded: it still works (for them).
	c := &schwab.Client{AppKey: appKey, AppSecret: appSecret, TokenURL: srv.TokenURL, HTTPClient: schwab.NewHTTPClient(srv.RootCAs)}
	if _, err := c.Exchange(t.Context(), code, callback); err != nil {
		t.Errorf("the attacker's code was used: %v", err)
	}
	if doc, err := tokenfile.Load(s.tokenFile); err != nil || doc.Token().AccessToken != tok.AccessToken {
		t.Errorf("token file changed after the login: %v", err)
	}
	for _, leak := range []string{code, url.QueryEscape(code), state} {
		for _, l := range p.Output() {
			if strings.Contains(l, "WARNING") && strings.Contains(l, leak) {
				t.Errorf("a warning leaks a code or state: %s", l)
			}
		}
	}
	s.assertNoSecrets(p.Text(), p.Stderr())
}
