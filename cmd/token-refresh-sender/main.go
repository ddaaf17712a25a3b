// Command token-refresh-sender keeps Charles Schwab Trader API OAuth tokens
// alive: it refreshes the access token before it expires, rewrites the
// token file atomically, and pushes each new token to the trading bot over
// a Unix socket. This package is wiring only (see Main in wire.go); the
// behaviour lives in the packages it imports.
//
// Exit codes: 0 success, 1 runtime failure (already logged), 2 usage error
// (a flag, command or value that cannot work). `status` uses the Nagios
// codes instead: 0 ok, 1 warning, 2 critical, 3 unknown, and 3 for every
// usage error, so a typo in a check never reads as CRITICAL.
package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/schwab"
)

// Exit codes.
const (
	exitFailure       = 1
	exitUsage         = 2
	exitStatusUnknown = 3
)

func main() {
	tuneRuntime()
	os.Exit(run(os.Args[1:], &process{out: os.Stdout, err: os.Stderr, in: os.Stdin,
		schwabHTTP: withSystemRoots(schwab.NewHTTPClient(nil)), idleGC: idleGC, execCluster: execClusterBinary}))
}

// tuneRuntime sizes the Go runtime for this program, whose daemon does a
// few milliseconds of work every 25 minutes with nothing to run in
// parallel. It runs first thing in main.
//   - One processor (GOMAXPROCS=1) unless GOMAXPROCS is in the
//     environment: every extra processor keeps its own caches of memory
//     spans and of exited goroutines with their stacks. On 2 CPUs that was
//     0.3-0.4 MB more private memory after the first cycle and after 300
//     refreshes (bench/perf), for no gain in start-up time. This call
//     comes after the runtime made its processors and ran its first
//     goroutines on them, which in about half of the processes leaves
//     0.4-0.5 MB more for good; the shipped systemd unit, launchd agent
//     and run script therefore set GOMAXPROCS=1 in the environment, so
//     that the runtime starts with one.
//   - No heap profiling: nothing here ever writes a heap profile, and its
//     sample records cost memory that is never given back. The rate must
//     be set before the allocations it would sample.
func tuneRuntime() {
	runtime.MemProfileRate = 0
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}

// idleMemoryLimit is the Go runtime's memory limit while idleGC is in
// force. The daemon's runtime holds about 8 MiB (heap, stacks, metadata)
// and a refresh cycle allocates 1-4 MB, so no cycle reaches it; much
// lower (about 8 MiB) and the collector would run all the time.
const idleMemoryLimit = 16 << 20

// idleGC turns the collector's periodic run off for the daemon: the Go
// runtime forces a collection every 2 minutes once one has run, a burst
// of 8-25 thread wake-ups each time, and the loop already collects, and
// returns the memory, after every refresh attempt (observers.freeMemory).
// The memory limit still collects if something allocates between cycles.
// GOGC or GOMEMLIMIT in the environment win.
func idleGC() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(idleMemoryLimit)
	debug.SetGCPercent(-1)
}

// process is what the commands take from the process they run in: the
// standard streams, the HTTP client for Schwab (system roots), and the
// garbage collector's settings for an idle daemon (nil: leave them; tests
// run commands in-process with buffers, a client trusting fakeschwab and
// no idleGC), and how to hand a cluster-mode command line to the cluster
// build (nil: do not; see execClusterBinary).
type process struct {
	out, err    io.Writer
	in          io.Reader
	schwabHTTP  *http.Client
	idleGC      func()
	execCluster func(args []string) error
}

// exitRequest is how kong's --help and --version (which want to exit the
// process) end a run: run recovers it as the exit code.
type exitRequest int

// newParser builds the command line parser for cli, to parse args.
//
// The version line (kong's ${version}, which --version prints) is set
// only when args ask for it (see asksVersion): kong interpolates every
// variable again for each flag, so it cost every start-up about 0.09 ms
// (versionLine reads the binary's build information, then some 80 more
// regexp runs and map copies in kong.New and Parse) for a line that only
// --version prints.
func newParser(cli *CLI, pr *process, args ...string) (*kong.Kong, error) {
	vars := kong.Vars{
		"default_socket":         tokensender.DefaultSocketPath,
		"refresh_token_lifetime": fmt.Sprintf("%dh", int(tokensender.RefreshTokenLifetime/time.Hour)),
	}
	if asksVersion(args) {
		vars["version"] = versionLine()
	}
	return kong.New(cli,
		kong.Name("token-refresh-sender"),
		kong.Description("Keeps Schwab Trader API OAuth tokens alive and pushes them to your trading bot."),
		kong.Writers(pr.out, pr.err),
		kong.Exit(func(code int) { panic(exitRequest(code)) }),
		kong.ValueFormatter(helpWithDefault),
		kong.Groups{sharedGroup: "Shared flags (every command):"},
		vars,
	)
}

