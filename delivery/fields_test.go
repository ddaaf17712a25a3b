package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/schwabtools/token-refresh-sender/logging"
)

func TestOutcome_Label(t *testing.T) {
	for o, want := range map[Outcome]string{Delivered: "delivered", DeliveredNoAck: "delivered_no_ack",
		NotFound: "not_found", Failed: "failed", Canceled: "canceled", Withheld: "withheld", Outcome(6): "unknown", Outcome(-1): "unknown"} {
		if got := o.Label(); got != want {
			t.Errorf("Outcome(%d).Label() = %q, want %q", int(o), got, want)
		}
	}
}

// In the JSON format every delivery line names its socket; the line that
// ends a target's delivery carries its result, and a failure its class.
// The text format shows none of it.
func TestSender_Send_structuredFields(t *testing.T) {
	ok := mustStartBot(t, "unix", always("OK"))
	missing := Address{"unix", filepath.Join(shortDir(t), "missing.sock")}
	refused := refusedAddr(t)

	run := func(format string) string {
		var out bytes.Buffer
		logger, _, closeLog, err := logging.Open(&out, slog.LevelInfo, format, logging.FileOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s := &Sender{Targets: []Address{ok.addr, missing, refused}, Logger: logger, RetryDelay: 1, Attempts: 2}
		s.Send(context.Background(), testMsg).Wait()
		closeLog()
		return out.String()
	}

	type line struct {
		Msg        string `json:"msg"`
		Socket     string `json:"socket"`
		Result     string `json:"result"`
		ErrorClass string `json:"error_class"`
	}
	var got []line
	for _, raw := range strings.Split(strings.TrimSpace(run("json")), "\n") {
		var l line
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			t.Fatalf("not JSON: %q: %v", raw, err)
		}
		got = append(got, l)
	}
	want := map[string]line{ // by message prefix
		"Token successfully sent":         {Socket: ok.addr.String(), Result: "delivered"},
		"Bot socket not found":            {Socket: missing.String(), Result: "not_found", ErrorClass: "not_found"},
		"Could not send token":            {Socket: refused.String()},
		"Failed to send token to trading": {Socket: refused.String(), Result: "failed", ErrorClass: "failed"},
	}
	seen := map[string]bool{}
	for _, l := range got {
		for prefix, w := range want {
			if !strings.HasPrefix(l.Msg, prefix) {
				continue
			}
			seen[prefix] = true
			w.Msg = l.Msg
			if l != w {
				t.Errorf("JSON line %+v, want %+v", l, w)
			}
		}
	}
	for prefix := range want {
		if !seen[prefix] {
			t.Errorf("no JSON line starting %q in %+v", prefix, got)
		}
	}

	text := run("text")
	for _, key := range []string{"socket", "result", "error_class", "delivered"} {
		if strings.Contains(text, key+"=") || strings.Contains(text, `"`+key+`"`) {
			t.Errorf("text format shows field %s:\n%s", key, text)
		}
	}
	if !strings.Contains(text, "INFO: Token successfully sent to trading bot ("+ok.addr.String()+")\n") {
		t.Errorf("text format lost its line:\n%s", text)
	}
}
