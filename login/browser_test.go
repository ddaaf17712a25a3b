package login

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// findChromium returns the path of a Chromium or Chrome binary, or skips.
func findChromium(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	tb.Skip("no chromium binary found (install Debian's chromium package; .ci/run does)")
	return ""
}

// TestRun_Browser logs in with a real headless Chromium: it opens the
// authorize page of fake Schwab, clicks Allow, follows the redirect to the
// callback server (accepting its self-signed certificate) and waits for the
// success page.
func TestRun_Browser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	chromium := findChromium(t)
	e := newEnv(t)
	old := writeOldFile(t, e.tokenFile)

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	r := start(t, ctx, e.options())
	authURL := r.ready(t)

	allocOpts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.IgnoreCertErrors,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "chromium-profile")),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, allocOpts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer bcancel()

	if err := chromedp.Do(bctx,
		chromedp.Navigate(authURL),
		chromedp.WaitVisible(chromedp.ID("allow")),
		chromedp.Click(chromedp.ID("allow")),
		chromedp.WaitVisible(chromedp.ID("result")),
	); err != nil {
		t.Fatalf("browser: %v", err)
	}
	text, err := chromedp.Run(bctx, chromedp.Text(chromedp.ID("result")))
	if err != nil {
		t.Fatal(err)
	}
	if text != "Login complete. You can close this tab." {
		t.Errorf("#result = %q", text)
	}
	title, err := chromedp.Run(bctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	if title != "token-refresh-sender - Logged in" {
		t.Errorf("title = %q", title)
	}
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.ArtifactDir(), "login-success.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the success page: %s (kept with go test -artifacts)", shot)

	res, err := r.wait(t)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	doc, err := tokenfile.Load(e.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if tok := doc.Token(); !sameToken(tok, res.Token) || !e.fake.ValidAccessToken(tok.AccessToken) {
		t.Error("token file does not hold the new, valid token")
	}
	if got, _ := os.ReadFile(e.tokenFile); string(got) == string(old) {
		t.Error("token file was not replaced")
	}
}
