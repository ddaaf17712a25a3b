package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/cluster"
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
	var cl *cluster.Cluster
	if g.clusterOn() {
		cfg, err := g.clusterConfig(app.AppKey, os.Getenv)
		if err != nil {
			return err
		}
		if cl, err = cluster.Open(cfg, log); err != nil {
			return usage(err)
		}
		defer cl.Close()
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
	var res *login.Result
	if cl == nil {
		res, err = login.Run(s.ctx, opts)
	} else {
		res, err = clusterLogin(s.ctx, cl, opts)
	}
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

// clusterLogin runs the browser login while holding the cluster's login
// lock, so no two hosts log in at once; login.Run writes the local token
// file as without a cluster, and the token it wrote is then stored as the
// etcd record, which every instance delivers.
func clusterLogin(ctx context.Context, cl *cluster.Cluster, opts login.Options) (*login.Result, error) {
	var res *login.Result
	_, err := cl.Login(ctx, func(ctx context.Context) (tokensender.Token, error) {
		r, err := login.Run(ctx, opts)
		if err != nil {
			return tokensender.Token{}, err
		}
		res = r
		doc, err := tokenfile.Load(opts.TokenFile)
		if err != nil {
			return tokensender.Token{}, fmt.Errorf("read back the new token file to store it in etcd: %w", err)
		}
		return doc.Token(), nil
	})
	if err != nil {
		if res != nil {
			// The login itself worked and the token file holds it; only
			// etcd did not get it.
			return nil, fmt.Errorf("%w (the new token is in %s; run the login again to store it in etcd)", err, opts.TokenFile)
		}
		return nil, err
	}
	return res, nil
}
