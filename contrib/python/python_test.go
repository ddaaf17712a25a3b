package python_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/schwabtools/token-refresh-sender/internal/testproc"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// The Python unittest suite against a token file the real binary wrote
// after a refresh against the fake Schwab: read_token, token_read_func, the
// `token` command and the torn-read race with an in-place writer.
func TestPythonHelper(t *testing.T) {
	inCI := os.Getenv("CI") != ""
	python, err := debianPython()
	if err != nil {
		if inCI {
			t.Fatal("python3 not found: CI must install it (apt-get install python3) to test contrib/python")
		}
		t.Skip("python3 not found: install it (apt-get install python3) to test contrib/python")
	}
	dir := testproc.ShortDir(t)
	sender, err := testproc.Build(dir, "github.com/schwabtools/token-refresh-sender/cmd/token-refresh-sender", "token-refresh-sender")
	if err != nil {
		t.Fatal(err)
	}

	sb := testproc.StartSchwab(t, dir, "py")
	fake, login, tokenFile, cfg, cert := sb.Fake, sb.Login, sb.TokenFile, sb.Config, sb.Cert
	refresh := exec.Command(sender, "refresh", "--config", cfg, "--token-file", tokenFile,
		"--socket", filepath.Join(dir, "none.sock"), "--log-file", "")
	refresh.Env = append(os.Environ(), "SSL_CERT_FILE="+cert)
	if out, err := refresh.CombinedOutput(); err != nil {
		t.Fatalf("refresh: %v\n%s", err, out)
	}
	doc, err := tokenfile.Load(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	fresh := doc.Token()
	if fresh.AccessToken == login.AccessToken || !fake.ValidAccessToken(fresh.AccessToken) {
		t.Fatal("refresh did not save a fresh access token")
	}

	// The limit is a safety net against a hang, not a timing assertion.
	ctx, cancel := context.WithTimeout(context.Background(), 2*testproc.WaitLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-m", "unittest", "-v", "test_schwab_token_file")
	cmd.Env = append(os.Environ(), "TRS_BINARY="+sender, "TRS_TOKEN_FILE="+tokenFile, "PYTHONDONTWRITEBYTECODE=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	text := out.String()
	if err != nil {
		t.Fatalf("python3 -m unittest: %v\n%s", err, text)
	}
	if !strings.Contains(text, "\nOK") {
		t.Errorf("python3 -m unittest did not report OK:\n%s", text)
	}
	// Outside CI the authlib tests may be skipped (no python3-authlib);
	// in CI every test must run.
	if strings.Contains(text, "skipped") && (inCI || strings.Contains(text, "TRS_BINARY")) {
		t.Errorf("python3 -m unittest skipped tests (CI needs apt-get install python3-authlib python3-httpx):\n%s", text)
	}
	for _, s := range []string{sb.Secret, login.RefreshToken, fresh.AccessToken, fresh.RefreshToken} {
		if strings.Contains(text, s) {
			t.Errorf("the Python tests printed a secret:\n%s", text)
		}
	}
	t.Logf("python3 -m unittest:\n%s", text)
}

// debianPython is Debian's python3 (the one apt's python3-authlib serves),
// or else the first python3 on PATH.
func debianPython() (string, error) {
	if fi, err := os.Stat("/usr/bin/python3"); err == nil && !fi.IsDir() {
		return "/usr/bin/python3", nil
	}
	return exec.LookPath("python3")
}
