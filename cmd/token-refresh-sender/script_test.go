package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/schwabtools/token-refresh-sender/internal/testproc"
)

// scratchRepo is a directory holding a copy of the wrapper script and, as
// bin/token-refresh-sender, the shell script binary.
func scratchRepo(t *testing.T, binary string) string {
	t.Helper()
	repo := testproc.ShortDir(t)
	script, err := os.ReadFile(filepath.Join("..", "..", "scripts", "run_token_sender.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"scripts/run_token_sender.sh": string(script),
		"bin/token-refresh-sender":    binary,
	} {
		path := filepath.Join(repo, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return repo
}

// The wrapper script runs the binary from the repository root, so it makes
// the relative paths the caller typed absolute against the caller's
// directory first. The test runs a copy of the script in a scratch "repo"
// whose binary prints its working directory, arguments and variables.
func TestWrapperScript_resolvesRelativePathsAgainstTheCaller(t *testing.T) {
	repo := scratchRepo(t, "#!/bin/sh\npwd\nfor a in \"$@\"; do echo \"arg:$a\"; done\nfor v in TOKEN_SENDER_CONFIG TOKEN_SENDER_LOG_FILE TOKEN_SENDER_SOCKET; do echo \"$v=$(printenv $v)\"; done\n")
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

// The wrapper starts the daemon on one processor, as the systemd unit and
// the launchd agent do, unless the caller chose a GOMAXPROCS.
func TestWrapperScript_oneProcessorUnlessChosen(t *testing.T) {
	repo := scratchRepo(t, "#!/bin/sh\necho \"GOMAXPROCS=$GOMAXPROCS\"\n")
	for _, tc := range []struct{ env, want string }{{"", "GOMAXPROCS=1"}, {"GOMAXPROCS=2", "GOMAXPROCS=2"}} {
		cmd := exec.Command(filepath.Join(repo, "scripts", "run_token_sender.sh"), "status")
		cmd.Dir = repo
		cmd.Env = withoutVar(os.Environ(), "GOMAXPROCS")
		if tc.env != "" {
			cmd.Env = append(cmd.Env, tc.env)
		}
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != tc.want {
			t.Errorf("with %q in the environment: %s (err %v), want %s", tc.env, out, err, tc.want)
		}
	}
}

func withoutVar(env []string, name string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}
