package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/schwabtools/token-refresh-sender/config"
	"github.com/schwabtools/token-refresh-sender/delivery"
	"github.com/schwabtools/token-refresh-sender/logging"
	"github.com/schwabtools/token-refresh-sender/metrics"
	"github.com/schwabtools/token-refresh-sender/schwab"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// CLI is the command line: global flags and one struct per subcommand.
// Every flag can also be set through TOKEN_SENDER_<FLAG> (TestCLI_everyFlagHasEnv
// holds that promise).
type CLI struct {
	Globals

	Version kong.VersionFlag `help:"Print the version and exit."`

	Run        RunCmd     `cmd:"" default:"withargs" help:"Run the refresh daemon (the default)."`
	Refresh    RefreshCmd `cmd:"" help:"Refresh once, save the token file, deliver to the bot(s), and exit."`
	Send       SendCmd    `cmd:"" help:"Deliver the token in the token file to the bot(s) without refreshing."`
	Listen     ListenCmd  `cmd:"" help:"Receive tokens like the trading bot would (a reference receiver)."`
	Status     StatusCmd  `cmd:"" help:"Show token expiry, refresh-token expiry and bot sockets; exit 0 ok, 1 warning, 2 critical, 3 unknown (also on a usage error)."`
	Login      LoginCmd   `cmd:"" help:"Log in to Schwab in the browser and write the first token file."`
	Token      TokenCmd   `cmd:"" help:"Print the current access token for scripts (raw, header or json); exit 0 valid, 1 expiring, 2 no usable token."`
	Demo       DemoCmd    `cmd:"" help:"Run the whole system on a built-in sandbox (no Schwab account needed)."`
	VersionCmd VersionCmd `cmd:"" name:"version" help:"Print the version."`
	Help       HelpCmd    `cmd:"" help:"Show help for the program or one command (help COMMAND)."`
}

// sharedGroup is the kong group of the flags every subcommand shares:
// help lists them after the subcommand's own flags.
const sharedGroup = "shared"

// socketSep separates several bots in TOKEN_SENDER_SOCKET (and in one
// --socket value): a newline, the one character no sensible socket path
// holds. Commas and colons are legal in paths and part of tcp:// addresses.
const socketSep = "\n"

// Globals are the flags every subcommand shares.
type Globals struct {
	Config               string        `default:"configs/schwab_app_config.yaml" env:"TOKEN_SENDER_CONFIG" group:"shared" placeholder:"PATH" help:"Schwab app config (YAML)."`
	TokenFile            string        `default:"configs/schwab_tokens.json" env:"TOKEN_SENDER_TOKEN_FILE" group:"shared" placeholder:"PATH" help:"Token file (schwab-py layout)."`
	TokenFileMode        string        `default:"0600" env:"TOKEN_SENDER_TOKEN_FILE_MODE" group:"shared" placeholder:"MODE" help:"Mode every write gives the token file: 0600, or 0640 to let the group read it."`
	Socket               []string      `default:"${default_socket}" env:"TOKEN_SENDER_SOCKET" sep:"none" group:"shared" placeholder:"PATH|tcp://127.0.0.1:PORT" help:"Bot socket; repeat the flag for several bots (in TOKEN_SENDER_SOCKET: one per line). Loopback TCP allowed."`
	AllowPeerUID         []int         `name:"allow-peer-uid" env:"TOKEN_SENDER_ALLOW_PEER_UID" group:"shared" placeholder:"UID" help:"Also send tokens to Unix sockets served by this uid (besides this user and root); repeatable (in the variable: comma-separated)."`
	LogFile              string        `default:"logs/token_refresh_sender.log" env:"TOKEN_SENDER_LOG_FILE" group:"shared" placeholder:"PATH" help:"Log file, besides stdout (empty for stdout only)."`
	LogLevel             string        `default:"info" env:"TOKEN_SENDER_LOG_LEVEL" group:"shared" enum:"debug,info,warning,warn,error" help:"Log level: debug, info, warning (or warn), error."`
	LogFormat            string        `default:"text" env:"TOKEN_SENDER_LOG_FORMAT" group:"shared" enum:"text,json" help:"Log line format: text (the classic lines) or json (for log shippers)."`
	LogMaxSize           int           `default:"10" env:"TOKEN_SENDER_LOG_MAX_SIZE" group:"shared" placeholder:"MB" help:"Rotate the log file when it reaches this many megabytes."`
	LogMaxBackups        int           `default:"5" env:"TOKEN_SENDER_LOG_MAX_BACKUPS" group:"shared" help:"Rotated log files to keep."`
	LogMaxAge            int           `default:"0" env:"TOKEN_SENDER_LOG_MAX_AGE" group:"shared" placeholder:"DAYS" help:"Delete rotated log files older than this many days (0: keep)."`
	MetricsAddr          string        `env:"TOKEN_SENDER_METRICS_ADDR" group:"shared" placeholder:"HOST:PORT" help:"Serve Prometheus /metrics and /healthz here (off by default; loopback only)."`
	MetricsAllowRemote   bool          `env:"TOKEN_SENDER_METRICS_ALLOW_REMOTE" group:"shared" help:"Allow a non-loopback --metrics-addr (metrics have no authentication)."`
	Interval             time.Duration `default:"25m" env:"TOKEN_SENDER_INTERVAL" group:"shared" help:"Time between refreshes (never later than 5 minutes before expiry)."`
	RetryMin             time.Duration `default:"2s" env:"TOKEN_SENDER_RETRY_MIN" group:"shared" help:"First retry delay after a failed refresh."`
	RetryMax             time.Duration `default:"2m" env:"TOKEN_SENDER_RETRY_MAX" group:"shared" help:"Longest retry delay; also the pace while a new login is needed."`
	RefreshTokenLifetime time.Duration `default:"${refresh_token_lifetime}" env:"TOKEN_SENDER_REFRESH_TOKEN_LIFETIME" group:"shared" help:"How long a refresh token lives after the browser login (Schwab: 7 days)."`

	clusterFlags
}

