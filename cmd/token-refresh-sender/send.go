package main

import (
	"context"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/delivery"
	"github.com/schwabtools/token-refresh-sender/logging"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// SendCmd delivers the saved token without refreshing (the seed's "Test
// Socket Communication").
type SendCmd struct{}

// Run reads the token file and delivers its token to every --socket. It
// exits 0 when at least one bot took the token, 1 otherwise.
func (c *SendCmd) Run(g *Globals, pr *process) error {
	s, err := g.begin(pr.out)
	if err != nil {
		return err
	}
	defer s.close()
	log, ctx := s.log, s.ctx
	targets, _ := g.targets()
	store := g.store(log)
	tok, err := readLocked(ctx, store)
	if err != nil {
		return logTokenFileError(log, err)
	}
	now := time.Now()
	if tok.Expired(now) {
		log.Warn("The access token in " + g.TokenFile + " expired at " + tok.ExpiresAt.Format(logging.TimeLayout) + "; sending it anyway (run `token-refresh-sender refresh` for a fresh one)")
	}
	printSummary(pr.out, "Sending token from "+g.TokenFile, tok, now)
	sender := &delivery.Sender{Targets: targets, Logger: log, AllowedPeerUIDs: g.AllowPeerUID}
	delivered := false
	for _, r := range sender.Send(ctx, tok.Message()).Wait() {
		if r.Outcome == delivery.Delivered || r.Outcome == delivery.DeliveredNoAck {
			delivered = true
		}
	}
	if !delivered {
		return exitCode(1)
	}
	return nil
}

// readLocked loads the token file. Writers replace it atomically and the
// store re-reads a file caught mid-write, so no lock is needed.
func readLocked(ctx context.Context, store *tokenfile.Store) (tokensender.Token, error) {
	return store.Load(ctx)
}
