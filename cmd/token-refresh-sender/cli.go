package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/schwabtools/token-refresh-sender/config"
	"github.com/schwabtools/token-refresh-sender/delivery"
	"github.com/schwabtools/token-refresh-sender/logging"
	"github.com/schwabtools/token-refresh-sender/metrics"
	"github.com/schwabtools/token-refresh-sender/schwab"
)

// CLI is the command line: global flags and one struct per subcommand.
// Every flag can also be set through TOKEN_SENDER_<FLAG>.
type CLI struct {
	Globals

	Run     RunCmd     `cmd:"" default:"withargs" help:"Run the refresh daemon (the default)."`
	Refresh RefreshCmd `cmd:"" help:"Refresh once, save the token file, deliver to the bot(s), and exit."`
	Send    SendCmd    `cmd:"" help:"Deliver the token in the token file to the bot(s) without refreshing."`
	Listen  ListenCmd  `cmd:"" help:"Receive tokens like the trading bot would (a reference receiver)."`
	Status  StatusCmd  `cmd:"" help:"Show token expiry, refresh-token expiry and bot sockets; exit 0 ok, 1 warning, 2 critical, 3 unknown."`
	Login   LoginCmd   `cmd:"" help:"Log in to Schwab in the browser and write the first token file."`
	Demo    DemoCmd    `cmd:"" help:"Run the whole system on a built-in sandbox (no Schwab account needed)."`
	Version VersionCmd `cmd:"" help:"Print the version."`
}

// Globals are the flags every subcommand shares.
type Globals struct {
	Config               string        `default:"configs/schwab_app_config.yaml" env:"TOKEN_SENDER_CONFIG" placeholder:"PATH" help:"Schwab app config (YAML)."`
	TokenFile            string        `default:"configs/schwab_tokens.json" env:"TOKEN_SENDER_TOKEN_FILE" placeholder:"PATH" help:"Token file (schwab-py layout)."`
	Socket               []string      `default:"${default_socket}" env:"TOKEN_SENDER_SOCKET" placeholder:"PATH|tcp://127.0.0.1:PORT" help:"Bot socket; repeat for several bots. Loopback TCP allowed."`
	AllowPeerUID         []int         `name:"allow-peer-uid" env:"TOKEN_SENDER_ALLOW_PEER_UID" placeholder:"UID" help:"Also send tokens to Unix sockets served by this uid (besides this user and root); repeatable."`
	LogFile              string        `default:"logs/token_refresh_sender.log" env:"TOKEN_SENDER_LOG_FILE" placeholder:"PATH" help:"Log file, besides stdout (empty for stdout only)."`
	LogLevel             string        `default:"info" env:"TOKEN_SENDER_LOG_LEVEL" enum:"debug,info,warning,warn,error" help:"Log level: debug, info, warning (or warn), error."`
	LogFormat            string        `default:"text" env:"TOKEN_SENDER_LOG_FORMAT" enum:"text,json" help:"Log line format: text (the classic lines) or json (for log shippers)."`
	LogMaxSize           int           `default:"10" env:"TOKEN_SENDER_LOG_MAX_SIZE" placeholder:"MB" help:"Rotate the log file when it reaches this many megabytes."`
	LogMaxBackups        int           `default:"5" env:"TOKEN_SENDER_LOG_MAX_BACKUPS" help:"Rotated log files to keep."`
	LogMaxAge            int           `default:"0" env:"TOKEN_SENDER_LOG_MAX_AGE" placeholder:"DAYS" help:"Delete rotated log files older than this many days (0: keep)."`
	MetricsAddr          string        `env:"TOKEN_SENDER_METRICS_ADDR" placeholder:"HOST:PORT" help:"Serve Prometheus /metrics and /healthz here (off by default; loopback only)."`
	MetricsAllowRemote   bool          `env:"TOKEN_SENDER_METRICS_ALLOW_REMOTE" help:"Allow a non-loopback --metrics-addr (metrics have no authentication)."`
	Interval             time.Duration `default:"25m" env:"TOKEN_SENDER_INTERVAL" help:"Time between refreshes (never later than 5 minutes before expiry)."`
	RetryMin             time.Duration `default:"2s" env:"TOKEN_SENDER_RETRY_MIN" help:"First retry delay after a failed refresh."`
	RetryMax             time.Duration `default:"2m" env:"TOKEN_SENDER_RETRY_MAX" help:"Longest retry delay; also the pace while a new login is needed."`
	RefreshTokenLifetime time.Duration `default:"168h" env:"TOKEN_SENDER_REFRESH_TOKEN_LIFETIME" help:"How long a refresh token lives after the browser login (Schwab: 7 days)."`
}

