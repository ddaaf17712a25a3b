package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/alecthomas/kong"

	"github.com/schwabtools/token-refresh-sender/fakeschwab"
	"github.com/schwabtools/token-refresh-sender/schwab"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// DemoCmd runs the daemon, a fake Schwab and a stand-in bot together, in a
// temporary directory, for someone without a Schwab account.
type DemoCmd struct {
	Cycles        int           `default:"0" env:"TOKEN_SENDER_DEMO_CYCLES" help:"Stop after N refresh cycles (0: run until Ctrl+C)."`
	Every         time.Duration `default:"7s" env:"TOKEN_SENDER_DEMO_EVERY" help:"Refresh interval in the sandbox (the demo's --interval)."`
	TokenLifetime time.Duration `default:"10s" env:"TOKEN_SENDER_DEMO_TOKEN_LIFETIME" help:"Lifetime of the sandbox's access tokens."`
}

// demoRefused are the shared flags the demo cannot honour, and why: it
// never reads or writes the user's own config and token file.
var demoRefused = []struct{ flag, why string }{
	{"config", "the demo writes its own app config in its sandbox and never reads yours"},
	{"token-file", "the demo writes its own token file in its sandbox and never touches yours"},
	{"interval", "use the demo's --every (default 7s)"},
}

// Run sets up the sandbox and runs the real daemon (Main) against it.
// --socket and --log-file are honoured (by default both live in the
// sandbox); --config, --token-file and --interval are refused.
func (c *DemoCmd) Run(g *Globals, pr *process, kctx *kong.Context) error {
	if c.Cycles < 0 || c.Every < time.Second || c.TokenLifetime < 2*time.Second {
		return usage(fmt.Errorf("demo: --cycles must be >= 0, --every >= 1s and --token-lifetime >= 2s"))
	}
	for _, r := range demoRefused {
		if given(kctx, r.flag) {
			return usage(fmt.Errorf("demo: --%s (or %s) is not used by the demo: %s; leave it out", r.flag, envOf(kctx, r.flag), r.why))
		}
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
	if !given(kctx, "socket") {
		sandbox.Socket = []string{filepath.Join(dir, "bot.sock")}
	}
	if !given(kctx, "log-file") {
		sandbox.LogFile = filepath.Join(dir, "logs", "token_refresh_sender.log")
	}
	sandbox.Interval = c.Every
	if err := sandbox.validate(); err != nil {
		return err
	}
	if err := writeSandboxFiles(&sandbox, srv, fake); err != nil {
		return err
	}

	m := NewMain(sandbox, nil)
	m.Stdout = pr.out
	m.HTTPClient = schwab.NewHTTPClient(srv.RootCAs)
	m.MaxCycles = c.Cycles
	m.Ready = func(m *Main) error { return startDemoBot(m, dir, srv, c.TokenLifetime) }
	return runMain(context.Background(), m)
}

// startDemoBot tells where everything is and starts the stand-in bot on
// the first --socket; Close stops it before the log closes.
func startDemoBot(m *Main, dir string, srv *fakeschwab.TLSServer, lifetime time.Duration) error {
	log, g := m.Log, &m.Flags
	sock := g.sockets()[0]
	log.Info("Demo sandbox in " + dir + " (removed on exit)")
	log.Info("Fake Schwab token endpoint: " + srv.TokenURL + " (" + lifetime.String() + " access tokens)")
	log.Info("Token file: " + g.TokenFile)
	log.Info("Stand-in trading bot listening on " + sock)
	log.Info("Try from another terminal while the demo runs: token-refresh-sender status --token-file " + g.TokenFile + " --socket " + sock)
	bot := newListener(sock, log, "[bot] ")
	if err := bot.Listen(); err != nil {
		return fmt.Errorf("demo: start the stand-in bot: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bot.Serve(ctx) }()
	m.onClose(func() error {
		stop()
		return <-done
	})
	return nil
}

// given reports whether the user set a flag, on the command line or
// through its environment variable.
func given(kctx *kong.Context, name string) bool {
	for _, p := range kctx.Path {
		if p.Flag != nil && p.Flag.Name == name {
			return true
		}
	}
	for _, f := range kctx.Flags() {
		if f.Name != name {
			continue
		}
		for _, env := range f.Envs {
			if _, ok := os.LookupEnv(env); ok {
				return true
			}
		}
	}
	return false
}

// envOf names a flag's environment variable.
func envOf(kctx *kong.Context, name string) string {
	for _, f := range kctx.Flags() {
		if f.Name == name && len(f.Envs) > 0 {
			return f.Envs[0]
		}
	}
	return "its variable"
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
