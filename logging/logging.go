// Package logging writes the daemon's log lines in the format the user's
// documentation shows and monitoring scripts grep:
//
//	[2025-11-13 08:44:23] INFO: Token refreshed successfully (expires in 30 minutes)
//
// It is a log/slog handler, so every package logs through a plain
// *slog.Logger that main builds and passes in.
//
// # Structured fields
//
// A line may carry structured fields for log shippers, made with [Cycle],
// [NextRefresh], [Socket], [Result], [ErrorClass] (or [Field]):
//
//	log.Info("Token refreshed successfully (expires in 30 minutes)",
//		logging.Cycle(3), logging.Result("success"), logging.NextRefresh(next))
//
// The JSON format writes them as top-level keys ("cycle": 3, "result":
// "success", "next_refresh": "2025-11-13T09:09:23+01:00"); the text format
// leaves them out, because the message already says it in words, so text
// lines stay exactly as they were. Plain slog attributes still appear in
// both formats (as key=value in text).
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// TimeLayout is the timestamp layout inside the square brackets.
const TimeLayout = "2006-01-02 15:04:05"

// Banner is the 70-character rule printed around start and stop messages.
const Banner = "======================================================================"

// LevelName returns the level word used in log lines: DEBUG, INFO, WARNING
// or ERROR (Python's logging names, which the seed's format uses).
func LevelName(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARNING"
	case l >= slog.LevelInfo:
		return "INFO"
	default:
		return "DEBUG"
	}
}

// ParseLevel turns a --log-level value (debug, info, warning/warn, error)
// into a slog.Level.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warning", "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q: use debug, info, warning or error", s)
}

// TextHandler formats records as "[time] LEVEL: message". Attributes, if
// any, follow the message as key=value pairs; structured fields (Cycle,
// Result, ...) are left out. It is safe for concurrent
// use; each record is written with a single Write call.
type TextHandler struct {
	mu    *sync.Mutex
	w     io.Writer
	level slog.Leveler
	attrs string // preformatted " key=value" pairs from WithAttrs
	group string
}

// NewTextHandler returns a handler writing to w records at or above level.
func NewTextHandler(w io.Writer, level slog.Leveler) *TextHandler {
	if level == nil {
		level = slog.LevelInfo
	}
	return &TextHandler{mu: new(sync.Mutex), w: w, level: level}
}

// Enabled implements slog.Handler.
func (h *TextHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

// Handle implements slog.Handler.
func (h *TextHandler) Handle(_ context.Context, r slog.Record) error {
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	var b strings.Builder
	b.WriteByte('[')
	b.WriteString(t.Format(TimeLayout))
	b.WriteString("] ")
	b.WriteString(LevelName(r.Level))
	b.WriteByte(':')
	if r.Message != "" {
		b.WriteByte(' ')
		b.WriteString(r.Message)
	}
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, h.group, a)
		return true
	})
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

// WithAttrs implements slog.Handler.
func (h *TextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range attrs {
		appendAttr(&b, h.group, a)
	}
	h2 := *h
	h2.attrs = b.String()
	return &h2
}

// WithGroup implements slog.Handler.
func (h *TextHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.group = h.group + name + "."
	return &h2
}

func appendAttr(b *strings.Builder, group string, a slog.Attr) {
	if isField(a) {
		return
	}
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		for _, g := range a.Value.Group() {
			appendAttr(b, group+a.Key+".", g)
		}
		return
	}
	b.WriteByte(' ')
	b.WriteString(group)
	b.WriteString(a.Key)
	b.WriteByte('=')
	s := a.Value.String()
	if s == "" || strings.ContainsAny(s, " \t\"=") {
		s = fmt.Sprintf("%q", s)
	}
	b.WriteString(s)
}
