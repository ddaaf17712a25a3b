package login

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/config"
	"github.com/schwabtools/token-refresh-sender/schwab"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

// Defaults for zero Options fields.
const (
	DefaultTimeout              = 5 * time.Minute
	DefaultRefreshTokenLifetime = 7 * 24 * time.Hour
)

// lockWait bounds the wait for the token file's lock once new tokens are in
// hand (a running daemon holds it for one refresh at most).
const lockWait = 45 * time.Second

// BrowserMode says whether Run opens the login page in a browser.
type BrowserMode int

const (
	// BrowserAuto opens a browser when one can be shown: $DISPLAY or
	// $WAYLAND_DISPLAY is set, or on macOS.
	BrowserAuto BrowserMode = iota
	// BrowserOpen always tries to open a browser (--open).
	BrowserOpen
	// BrowserNever only prints the URL (--no-browser).
	BrowserNever
)

// Options configures one login. App, TokenFile and Client are required.
type Options struct {
	App       *config.App
	TokenFile string
	// TokenFileMode is the mode the token file is written with (0: 0600;
	// --token-file-mode).
	TokenFileMode os.FileMode
	// Client exchanges the code; it must be set up with App's key, secret
	// and token URL.
	Client *schwab.Client
	Logger *slog.Logger // nil: discard
	// Out receives the authorize URL on a line of its own (nil: os.Stdout).
	Out io.Writer
	// In is read in manual mode for the address the browser was sent to
	// (nil: os.Stdin).
	In io.Reader
	// Manual reads the redirect address from In instead of serving the
	// callback URL; no server is started.
	Manual  bool
	Browser BrowserMode
	// OpenURL opens url in a browser; nil runs xdg-open (open on macOS) on
	// a private page that forwards to url, so the URL and its state never
	// appear on a command line other users can read.
	OpenURL func(url string) error
	// Getenv decides BrowserAuto ($DISPLAY, $WAYLAND_DISPLAY); nil: os.Getenv.
	Getenv func(string) string
	// Timeout bounds the wait for the callback or the paste (default 5m).
	Timeout time.Duration
	// RefreshTokenLifetime is how long Schwab's refresh token lives, for
	// the summary (default 168h).
	RefreshTokenLifetime time.Duration
	Now                  func() time.Time // nil: time.Now
	// Ready, when set, is called once with the authorize URL after it was
	// printed and the callback server is listening (in manual mode: before
	// In is read). It must not block for long.
	Ready func(authorizeURL string)
}

// Result is a completed login.
type Result struct {
	Token     tokensender.Token
	TokenFile string
	// LoggedInAt is when the token file was written (its
	// creation_timestamp and refresh_token_issued_at).
	LoggedInAt time.Time
	// RefreshTokenExpiresAt is when the refresh token stops working and the
	// next login is due.
	RefreshTokenExpiresAt time.Time
}

// timeLayout is how the summary shows times.
const timeLayout = "2006-01-02 15:04:05"

// Summary is one line for the operator, with the access token shortened by
// tokensender.Redact:
//
//	Logged in: tokens saved to configs/schwab_tokens.json; access token I0.abcd... expires at 2025-11-13 09:14:24; refresh token must be renewed by 2025-11-20 08:44:24 (7 days)
func (r *Result) Summary() string {
	return fmt.Sprintf("Logged in: tokens saved to %s; access token %s expires at %s; refresh token must be renewed by %s (%s)",
		r.TokenFile, tokensender.Redact(r.Token.AccessToken), r.Token.ExpiresAt.Format(timeLayout),
		r.RefreshTokenExpiresAt.Format(timeLayout), tokensender.HumanDuration(r.RefreshTokenExpiresAt.Sub(r.LoggedInAt)))
}

// String is Summary, so that printing a Result never shows a token.
func (r *Result) String() string { return r.Summary() }

// LogValue is Summary, so that logging a Result never shows a token.
func (r *Result) LogValue() slog.Value { return slog.StringValue(r.Summary()) }

// flow is one running login.
type flow struct {
	opts     Options
	log      *slog.Logger
	now      func() time.Time
	callback *url.URL
	state    string
	authURL  string
	cleanups []func() // run when the login ends (the browser's launch page)
}

