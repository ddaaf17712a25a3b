package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/schwabtools/token-refresh-sender/login"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// LoginCmd performs Schwab's browser login and writes the first token file
// (replaces the seed's schwab_oauth_server.py).
type LoginCmd struct {
	Open      bool          `env:"TOKEN_SENDER_LOGIN_OPEN" help:"Open the login URL in the desktop's browser." xor:"browser"`
	NoBrowser bool          `env:"TOKEN_SENDER_LOGIN_NO_BROWSER" help:"Never try to open a browser; just print the URL." xor:"browser"`
	Manual    bool          `env:"TOKEN_SENDER_LOGIN_MANUAL" help:"For SSH/headless machines: paste the address the browser was redirected to instead of running a callback server."`
	Timeout   time.Duration `default:"5m" env:"TOKEN_SENDER_LOGIN_TIMEOUT" help:"Give up when no callback arrives within this time."`
}

// Run logs in and prints a one-line summary.
func (c *LoginCmd) Run(g *Globals, pr *process) error {
	if c.Timeout <= 0 {
		return usage(fmt.Errorf("--timeout %v: must be positive (the default is 5m)", c.Timeout))
	}
	fileMode, err := tokenfile.ParseMode(g.TokenFileMode)
	if err != nil {
		return usage(fmt.Errorf("--token-file-mode: %w", err))
	}
	s, err := g.beginLogging(pr.out)
	if err != nil {
		return err
	}
	defer s.close()
	log := s.log
	g.warnPermissions(log)
	// Refuse another user's symlink or lock file before Schwab issues
	// tokens that could then not be saved.
	for _, check := range []func(string) error{tokenfile.CheckWriteTarget, tokenfile.CheckLockFile} {
		if err := check(g.TokenFile); err != nil {
			log.Error("Login refused: " + err.Error())
			return exitCode(1)
		}
	}
	app, err := g.loadApp(log)
	if err != nil {
		return err
	}
	mode := login.BrowserAuto
	switch {
	case c.Open:
		mode = login.BrowserOpen
	case c.NoBrowser:
		mode = login.BrowserNever
	}
	runLogin := login.Run
	if g.clusterOn() {
		clusterRun, closeCluster, err := g.clusterLogin(app.AppKey, log)
		if err != nil {
			return err
		}
		defer closeCluster()
		runLogin = clusterRun
	}
	opts := login.Options{
		App:           app,
		TokenFile:     g.TokenFile,
		TokenFileMode: fileMode,
		Client:        newSchwabClient(app, pr.schwabHTTP),
		Logger:        log,
		Out:           pr.out,
		In:            pr.in,
		Manual:        c.Manual,
		Browser:       mode,
		Timeout:       c.Timeout,
	}
	res, err := runLogin(s.ctx, opts)
	if err != nil {
		log.Error("Login failed: " + err.Error())
		if errors.Is(err, login.ErrNotSaved) {
			return exitCode(2)
		}
		return exitCode(1)
	}
	fmt.Fprintln(pr.out, res.Summary())
	return nil
}
