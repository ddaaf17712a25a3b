// Package alert runs the operator's alert hooks: a shell command
// (--notify-exec) and a webhook (--notify-webhook) told about the events a
// person must act on or should know about: refresh_failed, relogin_required,
// refresh_token_expiring and recovered.
//
// A [Notifier] runs hooks in the background with a timeout; a hook that
// fails or hangs is logged and never stops or slows the daemon. A [Policy]
// turns daemon events into notifications. No token is ever passed to a hook:
// a [Notification] has no field that could hold one, and the hook command
// gets an allow-listed environment (see [Notifier.Exec]), never the
// daemon's whole one. The webhook URL, a credential for Slack and Discord,
// is read from a file ([ReadWebhookFile]) or the environment rather than
// the command line, where every user could see it in ps.
package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
)

// Event names, as hooks see them in TOKEN_SENDER_EVENT and "event".
const (
	EventRefreshFailed        = "refresh_failed"
	EventReloginRequired      = "relogin_required"
	EventRefreshTokenExpiring = "refresh_token_expiring"
	EventRecovered            = "recovered"
)

// Environment variables the exec hook receives.
const (
	EnvEvent     = "TOKEN_SENDER_EVENT"
	EnvMessage   = "TOKEN_SENDER_MESSAGE"
	EnvExpiresAt = "TOKEN_SENDER_REFRESH_TOKEN_EXPIRES_AT"
)

// DefaultTimeout bounds one hook run when Notifier.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// DefaultMaxInFlight bounds the hooks running at once when
// Notifier.MaxInFlight is zero.
const DefaultMaxInFlight = 4

// outputLimit is how much of a failing command's output is logged.
const outputLimit = 200

// Notification is one event for the hooks. It carries no token.
type Notification struct {
	Event   string // one of the Event constants
	Message string // one line for a person
	// RefreshTokenExpiresAt is when the refresh token expires; the zero
	// time when unknown (hooks then get "" and null).
	RefreshTokenExpiresAt time.Time
}

// expiresAt is the refresh token's expiry as hooks see it: RFC 3339 in UTC,
// or "" when unknown.
func (n Notification) expiresAt() string {
	if n.RefreshTokenExpiresAt.IsZero() {
		return ""
	}
	return n.RefreshTokenExpiresAt.UTC().Format(time.RFC3339)
}

// Notifier runs the hooks. Set the fields, then call Notify from any
// goroutine, and Close on shutdown. The zero Notifier has no hooks and does
// nothing.
type Notifier struct {
	// Exec is run as `sh -c Exec` on each notification. Its environment
	// holds only PATH, HOME, USER, LOGNAME, LANG, LC_*, TZ and the names
	// in Env, taken from the daemon's environment when set there, plus
	// TOKEN_SENDER_EVENT, TOKEN_SENDER_MESSAGE and
	// TOKEN_SENDER_REFRESH_TOKEN_EXPIRES_AT. Empty: no command.
	Exec string
	// Env names further variables of the daemon's environment that the
	// Exec hook receives (--notify-env); Validate checks them.
	Env []string
	// Environ is the daemon's environment as NAME=value pairs; nil means
	// os.Environ.
	Environ func() []string
	// Webhook receives a JSON POST on each notification. Empty: none.
	Webhook string
	// Timeout bounds one hook run; zero means DefaultTimeout. A command
	// still running then is killed with its process group.
	Timeout time.Duration
	// MaxInFlight bounds the hooks running at once; zero means
	// DefaultMaxInFlight. Beyond it a notification is dropped and logged.
	MaxInFlight int
	// Logger receives one line per hook run; nil discards.
	Logger *slog.Logger
	// HTTPClient posts to Webhook; nil means a client of its own.
	HTTPClient *http.Client

	mu       sync.Mutex
	ctx      context.Context // cancelled when Close gives up waiting
	cancel   context.CancelFunc
	inflight int
	closed   bool
	wg       sync.WaitGroup
}

