package main_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/schwabtools/token-refresh-sender/internal/testkit"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// The daemon under systemd with metrics on: READY/STATUS/STOPPING reach the
// notify socket, /metrics and /healthz answer, SIGHUP reopens the log.
func TestRun_metricsHealthAndSystemdNotify(t *testing.T) {
	s := newSandbox(t)
	notify := filepath.Join(s.dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	addr := "127.0.0.1:" + strconv.Itoa(testkit.FreePort(t))

	logFile := filepath.Join(s.dir, "logs", "token_refresh_sender.log")
	p := start(t, []string{"SSL_CERT_FILE=" + s.certFile, "NOTIFY_SOCKET=" + notify},
		s.args("run", "--socket", filepath.Join(s.dir, "none.sock"), "--metrics-addr", addr)...)
	p.WaitFor("Next refresh at", 1)

	// A delivery is counted when it has finished, which happens in the
	// background just after the cycle's last log line: scrape until then.
	body := get(t, "http://"+addr+"/metrics", http.StatusOK)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(body, `token_sender_delivery_total{result="not_found"} 1`) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		body = get(t, "http://"+addr+"/metrics", http.StatusOK)
	}
	for _, want := range []string{`token_sender_refresh_total{result="success"} 1`, "token_sender_access_token_expiry_timestamp_seconds", `token_sender_delivery_total{result="not_found"} 1`, "go_goroutines"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if body := get(t, "http://"+addr+"/healthz", http.StatusOK); !strings.HasPrefix(body, "ok") {
		t.Errorf("/healthz = %q", body)
	}
	s.assertNoSecrets(body)

	// logrotate moves the file away, then SIGHUP: new lines land in a new file.
	if err := os.Rename(logFile, logFile+".1"); err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGHUP)
	p.WaitFor("Log file reopened (SIGHUP)", 1)
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if data, err := os.ReadFile(logFile); err != nil || !strings.Contains(string(data), "Token Refresh Sender Stopped") {
		t.Errorf("after SIGHUP the log file at %s has %q (%v)", logFile, data, err)
	}

	var got []string
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for !strings.Contains(strings.Join(got, "\n"), "STOPPING=1") {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("notify socket: %v after %q", err, got)
		}
		got = append(got, string(buf[:n]))
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{"READY=1", "STATUS=Last refresh OK at", "STOPPING=1"} {
		if !strings.Contains(all, want) {
			t.Errorf("systemd got %q, lacks %q", all, want)
		}
	}
}

func get(t *testing.T, url string, status int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Errorf("GET %s: %d, want %d: %s", url, resp.StatusCode, status, b)
	}
	return string(b)
}

func TestStatus_exitCodesAndJSON(t *testing.T) {
	s := newSandbox(t)
	b := startBot(t, filepath.Join(s.dir, "bot.sock"), "OK")
	stdout, stderr, code := runToEnd(t, nil, s.args("status", "--json", "--socket", b.path)...)
	if code != 0 {
		t.Fatalf("fresh login: exit %d, want 0\n%s%s", code, stdout, stderr)
	}
	var report struct {
		State                 string  `json:"state"`
		RefreshTokenExpiresAt *string `json:"refresh_token_expires_at"`
		Sockets               []struct {
			Accepting bool `json:"accepting"`
		} `json:"sockets"`
	}
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("status --json is not one JSON object: %v\n%s", err, stdout)
	}
	if report.State != "ok" || report.RefreshTokenExpiresAt == nil || len(report.Sockets) != 1 || !report.Sockets[0].Accepting {
		t.Errorf("report = %+v", report)
	}
	s.assertNoSecrets(stdout, stderr)
	if s.fake.Stats().TokenRequests != 0 {
		t.Error("status talked to Schwab")
	}

	// Logged in 6 days 20 hours ago: warning; 8 days ago: critical.
	for _, tt := range []struct {
		ago  time.Duration
		code int
	}{{6*24*time.Hour + 20*time.Hour, 1}, {8 * 24 * time.Hour, 2}} {
		if err := tokenfile.Write(s.tokenFile, tokenfile.New(s.login, time.Now().Add(-tt.ago))); err != nil {
			t.Fatal(err)
		}
		if out, _, code := runToEnd(t, nil, s.args("status", "--socket", b.path)...); code != tt.code {
			t.Errorf("login %v ago: exit %d, want %d\n%s", tt.ago, code, tt.code, out)
		}
	}
	if out, _, code := runToEnd(t, nil, s.args("status", "--token-file", filepath.Join(s.dir, "missing.json"))...); code != 2 {
		t.Errorf("missing file: exit %d, want 2 (no usable token)\n%s", code, out)
	}
}

// A refresh token Schwab no longer accepts fires the relogin_required hook,
// with no token in its environment.
func TestRun_notifyExecOnReloginRequired(t *testing.T) {
	s := newSandbox(t)
	s.fake.RevokeAll()
	envFile := filepath.Join(s.dir, "hook.env")
	hook := "env | grep ^TOKEN_SENDER_ > " + envFile + ".tmp && mv " + envFile + ".tmp " + envFile
	p := start(t, []string{"SSL_CERT_FILE=" + s.certFile}, s.args("run", "--socket", filepath.Join(s.dir, "none.sock"), "--notify-exec", hook)...)
	p.WaitFor("Notification hook ran (exec, relogin_required)", 1)
	p.Signal(syscall.SIGINT)
	p.Wait()
	env := string(mustRead(t, envFile))
	for _, want := range []string{"TOKEN_SENDER_EVENT=relogin_required", "TOKEN_SENDER_MESSAGE=Re-login required", "TOKEN_SENDER_REFRESH_TOKEN_EXPIRES_AT="} {
		if !strings.Contains(env, want) {
			t.Errorf("hook environment lacks %q:\n%s", want, env)
		}
	}
	s.assertNoSecrets(env)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
