package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/schwabtools/token-refresh-sender/fakeschwab"
	"github.com/schwabtools/token-refresh-sender/schwab"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// DemoCmd runs the daemon, a fake Schwab and a stand-in bot together, in a
// temporary directory, for someone without a Schwab account.
type DemoCmd struct {
	Cycles        int           `help:"Stop after N refresh cycles (0: run until Ctrl+C)." default:"0"`
	Every         time.Duration `help:"Refresh interval in the sandbox." default:"7s"`
	TokenLifetime time.Duration `help:"Lifetime of the sandbox's access tokens." default:"10s"`
}

// Run sets up the sandbox and runs the real refresh loop against it.
func (c *DemoCmd) Run(g *Globals) error {
	if c.Cycles < 0 || c.Every < time.Second || c.TokenLifetime < 2*time.Second {
		return fmt.Errorf("demo: --cycles must be >= 0, --every >= 1s and --token-lifetime >= 2s")
	}
	dir, err := os.MkdirTemp("", "trs-demo")
	if err != nil {
		return fmt.Errorf("demo: create sandbox directory: %w", err)
	}
	defer os.RemoveAll(dir)

	fake := fakeschwab.New(fakeschwab.Config{
		AppKey:              "demo-app-key",
		AppSecret:           "demo-app-secret",
		CallbackURL:         "https://127.0.0.1:8182",
		AccessTokenLifetime: c.TokenLifetime,
	})
	srv, err := fakeschwab.StartTLS(fake)
	if err != nil {
		return fmt.Errorf("demo: start the fake Schwab server: %w", err)
	}
	defer srv.Close()

	sandbox := *g
	sandbox.Config = filepath.Join(dir, "configs", "schwab_app_config.yaml")
	sandbox.TokenFile = filepath.Join(dir, "configs", "schwab_tokens.json")
	sandbox.Socket = []string{filepath.Join(dir, "bot.sock")}
	sandbox.LogFile = filepath.Join(dir, "logs", "token_refresh_sender.log")
	sandbox.Interval = c.Every
	if err := writeSandboxFiles(&sandbox, srv, fake); err != nil {
		return err
	}

	log, reopenLog, closeLog, err := sandbox.logger(os.Stdout)
	if err != nil {
		return err
	}
	defer closeLog()
	log.Info("Demo sandbox in " + dir + " (removed on exit)")
	log.Info("Fake Schwab token endpoint: " + srv.TokenURL + " (" + c.TokenLifetime.String() + " access tokens)")
	log.Info("Stand-in trading bot listening on " + sandbox.Socket[0])

	ctx, _, stop := handleSignals(log, reopenLog)
	defer stop()
	bot := newListener(sandbox.Socket[0], log, "[bot] ")
	if err := bot.Listen(); err != nil {
		return fmt.Errorf("demo: start the stand-in bot: %w", err)
	}
	botCtx, stopBot := context.WithCancel(context.Background())
	botDone := make(chan error, 1)
	go func() { botDone <- bot.Serve(botCtx) }()
	defer func() {
		stopBot()
		<-botDone
	}()

	sc := &schwab.Client{AppKey: "demo-app-key", AppSecret: "demo-app-secret", TokenURL: srv.TokenURL, HTTPClient: schwab.NewHTTPClient(srv.RootCAs)}
	d, err := sandbox.daemon(log, sc, nil)
	if err != nil {
		return err
	}
	d.MaxCycles = c.Cycles
	sandbox.prepare(ctx, d, log)
	if err := d.Run(ctx); err != nil {
		return exitCode(1)
	}
	return nil
}

// writeSandboxFiles writes the app config pointing at the fake server and
// a token file as if the user had just logged in.
func writeSandboxFiles(g *Globals, srv *fakeschwab.TLSServer, fake *fakeschwab.Server) error {
	if err := os.MkdirAll(filepath.Dir(g.Config), 0o700); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	cfg := fmt.Sprintf("app_name: DemoApp\napp_key: demo-app-key\napp_secret: demo-app-secret\ncallback_url: https://127.0.0.1:8182\ntoken_url: %s\nauthorize_url: %s\n",
		srv.TokenURL, srv.AuthorizeURL)
	if err := os.WriteFile(g.Config, []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("demo: write app config: %w", err)
	}
	if err := tokenfile.Write(g.TokenFile, tokenfile.New(fake.Login(), time.Now())); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}
