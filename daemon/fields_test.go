package daemon_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/schwabtools/token-refresh-sender/logging"
)

// jsonLines runs the harness's daemon with the JSON log format and returns
// each line decoded.
func jsonLines(t *testing.T, h *harness, run func()) []map[string]any {
	t.Helper()
	logger, _, closeLog, err := logging.Open(h.log, slog.LevelInfo, "json", logging.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.d.Logger = logger
	run()
	closeLog()
	var lines []map[string]any
	for _, raw := range strings.Split(strings.TrimSpace(h.log.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", raw, err)
		}
		lines = append(lines, m)
	}
	if h.d.Logger != logger {
		t.Error("Run did not give the Logger back")
	}
	return lines
}

// line is the first line whose message starts with prefix.
func line(t *testing.T, lines []map[string]any, prefix string) map[string]any {
	t.Helper()
	for _, l := range lines {
		if msg, _ := l["msg"].(string); strings.HasPrefix(msg, prefix) {
			return l
		}
	}
	t.Fatalf("no line starting %q", prefix)
	return nil
}

// wantFields checks l's structured fields: each key in want has that value
// (JSON numbers are float64; "*" means present with any value), each key in
// absent is missing.
func wantFields(t *testing.T, l map[string]any, want map[string]any, absent ...string) {
	t.Helper()
	for k, v := range want {
		got, ok := l[k]
		if !ok || (v != "*" && got != v) {
			t.Errorf("%q: %s = %v (present %v), want %v", l["msg"], k, got, ok, v)
		}
	}
	for _, k := range absent {
		if v, ok := l[k]; ok {
			t.Errorf("%q: has %s = %v, want none", l["msg"], k, v)
		}
	}
}

func TestDaemon_Run_jsonFields(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		h.schwab.errs = []error{errors.New("HTTP 503"), errRelogin}
		h.d.MaxCycles = 3
		lines := jsonLines(t, h, func() {
			if err := h.d.Run(t.Context()); err != nil {
				t.Error(err)
			}
		})
		retry := time.Date(2000, 1, 1, 0, 0, 2, 0, time.UTC) // first attempt + 2 s backoff
		relogin := retry.Add(2 * time.Minute)                // + --retry-max
		next := relogin.Add(25 * time.Minute)                // the third cycle succeeds
		rfc := func(t time.Time) string { return t.Local().Format(time.RFC3339) }

		wantFields(t, line(t, lines, "Token Refresh Sender Started"), nil, "cycle")
		wantFields(t, line(t, lines, "--- Refresh Cycle 1 ---"), map[string]any{"cycle": 1.0})
		wantFields(t, line(t, lines, "Token refresh failed: HTTP 503; retrying"), map[string]any{
			"cycle": 1.0, "result": "transient_error", "error_class": "transient", "next_refresh": rfc(retry)})
		wantFields(t, line(t, lines, "--- Refresh Cycle 2 ---"), map[string]any{"cycle": 2.0})
		wantFields(t, line(t, lines, "Token refresh failed: HTTP 400"), map[string]any{
			"cycle": 2.0, "result": "relogin_required", "error_class": "relogin_required", "next_refresh": rfc(relogin)})
		wantFields(t, line(t, lines, "The refresh token is no longer accepted"), map[string]any{"cycle": 2.0}, "result")
		wantFields(t, line(t, lines, "Token refreshed successfully"), map[string]any{"cycle": 3.0, "result": "success"},
			"error_class", "next_refresh")
		wantFields(t, line(t, lines, "Next refresh at"), map[string]any{"cycle": 3.0, "next_refresh": rfc(next)}, "result")
		wantFields(t, line(t, lines, "Token Refresh Sender Stopped"), nil, "cycle")
	})
}

func TestDaemon_Once_jsonFields(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(30*time.Minute, 25*time.Minute)
		h.schwab.errs = []error{errRelogin}
		lines := jsonLines(t, h, func() {
			if _, err := h.d.Once(t.Context()); err == nil {
				t.Error("Once succeeded, want the relogin error")
			}
		})
		wantFields(t, line(t, lines, "Token refresh failed"), map[string]any{
			"result": "relogin_required", "error_class": "relogin_required"}, "cycle", "next_refresh")

		h = newHarness(30*time.Minute, 25*time.Minute)
		h.schwab.errs = []error{errors.New("HTTP 503")}
		lines = jsonLines(t, h, func() { _, _ = h.d.Once(t.Context()) })
		wantFields(t, line(t, lines, "Token refresh failed"), map[string]any{
			"result": "transient_error", "error_class": "transient"}, "cycle")
	})
}
