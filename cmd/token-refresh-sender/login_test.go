package main_test

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/schwabtools/token-refresh-sender/fakeschwab"
	"github.com/schwabtools/token-refresh-sender/internal/testproc"
)

// consent plays the user's browser on fakeschwab's login page: open the
// authorize URL, click Allow, and return where Schwab redirects to.
func consent(t *testing.T, srv *fakeschwab.TLSServer, authorizeURL string) string {
	t.Helper()
	c := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: tlsTrusting(srv)},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := c.Get(authorizeURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `id="allow"`) {
		t.Fatalf("authorize page: HTTP %d\n%s", resp.StatusCode, page)
	}
	u, _ := url.Parse(authorizeURL)
	form := url.Values{"decision": {"allow"}, "redirect_uri": {u.Query().Get("redirect_uri")}, "state": {u.Query().Get("state")}, "client_id": {u.Query().Get("client_id")}}
	resp, err = c.PostForm(srv.AuthorizeURL, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.Contains(loc, "code=") {
		t.Fatalf("consent: HTTP %d, Location %q", resp.StatusCode, loc)
	}
	return loc
}

// readAuthorizeURL reads a login's stdout into out until it has printed
// the authorize URL (a line starting with authorizeBase?) and returns it;
// the test fails, showing out and stderr, when it never comes.
func readAuthorizeURL(t *testing.T, stdout io.Reader, authorizeBase string, out, stderr *strings.Builder) string {
	t.Helper()
	buf := make([]byte, 4096)
	deadline := time.Now().Add(testproc.WaitLimit)
	for time.Now().Before(deadline) {
		n, err := stdout.Read(buf)
		out.Write(buf[:n])
		for _, line := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(line, authorizeBase+"?") {
				return strings.TrimSpace(line)
			}
		}
		if err != nil {
			break
		}
	}
	t.Fatalf("no authorize URL printed:\n%s\n%s", out.String(), stderr.String())
	return ""
}

// runManualLogin runs the binary's login with args (a --manual one), plays
// the user: pastes answer(the authorize URL it printed) on its standard
// input, and returns its standard output and error once it has succeeded.
func runManualLogin(t *testing.T, s *sandbox, args []string, answer func(authorizeURL string) string) (stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+s.certFile)
	stdin, _ := cmd.StdinPipe()
	stdoutPipe, _ := cmd.StdoutPipe()
	var out, errOut strings.Builder
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	authorizeURL := readAuthorizeURL(t, stdoutPipe, s.srv.AuthorizeURL, &out, &errOut)
	io.WriteString(stdin, answer(authorizeURL)+"\n")
	rest, _ := io.ReadAll(stdoutPipe)
	out.Write(rest)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("login: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	return out.String(), errOut.String()
}

// The first login, on a headless server: the binary prints the URL, the
// user pastes the redirect address, the token file is written 0600.
func TestLogin_manualPasteWritesTokenFile(t *testing.T) {
	s := newSandbox(t)
	s.write("configs/schwab_app_config.yaml", "app_key: "+appKey+"\napp_secret: "+appSecret+
		"\ncallback_url: https://127.0.0.1:8182\ntoken_url: "+s.srv.TokenURL+"\nauthorize_url: "+s.srv.AuthorizeURL+"\n", 0o600)
	if err := os.Remove(s.tokenFile); err != nil {
		t.Fatal(err)
	}

	var redirect string
	out, stderr := runManualLogin(t, s, s.args("login", "--manual", "--no-browser", "--timeout", "1m"), func(authorizeURL string) string {
		redirect = consent(t, s.srv, authorizeURL)
		return "  '" + redirect + "'  "
	})
	if !strings.Contains(out, "Logged in") {
		t.Errorf("no summary:\n%s", out)
	}
	tok := mustToken(t, s.tokenFile)
	if !s.fake.ValidAccessToken(tok.AccessToken) {
		t.Error("token file does not hold a working access token")
	}
	if fi, _ := os.Stat(s.tokenFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	ru, err := url.Parse(redirect)
	if err != nil {
		t.Fatal(err)
	}
	code := ru.Query().Get("code")
	for _, leak := range []string{appSecret, tok.AccessToken, tok.RefreshToken, code} {
		if strings.Contains(out, leak) || strings.Contains(stderr, leak) {
			t.Errorf("output leaks a secret")
		}
	}
}
