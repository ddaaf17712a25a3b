package main_test

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	logFile := filepath.Join(s.dir, "logs", "token_refresh_sender.log")
	p := start(t, []string{"SSL_CERT_FILE=" + s.certFile, "NOTIFY_SOCKET=" + notify},
		s.args("run", "--socket", filepath.Join(s.dir, "none.sock"), "--metrics-addr", addr)...)
	p.waitFor("Next refresh at", 1)

	body := get(t, "http://"+addr+"/metrics", http.StatusOK)
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
	p.signal(syscall.SIGHUP)
	p.waitFor("Log file reopened (SIGHUP)", 1)
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
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
