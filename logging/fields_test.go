package logging_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/schwabtools/token-refresh-sender/logging"
)

var next = time.Date(2025, 11, 13, 9, 9, 23, 0, time.UTC)

// logBoth logs the same line, once without fields and once with every
// structured field, through the handler of format.
func logBoth(t *testing.T, format string) (plain, withFields string) {
	t.Helper()
	var out [2]bytes.Buffer
	for i := range out {
		log, _, closeFn, err := logging.Open(&out[i], slog.LevelDebug, format, logging.FileOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer closeFn()
		msg := "Token refreshed successfully (expires in 30 minutes)"
		if i == 0 {
			log.Info(msg)
			continue
		}
		log.With(logging.Cycle(3)).Info(msg,
			logging.NextRefresh(next), logging.Socket("/tmp/bigbrother_token.sock"),
			logging.Result("success"), logging.ErrorClass("transient"),
			logging.Field("attempt", 2))
	}
	return out[0].String(), out[1].String()
}

func TestFields_textUnchanged(t *testing.T) {
	plain, withFields := logBoth(t, logging.FormatText)
	// The timestamps may differ by a second; compare after it.
	_, p, _ := strings.Cut(plain, "] ")
	_, w, _ := strings.Cut(withFields, "] ")
	if p == "" || w != p {
		t.Errorf("text line changed by structured fields:\n got %q\nwant %q", w, p)
	}
}

func TestFields_json(t *testing.T) {
	_, line := logBoth(t, logging.FormatJSON)
	var got map[string]any
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, line)
	}
	want := map[string]any{
		logging.KeyCycle:       float64(3),
		logging.KeyNextRefresh: "2025-11-13T09:09:23Z",
		logging.KeySocket:      "/tmp/bigbrother_token.sock",
		logging.KeyResult:      "success",
		logging.KeyErrorClass:  "transient",
		"attempt":              float64(2),
		"level":                "INFO",
		"msg":                  "Token refreshed successfully (expires in 30 minutes)",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v\n%s", k, got[k], v, line)
		}
	}
	if len(got) != len(want)+1 { // + time
		t.Errorf("JSON has %d keys, want %d: %s", len(got), len(want)+1, line)
	}
}

func TestFields_keys(t *testing.T) {
	for _, tt := range []struct {
		attr slog.Attr
		key  string
		val  any
	}{
		{logging.Cycle(7), "cycle", int64(7)},
		{logging.NextRefresh(next), "next_refresh", next},
		{logging.Socket("tcp://127.0.0.1:9"), "socket", "tcp://127.0.0.1:9"},
		{logging.Result("relogin_required"), "result", "relogin_required"},
		{logging.ErrorClass("relogin_required"), "error_class", "relogin_required"},
	} {
		if tt.attr.Key != tt.key || tt.attr.Value.Resolve().Any() != tt.val {
			t.Errorf("attr %v, want %s=%v", tt.attr, tt.key, tt.val)
		}
	}
}

// TestTextHandler_plainAttrsAndGroups: ordinary attributes still print,
// fields inside groups and WithAttrs are left out.
func TestTextHandler_plainAttrsAndGroups(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(logging.NewTextHandler(&buf, slog.LevelInfo))
	log.With(logging.Result("x"), slog.String("a", "1")).WithGroup("g").Info("m",
		slog.Group("d", logging.Cycle(1), slog.Int("n", 2)), logging.Socket("/s"))
	_, got, _ := strings.Cut(buf.String(), "] ")
	if want := "INFO: m a=1 g.d.n=2\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