// exitCode is an error that carries only an exit status: whatever needed
// saying has been logged already.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// validate checks the flags that every subcommand uses.
func (g *Globals) validate() error {
	if g.Interval < time.Second {
		return fmt.Errorf("--interval %v is too short: use at least 1s (the default is 25m)", g.Interval)
	}
	if g.RetryMin <= 0 || g.RetryMax < g.RetryMin {
		return fmt.Errorf("--retry-min %v and --retry-max %v: both must be positive and retry-min <= retry-max", g.RetryMin, g.RetryMax)
	}
	if g.RefreshTokenLifetime <= 0 {
		return fmt.Errorf("--refresh-token-lifetime %v: must be positive (Schwab's is 168h)", g.RefreshTokenLifetime)
	}
	if g.LogMaxSize < 1 || g.LogMaxBackups < 0 || g.LogMaxAge < 0 {
		return fmt.Errorf("--log-max-size must be >= 1 (MB), --log-max-backups and --log-max-age >= 0")
	}
	if g.MetricsAddr != "" {
		if err := metrics.ListenAddr(g.MetricsAddr, g.MetricsAllowRemote); err != nil {
			return err
		}
	}
	_, err := g.targets()
	return err
}

// targets parses every --socket.
func (g *Globals) targets() ([]delivery.Address, error) {
	var out []delivery.Address
	for _, s := range g.Socket {
		a, err := delivery.ParseAddress(s)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, errors.New("--socket: give at least one bot socket")
	}
	return out, nil
}

// socketList is the "Socket path:" line's value.
func (g *Globals) socketList() string { return strings.Join(g.Socket, ", ") }

// logger builds the logger writing to stdout and, unless --log-file is
// empty, to the rotating log file. reopen reopens the file (SIGHUP, after
// logrotate moved it); closeLog flushes and closes it.
func (g *Globals) logger(stdout io.Writer) (log *slog.Logger, reopen func() error, closeLog func(), err error) {
	level, err := logging.ParseLevel(g.LogLevel)
	if err != nil {
		return nil, nil, nil, err
	}
	log, reopen, closeFn, err := logging.Open(stdout, level, g.LogFormat, logging.FileOptions{
		Path: g.LogFile, MaxSizeMB: g.LogMaxSize, MaxBackups: g.LogMaxBackups, MaxAgeDays: g.LogMaxAge,
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--log-file: %w", err)
	}
	return log, reopen, func() { closeFn() }, nil
}

// session is what every subcommand that logs sets up first: the logger and
// signal handling (SIGINT/SIGTERM cancel ctx, SIGUSR1 asks for a refresh,
// SIGHUP reopens the log file).
type session struct {
	log        *slog.Logger
	ctx        context.Context
	refreshNow <-chan struct{}
	close      func()
}

// begin validates the shared flags and starts a session writing to
// stdout and the log file. Call close when done.
func (g *Globals) begin() (*session, error) {
	if err := g.validate(); err != nil {
		return nil, err
	}
	return g.beginLogging()
}

// beginLogging starts a session without validating the flags.
func (g *Globals) beginLogging() (*session, error) {
	log, reopen, closeLog, err := g.logger(os.Stdout)
	if err != nil {
		return nil, err
	}
	ctx, refreshNow, stop := handleSignals(log, reopen)
	return &session{log: log, ctx: ctx, refreshNow: refreshNow, close: func() { stop(); closeLog() }}, nil
}

// loadApp loads the app config, logging its warnings, or logs why it cannot.
func (g *Globals) loadApp(log *slog.Logger) (*config.App, error) {
	app, warnings, err := config.Load(g.Config, os.Getenv)
	for _, w := range warnings {
		log.Warn(w)
	}
	if err != nil {
		log.Error(err.Error())
		if errors.Is(err, os.ErrNotExist) {
			log.Error("Create it from configs/schwab_app_config.example.yaml with your Schwab app key, secret and callback URL")
		}
		return nil, exitCode(1)
	}
	return app, nil
}

// client is the Schwab OAuth client for app.
func client(app *config.App) *schwab.Client {
	return &schwab.Client{
		AppKey:     app.AppKey,
		AppSecret:  app.AppSecret,
		TokenURL:   app.TokenURL,
		HTTPClient: schwab.NewHTTPClient(nil),
	}
}

// logTokenFileError explains a token file that cannot be used.
func logTokenFileError(log *slog.Logger, err error) error {
	log.Error(err.Error())
	loginHint(log, err)
	return exitCode(1)
}

// loginHint tells how to create a missing token file.
func loginHint(log *slog.Logger, err error) {
	if errors.Is(err, os.ErrNotExist) {
		log.Error("Run `token-refresh-sender login` to sign in to Schwab and create it")
	}
}