// clusterFlags turn cluster mode on (--etcd-endpoints) and configure it;
// see docs/cluster.md. The etcd password is read only from
// TOKEN_SENDER_ETCD_PASSWORD.
type clusterFlags struct {
	EtcdEndpoints         []string      `env:"TOKEN_SENDER_ETCD_ENDPOINTS" group:"shared" placeholder:"URL,..." help:"Cluster mode: the etcd client URLs (comma-separated); one instance per host refreshes, every host delivers. See docs/cluster.md."`
	EtcdPrefix            string        `env:"TOKEN_SENDER_ETCD_PREFIX" group:"shared" placeholder:"PREFIX" help:"Cluster mode: key prefix in etcd (default /token-refresh-sender/ plus a hash of the app key)."`
	EtcdCAFile            string        `name:"etcd-ca-file" env:"TOKEN_SENDER_ETCD_CA_FILE" group:"shared" placeholder:"PATH" help:"Cluster mode: CA certificate for etcd's TLS."`
	EtcdCertFile          string        `env:"TOKEN_SENDER_ETCD_CERT_FILE" group:"shared" placeholder:"PATH" help:"Cluster mode: client certificate for etcd."`
	EtcdKeyFile           string        `env:"TOKEN_SENDER_ETCD_KEY_FILE" group:"shared" placeholder:"PATH" help:"Cluster mode: client certificate's key."`
	EtcdUsername          string        `env:"TOKEN_SENDER_ETCD_USERNAME" group:"shared" placeholder:"USER" help:"Cluster mode: etcd user (the password only from TOKEN_SENDER_ETCD_PASSWORD)."`
	EtcdLeaseTTL          time.Duration `name:"etcd-lease-ttl" default:"10s" env:"TOKEN_SENDER_ETCD_LEASE_TTL" group:"shared" help:"Cluster mode: session lease TTL; a dead leader is replaced within about this."`
	NodeName              string        `env:"TOKEN_SENDER_NODE_NAME" group:"shared" placeholder:"NAME" help:"Cluster mode: this instance's name (default the host name)."`
	EtcdEncryptionKeyFile string        `env:"TOKEN_SENDER_ETCD_ENCRYPTION_KEY_FILE" group:"shared" placeholder:"PATH" help:"Cluster mode: 32-byte key file (mode 0600/0400) sealing every record in etcd."`
}

// clusterOn reports whether cluster mode is on.
func (g *Globals) clusterOn() bool { return len(g.EtcdEndpoints) > 0 }

// exitCode is an error that carries only an exit status: whatever needed
// saying has been logged already.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// usageError is a flag value that cannot work, found after parsing: it
// exits like a parse error (2, or 3 for status).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usage marks err as a usage error.
func usage(err error) error {
	if err == nil {
		return nil
	}
	return usageError{err}
}

