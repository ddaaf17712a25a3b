package unit

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// unitFile is a template: the instance name is the user the daemon runs as.
const unitFile = "token-refresh-sender@.service"

// directives reads a unit file into section -> key -> values, joining
// backslash-continued lines.
func directives(tb testing.TB, data []byte) map[string]map[string][]string {
	tb.Helper()
	out := map[string]map[string][]string{}
	section := ""
	var cont strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cont.Len() == 0 && (line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";")) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cont.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cont.WriteString(line)
		line, cont = cont.String(), strings.Builder{}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			out[section] = map[string][]string{}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			tb.Fatalf("%s: cannot parse %q", unitFile, line)
		}
		out[section][k] = append(out[section][k], v)
	}
	return out
}

func TestUnit_directives(t *testing.T) {
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	svc := directives(t, data)["Service"]
	if svc == nil {
		t.Fatal("no [Service] section")
	}
	want := map[string]string{
		"Type":               "notify",
		"Restart":            "on-failure",
		"User":               "%i",
		"WorkingDirectory":   "/var/lib/token-refresh-sender/%i",
		"LogsDirectory":      "token-refresh-sender/%i",
		"StateDirectory":     "token-refresh-sender/%i",
		"StateDirectoryMode": "0700",
		"NoNewPrivileges":    "yes",
		"ProtectSystem":      "strict",
		"ProtectHome":        "yes",
		"PrivateDevices":     "yes",
		"Environment":        "GOMAXPROCS=1",
	}
	for k, v := range want {
		got := svc[k]
		if len(got) == 0 || got[len(got)-1] != v {
			t.Errorf("%s=%v, want %s=%s", k, got, k, v)
		}
	}
	// A private /tmp hides the bot's /tmp/bigbrother_token.sock.
	if v, ok := svc["PrivateTmp"]; ok {
		t.Errorf("PrivateTmp=%v is set: the bot's socket in /tmp would be invisible", v)
	}
	// A user namespace maps the bot's uid to nobody (peer check).
	if v, ok := svc["PrivateUsers"]; ok {
		t.Errorf("PrivateUsers=%v is set: the bot's uid would be hidden", v)
	}
	// The loop pings every WatchdogSec/2 at least; a refresh request may
	// take up to 30 s (the HTTP client's timeout) between two pings.
	wd := svc["WatchdogSec"]
	if len(wd) != 1 {
		t.Fatalf("WatchdogSec=%v, want exactly one", wd)
	}
	d, err := time.ParseDuration(wd[0] + "s")
	if err != nil || d < time.Minute {
		t.Errorf("WatchdogSec=%s: want at least 60 seconds", wd[0])
	}
	execStart := strings.Join(svc["ExecStart"], " ")
	// Every path is the instance user's own: nothing to edit after install.
	for _, s := range []string{
		"/usr/bin/token-refresh-sender run",
		"--config /etc/token-refresh-sender/%i/schwab_app_config.yaml",
		"--token-file /var/lib/token-refresh-sender/%i/schwab_tokens.json",
		"--socket /tmp/bigbrother_token.sock",
		"--log-file /var/log/token-refresh-sender/%i/",
	} {
		if !strings.Contains(execStart, s) {
			t.Errorf("ExecStart=%s lacks %q", execStart, s)
		}
	}
}

// TestUnit_verify runs systemd-analyze verify on the unit, with ExecStart
// pointed at a stub (verify insists that the binary exists). Any output,
// warnings included, fails the test.
func TestUnit_verify(t *testing.T) {
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not in PATH")
	}
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	stub := filepath.Join(dir, "token-refresh-sender")
	if err := os.WriteFile(stub, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	const bin = "/usr/bin/token-refresh-sender"
	if !bytes.Contains(data, []byte("ExecStart="+bin+" ")) {
		t.Fatalf("ExecStart does not start with %s", bin)
	}
	data = bytes.ReplaceAll(data, []byte("ExecStart="+bin), []byte("ExecStart="+stub))
	// Verify an instance, so that %i is expanded as systemd would.
	unit := filepath.Join(dir, "token-refresh-sender@trader.service")
	if err := os.WriteFile(unit, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, "verify", "--man=no", unit).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unitFile, err, out)
	}
}