// Run performs the login described in the package comment and returns the
// result once the token file is written. ctx cancels the wait (and an
// exchange in progress); once Schwab has issued tokens they are written
// even if ctx is cancelled, since the login has already replaced the old
// refresh token.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.App == nil || opts.Client == nil || opts.TokenFile == "" {
		return nil, errors.New("login: Options.App, Options.Client and Options.TokenFile are required")
	}
	f := &flow{opts: opts, log: opts.Logger, now: opts.Now}
	defer func() {
		for _, c := range f.cleanups {
			c()
		}
	}()
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.now == nil {
		f.now = time.Now
	}
	if f.opts.Out == nil {
		f.opts.Out = os.Stdout
	}
	if f.opts.In == nil {
		f.opts.In = os.Stdin
	}
	if f.opts.Timeout <= 0 {
		f.opts.Timeout = DefaultTimeout
	}
	if f.opts.RefreshTokenLifetime <= 0 {
		f.opts.RefreshTokenLifetime = DefaultRefreshTokenLifetime
	}

	cb, err := opts.App.Callback()
	if err != nil {
		return nil, err
	}
	f.callback = cb
	f.state = newState()
	if f.authURL, err = AuthorizeURL(opts.App, f.state); err != nil {
		return nil, err
	}
	if err := checkWritable(opts.TokenFile); err != nil {
		return nil, err
	}
	if opts.Manual {
		return f.runManual(ctx)
	}
	return f.runServer(ctx)
}

// announce prints the authorize URL and opens the browser if wanted.
func (f *flow) announce() {
	f.log.Info("Open this URL in your browser to log in to Schwab:")
	fmt.Fprintln(f.opts.Out, f.authURL)
	if !f.shouldOpen() {
		return
	}
	open := f.opts.OpenURL
	if open == nil {
		open = func(url string) error {
			remove, err := openBrowser(url)
			if err == nil {
				f.cleanups = append(f.cleanups, remove)
			}
			return err
		}
	}
	if err := open(f.authURL); err != nil {
		f.log.Warn(fmt.Sprintf("Could not open a browser (%v); open the URL above yourself", err))
		return
	}
	f.log.Info("Opened the login page in your browser")
}

func (f *flow) shouldOpen() bool {
	switch f.opts.Browser {
	case BrowserOpen:
		return true
	case BrowserNever:
		return false
	}
	getenv := f.opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	return hasDisplay(getenv, runtime.GOOS)
}

// complete exchanges code for tokens and writes the token file.
func (f *flow) complete(ctx context.Context, code string) (*Result, error) {
	f.log.Info("Received authorization code, exchanging it for tokens...")
	tok, err := f.opts.Client.Exchange(ctx, code, f.opts.App.CallbackURL)
	if err != nil {
		return nil, exchangeError(err, f.opts.App.Path, f.opts.TokenFile)
	}
	// Schwab has issued tokens and superseded the old refresh token: write
	// them even if ctx is cancelled now.
	lockCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lockWait)
	defer cancel()
	notSaved := func(err error) error {
		return newError(ErrNotSaved, err,
			"Schwab issued new tokens but they could not be saved: %v; the previous refresh token no longer works, so fix this and run login again", err)
	}
	now := f.now()
	tok.RefreshTokenIssuedAt = now.Truncate(time.Second) // this login
	if err := f.save(lockCtx, tok, now); err != nil {
		return nil, notSaved(err)
	}
	f.log.Info("Token file written: " + f.opts.TokenFile)
	return &Result{
		Token:                 tok,
		TokenFile:             f.opts.TokenFile,
		LoggedInAt:            now,
		RefreshTokenExpiresAt: now.Add(f.opts.RefreshTokenLifetime),
	}, nil
}

// save writes tok to the token file under its lock. An existing, readable
// token document is updated in place (Document.Apply), so keys that other
// tools keep there survive; a missing or unusable file is replaced by a new
// document. Either way creation_timestamp and refresh_token_issued_at are
// the login time, now.
func (f *flow) save(ctx context.Context, tok tokensender.Token, now time.Time) error {
	// A login always brings a new refresh token: its issue time is now.
	tok.RefreshTokenIssuedAt = now
	store := &tokenfile.Store{
		Path:   f.opts.TokenFile,
		Mode:   f.opts.TokenFileMode,
		Now:    func() time.Time { return now },
		Logger: f.log,
	}
	return store.SaveLogin(ctx, tok)
}

// checkWritable fails early, before the login uses up anything, when the
// token file cannot be written: its directory is missing or read-only, or
// the path is a directory.
func checkWritable(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("token file %s is a directory; pass the path of a file", path)
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("token file %s: directory %s does not exist; create it or choose another token file", path, dir)
	case err != nil:
		return fmt.Errorf("token file %s: cannot use directory %s: %w", path, dir, err)
	case !fi.IsDir():
		return fmt.Errorf("token file %s: %s is not a directory; choose another token file", path, dir)
	}
	probe, err := os.CreateTemp(dir, ".login-check-*")
	if err != nil {
		return fmt.Errorf("token file %s: cannot write in directory %s (%s); fix its permissions or choose another token file", path, dir, reason(err))
	}
	name := probe.Name()
	probe.Close()
	os.Remove(name)
	return nil
}

// reason is an OS error's cause without the operation and path.
func reason(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
