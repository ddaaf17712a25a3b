package main

import (
	"bytes"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"

	"github.com/schwabtools/token-refresh-sender/cluster"
)

// The documents a user follows to run this program.
var userDocs = []string{"../../README.md", "../../deploy/systemd/README.md", "../../deploy/launchd/README.md"}

// Flags the documents show for other programs (go run goreleaser,
// systemctl, sha256sum); everything else that looks like a flag must be
// one of ours.
var otherProgramsFlags = []string{"clean", "snapshot", "now", "ignore-missing"}

// Words after "token-refresh-sender " in log lines the documents quote
// ("another token-refresh-sender is already running ...").
var messageWords = []string{"is"}

// Variables the program sets for --notify-exec hooks rather than reads.
var hookVariables = []string{"TOKEN_SENDER_EVENT", "TOKEN_SENDER_MESSAGE", "TOKEN_SENDER_REFRESH_TOKEN_EXPIRES_AT"}

// secretVariables are read from the environment only, never a flag.
var secretVariables = []string{cluster.PasswordEnv}

// cliModel is what the command line accepts: command names, flag names and
// environment variables.
type cliModel struct {
	commands, flags, envs map[string]bool
}

func newCLIModel(tb testing.TB) cliModel {
	tb.Helper()
	var cli CLI
	parser, err := newParser(&cli, &process{out: &bytes.Buffer{}, err: &bytes.Buffer{}})
	if err != nil {
		tb.Fatal(err)
	}
	m := cliModel{commands: map[string]bool{}, flags: map[string]bool{}, envs: map[string]bool{}}
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		if n.Type == kong.CommandNode {
			m.commands[n.Name] = true
		}
		for _, f := range n.Flags {
			m.flags[f.Name] = true
			for _, e := range f.Envs {
				m.envs[e] = true
			}
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(parser.Model.Node)
	return m
}

// code is the text of a document's code blocks and inline code spans, where
// it shows commands.
func code(doc string) []string {
	var out []string
	inBlock := false
	span := regexp.MustCompile("`([^`]+)`")
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inBlock = !inBlock
			continue
		}
		if inBlock {
			out = append(out, line)
			continue
		}
		for _, m := range span.FindAllStringSubmatch(line, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// Every command, flag and TOKEN_SENDER_ variable the README and the service
// READMEs show exists, so a renamed or removed flag cannot leave them
// describing something the program rejects.
func TestDocs_commandsAndFlagsExist(t *testing.T) {
	m := newCLIModel(t)
	if !m.commands["status"] || !m.flags["token-file"] || !m.envs["TOKEN_SENDER_SOCKET"] {
		t.Fatalf("the CLI model misses known names: %d commands, %d flags, %d variables", len(m.commands), len(m.flags), len(m.envs))
	}
	flag := regexp.MustCompile(`(?:^|[\s\x60(\[|'"])--([a-z][a-z0-9-]*)`)
	command := regexp.MustCompile(`(?:^|[\s/])token-refresh-sender ([a-z][a-z-]*)`)
	variable := regexp.MustCompile(`\bTOKEN_SENDER_[A-Z][A-Z0-9_]*`)
	for _, path := range userDocs {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		doc := string(raw)
		for _, f := range flag.FindAllStringSubmatch(doc, -1) {
			if !m.flags[f[1]] && !slices.Contains(otherProgramsFlags, f[1]) {
				t.Errorf("%s shows --%s, which no command has", path, f[1])
			}
		}
		for _, v := range variable.FindAllString(doc, -1) {
			if !m.envs[v] && !slices.Contains(hookVariables, v) && !slices.Contains(secretVariables, v) {
				t.Errorf("%s shows %s, which no flag reads", path, v)
			}
		}
		for _, line := range code(doc) {
			for _, c := range command.FindAllStringSubmatch(line, -1) {
				if !m.commands[c[1]] && !slices.Contains(messageWords, c[1]) {
					t.Errorf("%s shows `token-refresh-sender %s`, which is not a command (in %q)", path, c[1], line)
				}
			}
		}
	}
}
