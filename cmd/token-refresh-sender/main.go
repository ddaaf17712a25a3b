// Command token-refresh-sender keeps Charles Schwab Trader API OAuth tokens
// alive: it refreshes the access token before it expires, rewrites the
// token file atomically, and pushes each new token to the trading bot over
// a Unix socket. This package is wiring only; the behaviour lives in the
// packages it imports.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/alecthomas/kong"

	tokensender "github.com/schwabtools/token-refresh-sender"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run parses args, runs the chosen subcommand and returns the exit code.
func run(args []string) int {
	var cli CLI
	parser, err := kong.New(&cli,
		kong.Name("token-refresh-sender"),
		kong.Description("Keeps Schwab Trader API OAuth tokens alive and pushes them to your trading bot."),
		kong.UsageOnError(),
		kong.Vars{"default_socket": tokensender.DefaultSocketPath},
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "token-refresh-sender:", err)
		return 2
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "token-refresh-sender: %v (see --help)\n", err)
		return 2
	}
	if err := kctx.Run(&cli.Globals); err != nil {
		var ec exitCode
		if errors.As(err, &ec) {
			return int(ec)
		}
		fmt.Fprintln(os.Stderr, "token-refresh-sender:", err)
		return 1
	}
	return 0
}
