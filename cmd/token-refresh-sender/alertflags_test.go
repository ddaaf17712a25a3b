package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/schwabtools/token-refresh-sender/alert"
)

func TestRunCmd_notifier(t *testing.T) {
	const url = "https://hooks.slack.com/services/T000/B000/XXXXsecret"
	dir := t.TempDir()
	good := filepath.Join(dir, "webhook")
	if err := os.WriteFile(good, []byte(url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	loose := filepath.Join(dir, "loose")
	if err := os.WriteFile(loose, []byte(url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o644); err != nil {
		t.Fatal(err)
	}

	c := &RunCmd{NotifyExec: "true", NotifyWebhookFile: good, NotifyEnv: []string{"SLACK_CHANNEL"}}
	n, err := c.notifier(nil)
	if err != nil || n.Webhook != url || n.Exec != "true" || !slices.Equal(n.Env, []string{"SLACK_CHANNEL"}) {
		t.Fatalf("notifier() = %+v, %v; want the file's URL, the exec command and the extra name", n, err)
	}
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	if n, err := (&RunCmd{NotifyWebhook: url}).notifier(log); err != nil || n.Webhook != url {
		t.Fatalf("URL from the flag: %+v, %v", n, err)
	}
	if !strings.Contains(logs.String(), "visible to every user in ps") || strings.Contains(logs.String(), "XXXXsecret") {
		t.Errorf("a webhook URL on the command line: log %q, want a warning without the URL", logs.String())
	}
	logs.Reset()
	t.Setenv("TOKEN_SENDER_NOTIFY_WEBHOOK", url)
	if n, err := (&RunCmd{NotifyWebhook: url}).notifier(log); err != nil || n.Webhook != url || logs.Len() != 0 {
		t.Fatalf("URL from the environment: %+v, %v, log %q", n, err, logs.String())
	}
	if _, err := (&RunCmd{NotifyWebhookFile: loose}).notifier(nil); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a 0644 webhook file: %v, want it refused", err)
	}
	_, err = (&RunCmd{NotifyWebhook: url, NotifyWebhookFile: good}).notifier(nil)
	if err == nil || !strings.Contains(err.Error(), "give the webhook URL once") || strings.Contains(err.Error(), "XXXXsecret") {
		t.Fatalf("both sources: %v, want one clear line without the URL", err)
	}
}

// TestRun_logLevelWarn: --log-level takes "warn" as well as "warning".
func TestRun_logLevelWarn(t *testing.T) {
	for _, level := range []string{"warn", "warning", "debug", "info", "error"} {
		if _, _, code := runInProcess(t, "--log-level", level, "version"); code != 0 {
			t.Errorf("--log-level %s version: exit %d, want 0", level, code)
		}
	}
	if _, _, code := runInProcess(t, "--log-level", "loud", "version"); code != 2 {
		t.Errorf("--log-level loud: exit %d, want 2", code)
	}
}

// --refresh-token-lifetime reaches the expiry warnings, the alert policy
// and the metrics.
func TestMain_refreshTokenLifetimeReachesEveryObserver(t *testing.T) {
	g := &Globals{MetricsAddr: "127.0.0.1:0", RefreshTokenLifetime: 72 * time.Hour, TokenFile: filepath.Join(t.TempDir(), "t.json")}
	log := slog.New(slog.DiscardHandler)
	o := newObservers(g, log, &alert.Notifier{}, nil)
	if o.expiry.Lifetime != 72*time.Hour || o.policy.Lifetime != 72*time.Hour {
		t.Errorf("lifetimes: expiry %v, policy %v; want 72h each", o.expiry.Lifetime, o.policy.Lifetime)
	}
	m := NewMain(*g, nil)
	defer m.Close()
	if err := m.serveMetrics(log); err != nil {
		t.Fatal(err)
	}
	if m.Metrics.RefreshTokenLifetime != 72*time.Hour {
		t.Errorf("metrics lifetime %v, want 72h", m.Metrics.RefreshTokenLifetime)
	}
}
