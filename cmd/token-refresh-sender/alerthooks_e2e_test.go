package main_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// The real daemon runs --notify-exec with an allow-listed environment: a
// password and the app secret set for the daemon never reach the hook, a
// name added with --notify-env does.
func TestRun_notifyExecGetsAllowListedEnv(t *testing.T) {
	const password = "hunter2-account-password"
	s := newSandbox(t)
	s.fake.Login() // supersedes the refresh token: relogin_required
	envFile := filepath.Join(s.dir, "hook.env")
	b := startBot(t, filepath.Join(s.dir, "bot.sock"), "OK")
	p := start(t, []string{
		"SSL_CERT_FILE=" + s.certFile,
		"SCHWAB_ACCOUNT_PASSWORD=" + password,
		"SCHWAB_APP_SECRET=" + appSecret,
		"SLACK_CHANNEL=#trading",
	}, s.args("run", "--socket", b.path, "--notify-exec", "env > "+envFile, "--notify-env", "SLACK_CHANNEL")...)
	p.WaitFor("Notification hook ran (exec, relogin_required)", 1)
	p.Signal(syscall.SIGINT)
	if code := p.Wait(); code != 0 {
		t.Errorf("exit code %d, want 0\n%s", code, strings.Join(p.Output(), "\n"))
	}
	data, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	env := string(data)
	if strings.Contains(env, password) || strings.Contains(env, appSecret) || strings.Contains(env, "SSL_CERT_FILE") {
		t.Errorf("the hook saw the daemon's secrets or other variables:\n%s", env)
	}
	var names []string
	for line := range strings.Lines(env) {
		name, _, _ := strings.Cut(line, "=")
		names = append(names, name)
	}
	for _, want := range []string{"SLACK_CHANNEL", "TOKEN_SENDER_EVENT", "TOKEN_SENDER_MESSAGE", "PATH"} {
		if !slices.Contains(names, want) {
			t.Errorf("hook environment lacks %s: %v", want, names)
		}
	}
	s.assertNoSecrets(env, strings.Join(p.Output(), "\n"), p.Stderr())
}

// A webhook file others can read is refused at start-up with one line.
func TestRun_notifyWebhookFileRefusedWhenLoose(t *testing.T) {
	s := newSandbox(t)
	hook := s.write("webhook.url", "https://hooks.slack.com/services/T000/B000/XXXXe2esecret\n", 0o644)
	if err := os.Chmod(hook, 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runToEnd(t, []string{"SSL_CERT_FILE=" + s.certFile},
		s.args("run", "--socket", filepath.Join(s.dir, "bot.sock"), "--notify-webhook-file", hook)...)
	want := "--notify-webhook-file " + hook + ": mode 0644 lets others read or change the webhook URL; run: chmod 600 " + hook
	if code != 1 || !strings.Contains(stderr, want) || strings.Contains(stdout+stderr, "XXXXe2esecret") {
		t.Errorf("exit %d, stderr %q; want 1 and %q without the URL\nstdout: %s", code, stderr, want, stdout)
	}
}