// Validate checks Webhook and Exec, for start-up: one line naming the flag,
// and never the webhook URL itself (Slack and Discord URLs are secrets).
func (n *Notifier) Validate() error {
	if n.Exec != "" && strings.TrimSpace(n.Exec) == "" {
		return errors.New("--notify-exec: the command is blank; give a shell command or leave the flag out")
	}
	for _, name := range n.Env {
		if err := checkEnvName(name); err != nil {
			return err
		}
	}
	if n.Webhook == "" {
		return nil
	}
	u, err := url.Parse(n.Webhook)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("--notify-webhook: not an http:// or https:// URL; give the full webhook URL, such as https://hooks.slack.com/services/T000/B000/XXXX")
	}
	return nil
}

// Enabled reports whether any hook is configured.
func (n *Notifier) Enabled() bool { return n.Exec != "" || n.Webhook != "" }

// Notify starts the configured hooks for ev in the background and returns
// at once. When MaxInFlight hooks are already running, or after Close, the
// hook is skipped with a warning.
func (n *Notifier) Notify(ev Notification) {
	if n.Exec != "" {
		n.start(ev, "exec", n.runExec)
	}
	if n.Webhook != "" {
		n.start(ev, "webhook "+webhookOrigin(n.Webhook), n.runWebhook)
	}
}

func (n *Notifier) start(ev Notification, hook string, run func(context.Context, Notification) error) {
	n.mu.Lock()
	if n.ctx == nil {
		n.ctx, n.cancel = context.WithCancel(context.Background())
	}
	limit := n.MaxInFlight
	if limit <= 0 {
		limit = DefaultMaxInFlight
	}
	switch {
	case n.closed:
		n.mu.Unlock()
		n.logger().Warn(fmt.Sprintf("Notification hook skipped (%s, %s): shutting down", hook, ev.Event))
		return
	case n.inflight >= limit:
		n.mu.Unlock()
		n.logger().Warn(fmt.Sprintf("Notification hook skipped (%s, %s): already running the maximum of %d hooks", hook, ev.Event, limit))
		return
	}
	n.inflight++
	base := n.ctx
	n.wg.Add(1)
	n.mu.Unlock()

	go func() {
		defer func() {
			n.mu.Lock()
			n.inflight--
			n.mu.Unlock()
			n.wg.Done()
		}()
		timeout := n.timeout()
		ctx, cancel := context.WithTimeout(base, timeout)
		defer cancel()
		err := run(ctx, ev)
		if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %s", tokensender.HumanDuration(timeout))
		} else if err != nil && base.Err() != nil {
			err = errors.New("cancelled at shutdown")
		}
		if err != nil {
			n.logger().Warn(fmt.Sprintf("Notification hook failed (%s, %s): %v", hook, ev.Event, err))
			return
		}
		n.logger().Info(fmt.Sprintf("Notification hook ran (%s, %s)", hook, ev.Event))
	}()
}

// Close stops accepting notifications and waits for the running hooks.
// When ctx ends first, the hooks are cancelled (commands killed) and Close
// returns ctx's error once they have stopped.
func (n *Notifier) Close(ctx context.Context) error {
	n.mu.Lock()
	n.closed = true
	cancel := n.cancel
	n.mu.Unlock()

	done := make(chan struct{})
	go func() {
		n.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		if cancel != nil {
			cancel()
		}
		<-done
		return fmt.Errorf("notification hooks: %w", ctx.Err())
	}
}

func (n *Notifier) timeout() time.Duration {
	if n.Timeout > 0 {
		return n.Timeout
	}
	return DefaultTimeout
}

