package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/logging"
	"github.com/schwabtools/token-refresh-sender/receiver"
)

// ListenCmd is a stand-in for the trading bot.
type ListenCmd struct{}

// Run receives tokens on the first --socket until SIGINT/SIGTERM, printing
// one line per token (a prefix, never the token).
func (c *ListenCmd) Run(g *Globals, pr *process) error {
	targets, err := g.targets()
	if err != nil {
		return err
	}
	log := slog.New(logging.NewTextHandler(pr.out, nil))
	ctx, _, stop := handleSignals(context.Background(), log, nil)
	defer stop()
	r := newListener(targets[0].String(), log, "")
	if err := r.Listen(); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	log.Info(fmt.Sprintf("Listening for tokens on %s (Ctrl+C to stop)", r.BoundAddr()))
	return r.Serve(ctx)
}

// newListener is a receiver that logs each token received, each line
// starting with prefix. A message it refuses (the sender's mistake: the
// sender got "ERROR: ...") is a WARNING; trouble on this side (accepting a
// connection, reading from it) is an ERROR, in words of its own.
func newListener(addr string, log *slog.Logger, prefix string) *receiver.Receiver {
	return &receiver.Receiver{
		Addr: addr,
		OnToken: func(t receiver.Token) {
			log.Info(fmt.Sprintf("%sReceived token %s (expires %s, in %s)", prefix,
				tokensender.Redact(t.AccessToken), t.ExpiresAt.Format(logging.TimeLayout),
				tokensender.HumanDuration(time.Until(t.ExpiresAt))))
		},
		OnReject: func(err error) {
			log.Warn(prefix + "Rejected a message: " + err.Error())
		},
		OnError: func(err error) {
			log.Error(prefix + "Could not receive: " + err.Error())
		},
	}
}
