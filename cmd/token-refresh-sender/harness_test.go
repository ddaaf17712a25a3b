package main_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/fakeschwab"
	"github.com/schwabtools/token-refresh-sender/internal/testproc"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

var update = flag.Bool("update", false, "rewrite golden files")

// binary is the token-refresh-sender built once for all end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "trs-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary, err = testproc.Build(dir, ".", "token-refresh-sender")
	if err == nil {
		// The cluster build goes next to it, where the default build
		// hands --etcd-endpoints over (cluster_e2e_test.go runs it so).
		_, err = testproc.Build(dir, ".", "token-refresh-sender-cluster", "-tags", "cluster")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	appKey    = "e2e-app-key-0123456789"
	appSecret = "e2e-app-secret-do-not-log-9f8e7d"
)

// sandbox is a directory with an app config, a token file and a fake
// Schwab that the binary trusts through SSL_CERT_FILE.
type sandbox struct {
	t         *testing.T
	dir       string
	config    string
	tokenFile string
	certFile  string
	fake      *fakeschwab.Server
	srv       *fakeschwab.TLSServer
	login     tokensender.Token
	clock     *offsetClock
}

// offsetClock lets a test move fakeschwab's clock forward.
type offsetClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *offsetClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *offsetClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	return newSandboxLifetime(t, 0)
}

// newSandboxLifetime is newSandbox with access tokens living lifetime
// (0: fakeschwab's default, 30 minutes).
func newSandboxLifetime(t *testing.T, lifetime time.Duration) *sandbox {
	t.Helper()
	s := &sandbox{t: t, dir: testproc.ShortDir(t), clock: &offsetClock{}}
	s.fake = fakeschwab.New(fakeschwab.Config{AppKey: appKey, AppSecret: appSecret, CallbackURL: "https://127.0.0.1:8182",
		AccessTokenLifetime: lifetime, Now: s.clock.now})
	srv, err := fakeschwab.StartTLS(s.fake)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	s.srv = srv
	s.certFile = filepath.Join(s.dir, "fake-schwab.pem")
	s.write("fake-schwab.pem", string(srv.CertPEM), 0o644)
	s.config = s.write("configs/schwab_app_config.yaml", fmt.Sprintf(
		"app_name: E2E\napp_key: %s\napp_secret: %s\ncallback_url: https://127.0.0.1:8182\ntoken_url: %s\n",
		appKey, appSecret, srv.TokenURL), 0o600)
	s.login = s.fake.Login()
	s.tokenFile = filepath.Join(s.dir, "configs", "schwab_tokens.json")
	if err := tokenfile.Write(s.tokenFile, tokenfile.New(s.login, time.Now())); err != nil {
		t.Fatal(err)
	}
	return s
}

// write creates dir/rel with content and mode, returning its path.
func (s *sandbox) write(rel, content string, mode os.FileMode) string {
	s.t.Helper()
	path := filepath.Join(s.dir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		s.t.Fatal(err)
	}
	return path
}

// args are the flags pointing the binary at the sandbox.
func (s *sandbox) args(cmd string, extra ...string) []string {
	return append([]string{cmd, "--config", s.config, "--token-file", s.tokenFile,
		"--log-file", filepath.Join(s.dir, "logs", "token_refresh_sender.log")}, extra...)
}

// secrets are the strings no output may contain.
func (s *sandbox) secrets() []string {
	out := []string{appSecret, s.login.AccessToken, s.login.RefreshToken}
	if doc, err := tokenfile.Load(s.tokenFile); err == nil {
		out = append(out, doc.Token().AccessToken, doc.Token().RefreshToken)
	}
	return out
}

// assertNoSecrets fails if any output contains a whole token or the secret.
func (s *sandbox) assertNoSecrets(outputs ...string) {
	s.t.Helper()
	for _, out := range outputs {
		for _, secret := range s.secrets() {
			if secret != "" && strings.Contains(out, secret) {
				s.t.Errorf("output contains a secret (%s):\n%s", tokensender.Redact(secret), out)
			}
		}
	}
}

// start runs the binary in the background.
func start(t *testing.T, env []string, args ...string) *testproc.Proc {
	t.Helper()
	return testproc.Start(t, "token-refresh-sender", env, binary, args...)
}

// runToEnd runs the binary to completion and returns stdout, stderr and the exit code.
func runToEnd(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	return runBinaryToEnd(t, binary, env, args...)
}

// runBinaryToEnd is runToEnd for another build of the program.
func runBinaryToEnd(t *testing.T, bin string, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return stdout.String(), stderr.String(), ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), 0
}

// bot is a raw Unix-socket receiver recording the exact bytes of each message.
type bot struct {
	path     string
	mu       sync.Mutex
	messages [][]byte
}

// startBot listens on the Unix socket path; answer is written after each
// message ("" closes without answering).
func startBot(t *testing.T, path, answer string) *bot {
	t.Helper()
	return listenBot(t, "unix", path, answer)
}

// listenBot is a bot on any network (unix, or loopback tcp); its path is
// the address it listens on.
func listenBot(t *testing.T, network, addr, answer string) *bot {
	t.Helper()
	return listenBotFunc(t, network, addr, answer, nil)
}

// listenBotFunc is listenBot calling onMessage (if not nil) with each
// message and the time it arrived, before recording it.
func listenBotFunc(t *testing.T, network, addr, answer string, onMessage func(data []byte, at time.Time)) *bot {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatalf("bot: %v", err)
	}
	b := &bot{path: addr}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			data, _ := io.ReadAll(io.LimitReader(c, 1<<16))
			if onMessage != nil {
				onMessage(data, time.Now())
			}
			b.mu.Lock()
			b.messages = append(b.messages, data)
			b.mu.Unlock()
			if answer != "" {
				c.Write([]byte(answer))
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return b
}

func (b *bot) received() [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]byte(nil), b.messages...)
}

var timestamp = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`)

// mask replaces what changes from run to run: timestamps and the sandbox
// directory.
func mask(s, dir string) string {
	s = strings.ReplaceAll(s, dir, "$DIR")
	return timestamp.ReplaceAllString(s, "YYYY-MM-DD hh:mm:ss")
}

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// snapshot records a file's bytes and mode so a test can assert it is untouched.
type snapshot struct {
	path string
	data []byte
	mode os.FileMode
	ok   bool
}

func snap(t *testing.T, path string) snapshot {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		return snapshot{path: path}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return snapshot{path: path, data: data, mode: fi.Mode(), ok: true}
}

func (s snapshot) assertUnchanged(t *testing.T) {
	t.Helper()
	now := snap(t, s.path)
	if now.ok != s.ok || !bytes.Equal(now.data, s.data) || now.mode != s.mode {
		t.Errorf("%s changed (existed %v -> %v, mode %v -> %v):\n%s", s.path, s.ok, now.ok, s.mode, now.mode, now.data)
	}
}

// tlsTrusting is a client TLS config that trusts the fake Schwab server.
func tlsTrusting(srv *fakeschwab.TLSServer) *tls.Config {
	return &tls.Config{RootCAs: srv.RootCAs, MinVersion: tls.VersionTLS12}
}
