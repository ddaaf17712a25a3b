package main

import (
	"fmt"
	"time"

	"github.com/schwabtools/token-refresh-sender/status"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// StatusCmd reports on the token file and the bot sockets for people and
// monitoring systems. It never refreshes.
type StatusCmd struct {
	JSON bool `env:"TOKEN_SENDER_STATUS_JSON" help:"Print one JSON object instead of text."`
}

// Run prints the report and exits 0 ok, 1 warning, 2 critical, 3 unknown.
func (c *StatusCmd) Run(g *Globals, pr *process) error {
	targets, err := g.targets()
	if err != nil {
		return err
	}
	// Loose permissions are a warning on stderr: stdout is the report
	// monitoring parses.
	for _, w := range tokenfile.PermissionWarnings(g.TokenFile) {
		fmt.Fprintln(pr.err, "WARNING: "+w)
	}
	r := status.Check(g.TokenFile, targets, g.RefreshTokenLifetime, time.Now())
	if g.clusterOn() {
		return g.statusCluster(pr.out, c.JSON, r)
	}
	write := r.WriteText
	if c.JSON {
		write = r.WriteJSON
	}
	if err := write(pr.out); err != nil {
		return err
	}
	if code := r.ExitCode(); code != 0 {
		return exitCode(code)
	}
	return nil
}
