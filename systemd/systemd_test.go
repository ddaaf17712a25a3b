package systemd

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/logging"
)

// listen creates a unixgram socket standing in for systemd's notify socket
// (in a short temp dir: socket paths are limited to 108 bytes) and points
// NOTIFY_SOCKET at it.
func listen(tb testing.TB) *net.UnixConn {
	tb.Helper()
	dir, err := os.MkdirTemp("", "trs")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	tb.Setenv("NOTIFY_SOCKET", path)
	tb.Setenv("WATCHDOG_USEC", "")
	tb.Setenv("WATCHDOG_PID", "")
	return conn
}

// next returns the next datagram. The deadline only guards against a hang
// when nothing was sent; sends are synchronous, so it never paces the test.
func next(tb testing.TB, conn *net.UnixConn) string {
	tb.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		tb.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		tb.Fatalf("no datagram on NOTIFY_SOCKET: %v", err)
	}
	return string(buf[:n])
}

func bufLogger() (*slog.Logger, *bytes.Buffer) {
	var b bytes.Buffer
	return slog.New(logging.NewTextHandler(&b, slog.LevelDebug)), &b
}

var (
	at  = time.Date(2025, 11, 13, 9, 14, 24, 0, time.Local)
	tok = tokensender.Token{AccessToken: "I0.b2F1dGgyLmJkYy5zY2h3YWIuY29t.access", RefreshToken: "refresh-token-value-1234567890@",
		ExpiresAt: at.Add(30 * time.Minute)}
)

func TestNotifier_Observe(t *testing.T) {
	tests := []struct {
		name string
		ev   tokensender.Event
		want string
	}{
		{"started", tokensender.Event{Kind: tokensender.EventStarted, At: at, Token: tok},
			"READY=1\nSTATUS=Started; first refresh now"},
		{"refreshed", tokensender.Event{Kind: tokensender.EventRefreshed, At: at, Token: tok, Duration: time.Second, Next: at.Add(25 * time.Minute)},
			"STATUS=Last refresh OK at 09:14:24; next at 09:39:24"},
		{"refreshed late the same day", tokensender.Event{Kind: tokensender.EventRefreshed, At: at.Add(14 * time.Hour), Token: tok, Next: at.Add(14*time.Hour + 25*time.Minute)},
			"STATUS=Last refresh OK at 23:14:24; next at 23:39:24"},
		{"refreshed across midnight", tokensender.Event{Kind: tokensender.EventRefreshed, At: at.Add(14*time.Hour + 40*time.Minute), Token: tok, Next: at.Add(15*time.Hour + 5*time.Minute)},
			"STATUS=Last refresh OK at 23:54:24; next at 2025-11-14 00:19:24"},
		{"refresh failed", tokensender.Event{Kind: tokensender.EventRefreshFailed, At: at, Token: tok, Err: errors.New("HTTP 503 Service Unavailable"), Failures: 2, Next: at.Add(4 * time.Second)},
			"STATUS=Last refresh failed at 09:14:24 (2 in a row): HTTP 503 Service Unavailable; next attempt at 09:14:28"},
		{"relogin required", tokensender.Event{Kind: tokensender.EventReloginRequired, At: at, Token: tok, Err: errors.New("HTTP 401: refresh_token_authentication_error"), Failures: 1, Next: at.Add(2 * time.Minute)},
			"STATUS=Login required: HTTP 401: refresh_token_authentication_error (at 09:14:24); run `token-refresh-sender login`; next attempt at 09:16:24"},
		{"multi-line error stays one assignment", tokensender.Event{Kind: tokensender.EventRefreshFailed, At: at, Token: tok, Err: errors.New("bad\nREADY=1"), Failures: 1, Next: at},
			"STATUS=Last refresh failed at 09:14:24 (1 in a row): bad READY=1; next attempt at 09:14:24"},
		{"token in error is redacted", tokensender.Event{Kind: tokensender.EventRefreshFailed, At: at, Token: tok, Err: errors.New("rejected " + tok.RefreshToken), Failures: 1, Next: at},
			"STATUS=Last refresh failed at 09:14:24 (1 in a row): rejected " + tokensender.Redact(tok.RefreshToken) + "; next attempt at 09:14:24"},
		{"stopping", tokensender.Event{Kind: tokensender.EventStopping, At: at, Token: tok},
			"STOPPING=1\nSTATUS=Stopping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := listen(t)
			log, buf := bufLogger()
			n := New(log)
			if !n.Enabled() {
				t.Fatal("Enabled() = false with NOTIFY_SOCKET set")
			}
			n.Observe(tt.ev)
			if got := next(t, conn); got != tt.want {
				t.Errorf("datagram = %q, want %q", got, tt.want)
			}
			if buf.Len() != 0 {
				t.Errorf("unexpected log output: %s", buf)
			}
		})
	}
}