// asksVersion reports whether args may set --version, kong's version
// flag: the flag has no short form, no environment variable and no
// negation, so only "--version" or "--version=VALUE" sets it. A match
// where kong reads something else (after "--", as a flag's value) only
// costs the version line.
func asksVersion(args []string) bool {
	for _, a := range args {
		if a == "--version" || strings.HasPrefix(a, "--version=") {
			return true
		}
	}
	return false
}

// run parses args, runs the chosen subcommand and returns the exit code.
func run(args []string, pr *process) (code int) {
	defer func() {
		if r := recover(); r != nil {
			req, ok := r.(exitRequest)
			if !ok {
				panic(r)
			}
			code = int(req)
		}
	}()
	var cli CLI
	parser, err := newParser(&cli, pr, args...)
	if err != nil {
		fmt.Fprintln(pr.err, "token-refresh-sender:", err)
		return exitFailure
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintf(pr.err, "token-refresh-sender: %v (see --help)\n", withSuggestion(parser, err))
		return usageExit(parsedCommand(err, args))
	}
	cmd := ""
	if n := kctx.Selected(); n != nil {
		cmd = n.Name
	}
	if cli.Globals.clusterOn() && !clusterBuilt && pr.execCluster != nil {
		// Returns only if the cluster build cannot be run.
		err = pr.execCluster(args)
	} else {
		err = kctx.Run(&cli.Globals, pr)
	}
	var ec exitCode
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ec):
		return int(ec)
	case errors.As(err, &ue):
		fmt.Fprintf(pr.err, "token-refresh-sender: %v (see --help)\n", err)
		return usageExit(cmd)
	}
	fmt.Fprintln(pr.err, "token-refresh-sender:", err)
	if cmd == "status" {
		return exitStatusUnknown
	}
	return exitFailure
}

// usageExit is the exit code for a usage error of cmd.
func usageExit(cmd string) int {
	if cmd == "status" {
		return exitStatusUnknown
	}
	return exitUsage
}

// parsedCommand is the command a failed parse was for: the one kong had
// reached, else "status" if the word is among the arguments (so a check
// like `token-refresh-sender --bogus status` still exits UNKNOWN).
func parsedCommand(err error, args []string) string {
	var pe *kong.ParseError
	if errors.As(err, &pe) && pe.Context != nil {
		for _, p := range pe.Context.Path {
			if p.Command != nil && !(p.Command.Tag != nil && p.Command.Tag.Default == "withargs") {
				return p.Command.Name
			}
		}
	}
	for _, a := range args {
		if a == "status" {
			return a
		}
	}
	return ""
}

// withSuggestion adds a "did you mean" to an unknown command: kong already
// suggests flags, but hands a mistyped command to the default command
// (run) as a stray argument.
func withSuggestion(parser *kong.Kong, err error) error {
	word, ok := strings.CutPrefix(err.Error(), "unexpected argument ")
	if !ok || strings.Contains(word, " ") {
		return err
	}
	if s := suggest(parser, word); s != "" {
		return fmt.Errorf("unknown command %q, did you mean %s?", word, s)
	}
	return err
}

// suggest names the commands close to word (a prefix of it, or at most
// two edits away), quoted and comma-separated; "" if none.
func suggest(parser *kong.Kong, word string) string {
	var close []string
	for _, c := range parser.Model.Children {
		if c.Hidden {
			continue
		}
		if strings.HasPrefix(c.Name, word) || editDistance(c.Name, word) <= 2 {
			close = append(close, fmt.Sprintf("%q", c.Name))
		}
	}
	return strings.Join(close, " or ")
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// helpWithDefault is kong's flag help plus the default value where kong
// hides it: behind a placeholder (PATH, MB...).
func helpWithDefault(v *kong.Value) string {
	help := kong.DefaultHelpValueFormatter(v)
	if !v.HasDefault || v.Tag.PlaceHolder == "" {
		return help
	}
	def := v.Default
	if def == "" {
		def = `""`
	}
	return help + " Default: " + def + "."
}

// HelpCmd is `help [COMMAND]`.
type HelpCmd struct {
	Command string `arg:"" optional:"" help:"The command to explain (none: the overview)."`
}

// Run prints the help of the program or of one command.
func (c *HelpCmd) Run(kctx *kong.Context) error {
	args := []string{"--help"}
	if c.Command != "" {
		found := false
		for _, n := range kctx.Model.Children {
			found = found || n.Name == c.Command
		}
		if !found {
			if s := suggest(kctx.Kong, c.Command); s != "" {
				return usage(fmt.Errorf("help: unknown command %q, did you mean %s?", c.Command, s))
			}
			return usage(fmt.Errorf("help: unknown command %q", c.Command))
		}
		args = []string{c.Command, "--help"}
	}
	_, err := kctx.Kong.Parse(args)
	return err
}
