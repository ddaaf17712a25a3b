package main_test

import (
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/schwabtools/token-refresh-sender/fakeschwab"
	"github.com/schwabtools/token-refresh-sender/logging"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// logTime is the timestamp that starts a log line ("[2006-01-02 15:04:05]").
func logTime(t *testing.T, line string) time.Time {
	t.Helper()
	ts := timestamp.FindString(line)
	at, err := time.ParseInLocation(logging.TimeLayout, ts, time.Local)
	if err != nil {
		t.Fatalf("no timestamp in %q: %v", line, err)
	}
	return at
}

// Item 7: the held access token has expired and Schwab answers 429 with
// Retry-After: 86400. The retry is scheduled at most --retry-max away, the
// ERROR line says the server's wish was capped, and the retry happens.
func TestRun_retryAfterIsCappedWhileTheTokenIsExpired(t *testing.T) {
	s := newSandbox(t)
	expired := s.login
	expired.ExpiresAt = time.Now().Add(-time.Minute)
	if err := tokenfile.Write(s.tokenFile, tokenfile.New(expired, time.Now().Add(-31*time.Minute))); err != nil {
		t.Fatal(err)
	}
	s.fake.Inject(fakeschwab.FaultRateLimit(24 * time.Hour))
	b := startBot(t, filepath.Join(s.dir, "bot.sock"), "OK")
	p := start(t, []string{"SSL_CERT_FILE=" + s.certFile},
		s.args("run", "--socket", b.path, "--retry-min", "1s", "--retry-max", "2s")...)
	p.WaitFor("Token successfully sent to trading bot", 1)
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(); code != 0 {
		t.Errorf("exit %d", code)
	}

	failed := linesWith(p.Text(), "ERROR: Token refresh failed: ")
	if len(failed) != 1 {
		t.Fatalf("want one failed refresh, got %d:\n%s", len(failed), p.Text())
	}
	line := failed[0]
	const why = "the current access token has expired; the server asked to wait 1 day, capped at --retry-max (2 seconds))"
	if !strings.Contains(line, why) {
		t.Errorf("the retry line does not say the cap %q:\n%s", why, line)
	}
	m := regexp.MustCompile(`retrying at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \(in ([^,]+),`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no retry time in %q", line)
	}
	next, err := time.ParseInLocation(logging.TimeLayout, m[1], time.Local)
	if err != nil {
		t.Fatal(err)
	}
	if d := next.Sub(logTime(t, line)); d < 0 || d > 2*time.Second || (m[2] != "1 second" && m[2] != "2 seconds") {
		t.Errorf("next attempt %s (%s) after the failure, want at most --retry-max (2s): %s", d, m[2], line)
	}
	if st := s.fake.Stats(); st.TokenRequests != 2 || st.Refreshes != 1 {
		t.Errorf("fake saw %d token requests, %d refreshes; want the 429 and one retry", st.TokenRequests, st.Refreshes)
	}
	if n := len(b.received()); n != 1 {
		t.Errorf("bot got %d tokens, want 1", n)
	}
}

// hungBot accepts connections and never reads or answers them.
type hungBot struct {
	mu    sync.Mutex
	conns []net.Conn
}

func startHungBot(t *testing.T, path string) *hungBot {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	h := &hungBot{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, c := range h.conns {
			c.Close()
		}
	})
	return h
}

func (h *hungBot) accepted() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// Item 10: with --interval 1s (the shortest allowed) and a bot that
// accepts but never answers (each delivery could hang for the 5 s ack
// timeout), every cycle starts when the one before announced it, Schwab
// sees exactly one refresh per announced cycle, and each superseded
// delivery is an INFO "a newer token replaced it", never a WARNING or
// "context canceled".
func TestRun_hungBotNeverDelaysTheSchedule(t *testing.T) {
	s := newSandbox(t)
	bot := startHungBot(t, filepath.Join(s.dir, "bot.sock"))
	p := start(t, []string{"SSL_CERT_FILE=" + s.certFile}, s.args("run", "--socket", filepath.Join(s.dir, "bot.sock"), "--interval", "1s")...)
	const cycles = 5
	p.WaitFor("Next refresh at", cycles)
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(); code != 0 {
		t.Errorf("exit %d", code)
	}
	out := p.Text()

	// Each "Next refresh at T" is kept: the next cycle starts at T (the
	// log's whole seconds, with a second of slack for a busy machine),
	// not after the hung delivery's 5 s.
	nextAt := regexp.MustCompile(`Next refresh at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \(1 second\)`)
	var announced []time.Time
	for _, l := range p.Output() {
		if strings.Contains(l, "Next refresh at") {
			m := nextAt.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("unexpected schedule line %q", l)
			}
			at, _ := time.ParseInLocation(logging.TimeLayout, m[1], time.Local)
			announced = append(announced, at)
		}
	}
	started := linesWith(out, "--- Refresh Cycle ")
	if len(started) < len(announced) {
		t.Fatalf("%d cycles started, %d announced:\n%s", len(started), len(announced), out)
	}
	for i := 1; i < len(announced); i++ {
		if late := logTime(t, started[i]).Sub(announced[i-1]); late > time.Second {
			t.Errorf("cycle %d started %s after the time cycle %d announced:\n%s", i+1, late, i, out)
		}
	}
	// Schwab saw one refresh per announced cycle, plus perhaps the one
	// that SIGTERM interrupted.
	refreshed := len(linesWith(out, "Token refreshed successfully"))
	asked := len(linesWith(out, "Refreshing OAuth token..."))
	got := s.fake.Stats().Refreshes
	if refreshed != len(announced) || got < refreshed || got > asked || asked > refreshed+1 {
		t.Errorf("Schwab saw %d refreshes; the log asked %d times, refreshed %d, announced %d", got, asked, refreshed, len(announced))
	}
	if n := bot.accepted(); n < len(announced) {
		t.Errorf("the bot was connected to %d times for %d tokens", n, len(announced))
	}

	superseded := linesWith(out, "INFO: Stopped sending token to trading bot after 1 of 3 attempts: a newer token replaced it")
	if len(superseded) < len(announced)-1 {
		t.Errorf("%d superseded deliveries logged as INFO, want %d:\n%s", len(superseded), len(announced)-1, out)
	}
	if strings.Contains(out, "context canceled") || len(linesWith(out, "WARNING:")) != 0 || len(linesWith(out, "ERROR:")) != 0 {
		t.Errorf("a cancelled delivery was logged as a problem:\n%s", out)
	}
	s.assertNoSecrets(out, p.Stderr())
}