func (n *Notifier) logger() *slog.Logger {
	if n.Logger != nil {
		return n.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// runExec runs `sh -c Exec` with the notification in its environment.
func (n *Notifier) runExec(ctx context.Context, ev Notification) error {
	cmd := exec.CommandContext(ctx, "sh", "-c", n.Exec)
	environ := n.Environ
	if environ == nil {
		environ = os.Environ
	}
	cmd.Env = hookEnv(environ(), n.Env, ev)
	out := &limitedBuffer{limit: outputLimit}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.Stdin = nil
	killGroup(cmd)
	// Output pipes held open by a backgrounded grandchild must not keep
	// the hook "running" past the kill.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("run sh -c: %w", err)
	}
	if o := out.String(); o != "" {
		return fmt.Errorf("%v: %s", ee, o)
	}
	return ee
}

// baseEnv are the variables every exec hook receives from the daemon's
// environment when they are set there (LC_* too, see allowed).
var baseEnv = []string{"PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ"}

// secretEnv are variables that hold a credential and are never passed on,
// not even when --notify-env names them.
var secretEnv = []string{"SCHWAB_APP_SECRET", "TOKEN_SENDER_NOTIFY_WEBHOOK"}

// allowed reports whether the hook may see the daemon's variable name.
// The event variables are never taken from the daemon: hookEnv sets them.
func allowed(name string, extra []string) bool {
	switch {
	case slices.Contains(secretEnv, name), strings.HasPrefix(name, "TOKEN_SENDER_"):
		return false
	case slices.Contains(baseEnv, name), strings.HasPrefix(name, "LC_"), slices.Contains(extra, name):
		return true
	}
	return false
}

// checkEnvName checks one --notify-env name: a plain variable name that
// is not one of the credentials the daemon holds.
func checkEnvName(name string) error {
	switch {
	case name == "" || strings.ContainsAny(name, "=\x00") || strings.TrimSpace(name) != name:
		return fmt.Errorf("--notify-env %q: not a variable name; give one NAME per flag, such as --notify-env SLACK_CHANNEL", name)
	case slices.Contains(secretEnv, name):
		return fmt.Errorf("--notify-env %s: this variable holds a credential and is never passed to hooks; leave it out", name)
	case strings.HasPrefix(name, "TOKEN_SENDER_"):
		return fmt.Errorf("--notify-env %s: TOKEN_SENDER_* variables are the daemon's settings and the event's; hooks get the event variables anyway, leave it out", name)
	}
	return nil
}

// hookEnv is the exec hook's environment: the allowed variables of env
// (the daemon's), then the notification's variables.
func hookEnv(env, extra []string, ev Notification) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if allowed(name, extra) {
			out = append(out, kv)
		}
	}
	return append(out,
		EnvEvent+"="+ev.Event,
		EnvMessage+"="+ev.Message,
		EnvExpiresAt+"="+ev.expiresAt(),
	)
}

// webhookBody is what the webhook receives. "text" is what Slack shows,
// "content" what Discord shows.
type webhookBody struct {
	Event     string  `json:"event"`
	Message   string  `json:"message"`
	Text      string  `json:"text"`
	Content   string  `json:"content"`
	ExpiresAt *string `json:"refresh_token_expires_at"`
}

func (n *Notifier) runWebhook(ctx context.Context, ev Notification) error {
	body := webhookBody{Event: ev.Event, Message: ev.Message, Text: ev.Message, Content: ev.Message}
	if s := ev.expiresAt(); s != "" {
		body.ExpiresAt = &s
	}
	data, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode: %w", err) // unreachable: only strings
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.Webhook, bytes.NewReader(data))
	if err != nil {
		return errors.New("invalid webhook URL") // Validate catches this first
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "token-refresh-sender")
	client := n.HTTPClient
	if client == nil {
		client = &http.Client{}
	}
	resp, err := client.Do(req)
	if err != nil {
		// *url.Error repeats the whole URL, which is a secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, outputLimit))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16)) // let the connection be reused
	if resp.StatusCode/100 == 2 {
		return nil
	}
	msg := fmt.Sprintf("HTTP %d", resp.StatusCode)
	if s := oneLine(snippet); s != "" {
		msg += ": " + s
	}
	return errors.New(msg)
}

// webhookOrigin is the part of a webhook URL that is safe to log: scheme
// and host. The path and query of Slack and Discord URLs are the secret.
func webhookOrigin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(invalid URL)"
	}
	return u.Scheme + "://" + u.Host
}

// limitedBuffer keeps the first limit bytes written and discards the rest,
// without ever failing a write (a failing write would stop the copy).
type limitedBuffer struct {
	mu    sync.Mutex
	limit int
	buf   []byte
	more  bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := b.limit - len(b.buf)
	if len(p) > room {
		b.more = true
		b.buf = append(b.buf, p[:max(room, 0)]...)
	} else {
		b.buf = append(b.buf, p...)
	}
	return len(p), nil
}

// String is the captured output on one line, "..." marking a cut.
func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := oneLine(b.buf)
	if b.more && s != "" {
		s += "..."
	}
	return s
}

// oneLine folds runs of white space (newlines included) into single spaces
// and replaces invalid UTF-8, so output fits in one log line.
func oneLine(b []byte) string {
	return strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "?")), " ")
}
