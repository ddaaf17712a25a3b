package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/schwabtools/token-refresh-sender/internal/testproc"
)

// The wrapper script runs the binary from the repository root, so it makes
// the relative paths the caller typed absolute against the caller's
// directory first. The test runs a copy of the script in a scratch "repo"
// whose binary prints its working directory, arguments and variables.
func TestWrapperScript_resolvesRelativePathsAgainstTheCaller(t *testing.T) {
	repo := testproc.ShortDir(t)
	script, err := os.ReadFile(filepath.Join("..", "..", "scripts", "run_token_sender.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"scripts/run_token_sender.sh": string(script),
		"bin/token-refresh-sender":    "#!/bin/sh\npwd\nfor a in \"$@\"; do echo \"arg:$a\"; done\nfor v in TOKEN_SENDER_CONFIG TOKEN_SENDER_LOG_FILE TOKEN_SENDER_SOCKET; do echo \"$v=$(printenv $v)\"; done\n",
	} {
		path := filepath.Join(repo, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	caller := filepath.Join(repo, "elsewhere")
	if err := os.Mkdir(caller, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(repo, "scripts", "run_token_sender.sh"),
		"status", "--config", "my.yaml", "--token-file=tok.json", "--socket", "tcp://127.0.0.1:9999",
		"--socket", "/abs/bot.sock", "--log-file", "", "--json", "--", "--config", "x")
	cmd.Dir = caller
	cmd.Env = append(os.Environ(), "TOKEN_SENDER_CONFIG=env.yaml", "TOKEN_SENDER_SOCKET=a.sock\n/b.sock", "TOKEN_SENDER_LOG_FILE=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := []string{
		repo,
		"arg:status",
		"arg:--config", "arg:" + caller + "/my.yaml",
		"arg:--token-file=" + caller + "/tok.json",
		"arg:--socket", "arg:tcp://127.0.0.1:9999",
		"arg:--socket", "arg:/abs/bot.sock",
		"arg:--log-file", "arg:",
		"arg:--json",
		"arg:--", "arg:--config", "arg:x",
		"TOKEN_SENDER_CONFIG=" + caller + "/env.yaml",
		"TOKEN_SENDER_LOG_FILE=",
		"TOKEN_SENDER_SOCKET=" + caller + "/a.sock",
		"/b.sock",
		"",
	}
	if got := strings.Split(string(out), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the binary saw\n%s\nwant\n%s", out, strings.Join(want, "\n"))
	}
}
