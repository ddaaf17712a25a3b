// Package systemd tells systemd how the daemon is doing through sd_notify
// (github.com/coreos/go-systemd/v22/daemon): READY=1 once the loop has
// started, STATUS= with the last refresh result and the next refresh time,
// WATCHDOG=1 from the refresh loop itself, STOPPING=1 on shutdown.
//
// Outside systemd (no NOTIFY_SOCKET) every method is a silent no-op.
package systemd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/internal/logtext"
)

// maxStatus bounds the STATUS= text (systemctl status shows one line).
const maxStatus = 200

// Notifier sends sd_notify messages. Its methods are safe for concurrent
// use.
type Notifier struct {
	logger   *slog.Logger
	socket   string        // NOTIFY_SOCKET at New; "" outside systemd
	watchdog time.Duration // WATCHDOG_USEC; 0 when the watchdog is off

	mu     sync.Mutex
	warned bool // a failed send was already logged as a warning
}

// New reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID. A nil logger
// discards. The environment is left as it is.
func New(logger *slog.Logger) *Notifier {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n := &Notifier{logger: logger, socket: os.Getenv("NOTIFY_SOCKET")}
	if n.socket == "" {
		return n
	}
	wd, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		logger.Warn(fmt.Sprintf("systemd watchdog disabled: %v (check WatchdogSec= in the unit)", err))
		wd = 0
	}
	n.watchdog = wd
	return n
}

// Enabled reports whether the process runs under systemd with
// Type=notify (NOTIFY_SOCKET is set).
func (n *Notifier) Enabled() bool { return n.socket != "" }

// Ready sends READY=1: the configuration is loaded and the loop started.
func (n *Notifier) Ready() { n.send(sd.SdNotifyReady) }

// Status sends STATUS=s, flattened to one line.
func (n *Notifier) Status(s string) { n.send("STATUS=" + oneLine(s)) }

// Stopping sends STOPPING=1.
func (n *Notifier) Stopping() { n.send(sd.SdNotifyStopping) }

// WatchdogInterval is how often Ping must be called: half of WATCHDOG_USEC.
// ok is false when the watchdog is off (or WATCHDOG_PID names another
// process).
func (n *Notifier) WatchdogInterval() (time.Duration, bool) {
	if n.socket == "" || n.watchdog <= 0 {
		return 0, false
	}
	return n.watchdog / 2, true
}

// Ping sends WATCHDOG=1 when the watchdog is on.
func (n *Notifier) Ping() {
	if _, ok := n.WatchdogInterval(); ok {
		n.send(sd.SdNotifyWatchdog)
	}
}

// Watchdog is for the refresh loop: while it is alive, it must call ping
// at least once per interval, from the loop's own goroutine, so that a
// wedged loop stops pinging and systemd restarts the service. With the
// watchdog off, interval is 0 and ping does nothing.
func (n *Notifier) Watchdog() (interval time.Duration, ping func()) {
	interval, ok := n.WatchdogInterval()
	if !ok {
		return 0, func() {}
	}
	return interval, n.Ping
}

// Observe maps the loop's events to notifications:
//
//	Started          READY=1 and STATUS=Started; first refresh now
//	Refreshed        STATUS=Last refresh OK at 09:14:24; next at 09:39:24
//	RefreshFailed    STATUS=Last refresh failed at 09:14:24 (1 in a row): <error>; next attempt at 09:14:26
//	ReloginRequired  STATUS=Login required: <error> (at 09:14:24); run `token-refresh-sender login`; next attempt at 09:16:24
//	Stopping         STOPPING=1 and STATUS=Stopping
//
// Recovered adds nothing: a Refreshed event follows it.
func (n *Notifier) Observe(ev tokensender.Event) {
	if n.socket == "" {
		return
	}
	switch ev.Kind {
	case tokensender.EventStarted:
		n.send(sd.SdNotifyReady + "\nSTATUS=" + oneLine("Started; first refresh now"))
	case tokensender.EventRefreshed:
		n.Status(fmt.Sprintf("Last refresh OK at %s; next at %s", clock(ev.At, ev.At), clock(ev.Next, ev.At)))
	case tokensender.EventRefreshFailed:
		n.Status(fmt.Sprintf("Last refresh failed at %s (%d in a row): %s; next attempt at %s",
			clock(ev.At, ev.At), ev.Failures, errText(ev), clock(ev.Next, ev.At)))
	case tokensender.EventReloginRequired:
		n.Status(fmt.Sprintf("Login required: %s (at %s); run `token-refresh-sender login`; next attempt at %s",
			errText(ev), clock(ev.At, ev.At), clock(ev.Next, ev.At)))
	case tokensender.EventStopping:
		n.send(sd.SdNotifyStopping + "\nSTATUS=Stopping")
	}
}

// send writes one datagram. The first failure is a warning; later ones
// are debug lines, so a broken socket does not flood the log.
func (n *Notifier) send(state string) {
	if n.socket == "" {
		return
	}
	if _, err := sd.SdNotify(false, state); err != nil {
		n.mu.Lock()
		first := !n.warned
		n.warned = true
		n.mu.Unlock()
		level := slog.LevelDebug
		if first {
			level = slog.LevelWarn
		}
		kind, _, _ := strings.Cut(state, "=")
		n.logger.Log(context.Background(), level, fmt.Sprintf("Could not notify systemd (%s) through NOTIFY_SOCKET %s: %v", kind, n.socket, err))
	}
}

// clock formats t as 15:04:05, with the date when it is not ref's day.
func clock(t, ref time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	y, m, d := t.Date()
	if ry, rm, rd := ref.Date(); y != ry || m != rm || d != rd {
		return t.Format("2006-01-02 15:04:05")
	}
	return t.Format("15:04:05")
}

// errText is the event's error for STATUS=, with any token the loop holds
// cut down to its redacted prefix.
func errText(ev tokensender.Event) string {
	if ev.Err == nil {
		return "unknown error"
	}
	s := ev.Err.Error()
	for _, secret := range []string{ev.Token.AccessToken, ev.Token.RefreshToken, ev.Token.IDToken} {
		if len(secret) >= 8 {
			s = strings.ReplaceAll(s, secret, tokensender.Redact(secret))
		}
	}
	return s
}

// oneLine makes s one line (a newline would start another sd_notify
// assignment) of at most maxStatus characters.
func oneLine(s string) string { return logtext.Line(s, maxStatus) }
