package main

import (
	"fmt"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/logging"
)

// RefreshCmd refreshes once (the seed's "Test Token Refresh Only").
type RefreshCmd struct{}

// Run refreshes, saves, delivers, and prints a short summary.
func (c *RefreshCmd) Run(g *Globals) error {
	s, err := g.begin()
	if err != nil {
		return err
	}
	defer s.close()
	log := s.log
	d, err := g.daemon(log, nil, nil)
	if err != nil {
		return err
	}
	tok, err := d.Once(s.ctx)
	if err != nil && tok.AccessToken != "" {
		printSummary("⚠️  Token refreshed and delivered, but the token file could not be written", tok, time.Now())
		return exitCode(1)
	}
	if err != nil {
		loginHint(log, err)
		fmt.Println("❌ Token refresh failed")
		return exitCode(1)
	}
	printSummary("✅ Token refresh successful!", tok, time.Now())
	return nil
}

// printSummary shows a token to a person: a prefix, never the whole token.
func printSummary(title string, tok tokensender.Token, now time.Time) {
	fmt.Println(title)
	fmt.Printf("   Access token: %s\n", tokensender.Redact(tok.AccessToken))
	left := "expired"
	if !tok.Expired(now) {
		left = "in " + tokensender.HumanDuration(tok.ExpiresAt.Sub(now))
	}
	fmt.Printf("   Expires at: %s (%s)\n", tok.ExpiresAt.Format(logging.TimeLayout), left)
}
