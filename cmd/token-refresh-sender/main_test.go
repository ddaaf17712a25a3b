package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// TestRun_versionFlag: every form of --version kong accepts prints the
// version line, though the line is only worked out when it is asked for.
func TestRun_versionFlag(t *testing.T) {
	want := versionLine() + "\n"
	for _, args := range [][]string{
		{"--version"},
		{"--version=true"},
		{"run", "--version"},
		{"status", "--token-file", "x.json", "--version"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(args, &process{out: &out, err: &errOut, in: strings.NewReader("")})
			if code != 0 || out.String() != want {
				t.Errorf("exit %d, stdout %q (stderr %q); want 0, %q", code, out.String(), errOut.String(), want)
			}
		})
	}
}

// TestNewParser_versionOnlyWhenAsked: the parser for a command line
// without --version has no version variable, so kong does not interpolate
// it into every flag (nor is the build information read).
func TestNewParser_versionOnlyWhenAsked(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"run", "--config", "a.yaml", "--log-file", ""}, false},
		{nil, false},
		{[]string{"version"}, false},
		{[]string{"--versions"}, false},
		{[]string{"--version"}, true},
		{[]string{"--version=false"}, true},
		{[]string{"run", "--version"}, true},
	} {
		var cli CLI
		parser, err := newParser(&cli, &process{out: io.Discard, err: io.Discard}, tc.args...)
		if err != nil {
			t.Fatal(err)
		}
		if _, got := parser.Model.Vars()["version"]; got != tc.want {
			t.Errorf("%q: version variable set %v, want %v", tc.args, got, tc.want)
		}
	}
}

// BenchmarkNewParser is the command line's share of a daemon's start-up:
// building kong's parser and parsing `run` as bench/perf starts it.
func BenchmarkNewParser(b *testing.B) {
	args := []string{"run", "--config", "app.yaml", "--token-file", "tokens.json", "--socket", "/tmp/bot.sock", "--log-file", ""}
	pr := &process{out: io.Discard, err: io.Discard}
	for b.Loop() {
		var cli CLI
		parser, err := newParser(&cli, pr, args...)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := parser.Parse(args); err != nil {
			b.Fatal(err)
		}
	}
}