func TestNotifier_Observe_recoveredSendsNothing(t *testing.T) {
	conn := listen(t)
	n := New(nil)
	n.Observe(tokensender.Event{Kind: tokensender.EventRecovered, At: at, Token: tok, Failures: 3})
	n.Stopping()
	// The first datagram is the one sent after Recovered.
	if got := next(t, conn); got != "STOPPING=1" {
		t.Errorf("datagram = %q, want STOPPING=1 (nothing for Recovered)", got)
	}
}

func TestNotifier_methods(t *testing.T) {
	conn := listen(t)
	n := New(nil)
	n.Ready()
	n.Status("Refreshing\tnow")
	n.Status(strings.Repeat("x", 300))
	n.Stopping()
	for _, want := range []string{"READY=1", "STATUS=Refreshing now", "STATUS=" + strings.Repeat("x", 197) + "...", "STOPPING=1"} {
		if got := next(t, conn); got != want {
			t.Errorf("datagram = %q, want %q", got, want)
		}
	}
}

func TestNotifier_Watchdog(t *testing.T) {
	tests := []struct {
		name         string
		usec, pid    string
		wantInterval time.Duration
		wantWarning  string
	}{
		{"on for this process", "4000000", strconv.Itoa(os.Getpid()), 2 * time.Second, ""},
		{"on without WATCHDOG_PID", "120000000", "", time.Minute, ""},
		{"another process's watchdog", "4000000", strconv.Itoa(os.Getpid() + 1), 0, ""},
		{"off", "", "", 0, ""},
		{"garbage", "soon", "", 0, "WARNING: systemd watchdog disabled: error converting WATCHDOG_USEC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := listen(t)
			t.Setenv("WATCHDOG_USEC", tt.usec)
			t.Setenv("WATCHDOG_PID", tt.pid)
			log, buf := bufLogger()
			n := New(log)

			interval, ping := n.Watchdog()
			if interval != tt.wantInterval {
				t.Errorf("Watchdog() interval = %v, want %v", interval, tt.wantInterval)
			}
			if got, ok := n.WatchdogInterval(); got != tt.wantInterval || ok != (tt.wantInterval > 0) {
				t.Errorf("WatchdogInterval() = %v, %v; want %v, %v", got, ok, tt.wantInterval, tt.wantInterval > 0)
			}
			ping()
			n.Ready() // marks the end: whatever ping sent comes before it
			want := []string{"READY=1"}
			if tt.wantInterval > 0 {
				want = []string{"WATCHDOG=1", "READY=1"}
			}
			for _, w := range want {
				if got := next(t, conn); got != w {
					t.Errorf("datagram = %q, want %q", got, w)
				}
			}
			if tt.wantWarning == "" && buf.Len() != 0 || !strings.Contains(buf.String(), tt.wantWarning) {
				t.Errorf("log = %q, want %q", buf, tt.wantWarning)
			}
		})
	}
}

func TestNotifier_outsideSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "4000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	log, buf := bufLogger()
	n := New(log)
	if n.Enabled() {
		t.Error("Enabled() = true without NOTIFY_SOCKET")
	}
	interval, ping := n.Watchdog()
	if interval != 0 || ping == nil {
		t.Errorf("Watchdog() = %v, nil=%v; want 0 and a no-op func", interval, ping == nil)
	}
	ping()
	n.Ready()
	n.Status("x")
	n.Ping()
	n.Stopping()
	for _, k := range []tokensender.EventKind{tokensender.EventStarted, tokensender.EventRefreshed, tokensender.EventRefreshFailed, tokensender.EventReloginRequired, tokensender.EventRecovered, tokensender.EventStopping} {
		n.Observe(tokensender.Event{Kind: k, At: at, Token: tok, Err: errors.New("x")})
	}
	if buf.Len() != 0 {
		t.Errorf("outside systemd the notifier logged: %s", buf)
	}
}

func TestNotifier_send_failure(t *testing.T) {
	dir, err := os.MkdirTemp("", "trs")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "gone")
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "")
	log, buf := bufLogger()
	n := New(log)
	n.Ready()
	n.Status("x")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 log lines, got %q", buf)
	}
	if !strings.Contains(lines[0], "WARNING: Could not notify systemd (READY) through NOTIFY_SOCKET "+path+": ") {
		t.Errorf("first failure: %q", lines[0])
	}
	if !strings.Contains(lines[1], "DEBUG: Could not notify systemd (STATUS)") {
		t.Errorf("second failure should be a debug line: %q", lines[1])
	}
}