// validate checks the flags that every subcommand uses. Its errors are
// usage errors.
func (g *Globals) validate() error {
	if g.Interval < time.Second {
		return usage(fmt.Errorf("--interval %v is too short: use at least 1s (the default is 25m)", g.Interval))
	}
	if g.RetryMin <= 0 || g.RetryMax < g.RetryMin {
		return usage(fmt.Errorf("--retry-min %v and --retry-max %v: both must be positive and retry-min <= retry-max", g.RetryMin, g.RetryMax))
	}
	if _, err := tokenfile.ParseMode(g.TokenFileMode); err != nil {
		return usage(fmt.Errorf("--token-file-mode: %w", err))
	}
	if g.RefreshTokenLifetime <= 0 {
		return usage(fmt.Errorf("--refresh-token-lifetime %v: must be positive (Schwab's is 168h)", g.RefreshTokenLifetime))
	}
	if g.LogMaxSize < 1 || g.LogMaxBackups < 0 || g.LogMaxAge < 0 {
		return usage(errors.New("--log-max-size must be >= 1 (MB), --log-max-backups and --log-max-age >= 0"))
	}
	if g.MetricsAddr != "" {
		if err := metrics.ListenAddr(g.MetricsAddr, g.MetricsAllowRemote); err != nil {
			return usage(err)
		}
	}
	_, err := g.targets()
	return err
}

// sockets are the --socket values, each value split at newlines (so
// TOKEN_SENDER_SOCKET can list several bots, one per line); empty lines
// are skipped. Nothing else splits a path: commas and colons are kept.
func (g *Globals) sockets() []string {
	var out []string
	for _, v := range g.Socket {
		for _, s := range strings.Split(v, socketSep) {
			if s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// targets parses every --socket. Its errors are usage errors.
func (g *Globals) targets() ([]delivery.Address, error) {
	var out []delivery.Address
	for _, s := range g.sockets() {
		a, err := delivery.ParseAddress(s)
		if err != nil {
			return nil, usage(err)
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, usage(errors.New("--socket: give at least one bot socket"))
	}
	return out, nil
}

// socketList is the "Socket path:" line's value.
func (g *Globals) socketList() string { return strings.Join(g.sockets(), ", ") }

// logger builds the logger writing to stdout and, unless --log-file is
// empty, to the rotating log file. reopen reopens the file (SIGHUP, after
// logrotate moved it); closeLog flushes and closes it.
func (g *Globals) logger(stdout io.Writer) (log *slog.Logger, reopen func() error, closeLog func() error, err error) {
	level, err := logging.ParseLevel(g.LogLevel)
	if err != nil {
		return nil, nil, nil, usage(err)
	}
	log, reopen, closeLog, err = logging.Open(stdout, level, g.LogFormat, logging.FileOptions{
		Path: g.LogFile, MaxSizeMB: g.LogMaxSize, MaxBackups: g.LogMaxBackups, MaxAgeDays: g.LogMaxAge,
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--log-file: %w", err)
	}
	return log, reopen, closeLog, nil
}

// session is what the one-shot subcommands that log set up first: the
// logger and signal handling (SIGINT/SIGTERM cancel ctx, SIGUSR1 asks for
// a refresh, SIGHUP reopens the log file).
type session struct {
	log        *slog.Logger
	ctx        context.Context
	refreshNow <-chan struct{}
	close      func()
}

// begin validates the shared flags and starts a session writing to
// stdout and the log file. Call close when done.
func (g *Globals) begin(stdout io.Writer) (*session, error) {
	if err := g.validate(); err != nil {
		return nil, err
	}
	return g.beginLogging(stdout)
}

// beginLogging starts a session without validating the flags.
func (g *Globals) beginLogging(stdout io.Writer) (*session, error) {
	log, reopen, closeLog, err := g.logger(stdout)
	if err != nil {
		return nil, err
	}
	ctx, refreshNow, stop := handleSignals(context.Background(), log, reopen)
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

// newSchwabClient is the Schwab OAuth client for app, talking through hc.
func newSchwabClient(app *config.App, hc *http.Client) *schwab.Client {
	return &schwab.Client{
		AppKey:     app.AppKey,
		AppSecret:  app.AppSecret,
		TokenURL:   app.TokenURL,
		HTTPClient: hc,
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

// warnPermissions logs one WARNING per way the token file or its
// directory is open to other users (run, refresh, login).
func (g *Globals) warnPermissions(log *slog.Logger) {
	for _, w := range tokenfile.PermissionWarnings(g.TokenFile) {
		log.Warn(w)
	}
}

// store is the token file as the flags describe it.
func (g *Globals) store(log *slog.Logger) *tokenfile.Store {
	mode, _ := tokenfile.ParseMode(g.TokenFileMode) // checked by validate
	return &tokenfile.Store{Path: g.TokenFile, Mode: mode, Logger: log}
}
