package main_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// With --log-format json the daemon's lines carry structured fields: the
// cycle, the next refresh, and each bot's socket and result; the text
// format (TestRun_twoCyclesThreeBotsThenSIGINT's golden file) shows none.
func TestRun_jsonLogCarriesFields(t *testing.T) {
	s := newSandbox(t)
	okBot := startBot(t, filepath.Join(s.dir, "ok.sock"), "OK\n")
	absent := filepath.Join(s.dir, "absent.sock")

	p := start(t, []string{"SSL_CERT_FILE=" + s.certFile},
		s.args("run", "--log-format", "json", "--socket", okBot.path, "--socket", absent)...)
	p.WaitFor("Next refresh at", 1)
	p.Signal(syscall.SIGINT)
	if code := p.Wait(); code != 0 {
		t.Fatalf("exit code %d, want 0; stderr: %s", code, p.Stderr())
	}

	byMsg := map[string]map[string]any{} // message prefix -> first such line
	prefixes := []string{"--- Refresh Cycle 1 ---", "Token refreshed successfully", "Next refresh at",
		"Token successfully sent to trading bot", "Bot socket not found", "Token Refresh Sender Stopped"}
	for _, raw := range p.Output() {
		var l map[string]any
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			t.Fatalf("not a JSON line: %q: %v", raw, err)
		}
		msg, _ := l["msg"].(string)
		for _, pre := range prefixes {
			if strings.HasPrefix(msg, pre) && byMsg[pre] == nil {
				byMsg[pre] = l
			}
		}
	}
	for _, tc := range []struct {
		prefix string
		want   map[string]any // "*": present, any value
		absent []string
	}{
		{"--- Refresh Cycle 1 ---", map[string]any{"cycle": 1.0}, nil},
		{"Token refreshed successfully", map[string]any{"cycle": 1.0, "result": "success"}, []string{"error_class"}},
		{"Next refresh at", map[string]any{"cycle": 1.0, "next_refresh": "*"}, nil},
		{"Token successfully sent to trading bot", map[string]any{"socket": okBot.path, "result": "delivered"}, []string{"error_class"}},
		{"Bot socket not found", map[string]any{"socket": absent, "result": "not_found", "error_class": "not_found"}, nil},
		{"Token Refresh Sender Stopped", nil, []string{"cycle"}},
	} {
		l := byMsg[tc.prefix]
		if l == nil {
			t.Errorf("no JSON line starting %q:\n%s", tc.prefix, strings.Join(p.Output(), "\n"))
			continue
		}
		for k, v := range tc.want {
			if got, ok := l[k]; !ok || (v != "*" && got != v) {
				t.Errorf("%q: %s = %v, want %v", tc.prefix, k, got, v)
			}
		}
		for _, k := range tc.absent {
			if v, ok := l[k]; ok {
				t.Errorf("%q: has %s = %v, want none", tc.prefix, k, v)
			}
		}
	}
}
