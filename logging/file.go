package logging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"gopkg.in/natefinch/lumberjack.v2"
)

// Log formats for --log-format.
const (
	FormatText = "text" // the seed's "[time] LEVEL: message" lines
	FormatJSON = "json" // one slog JSON object per line, for log shippers
)

// Defaults for --log-max-size and --log-max-backups.
const (
	DefaultMaxSizeMB  = 10
	DefaultMaxBackups = 5
)

// logFileMode is the mode of a log file this package creates. The log
// holds no secrets, but it is nobody else's business either.
const logFileMode = 0o640

// ParseFormat checks a --log-format value: text (the default, also for "")
// or json.
func ParseFormat(s string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case FormatText, "":
		return FormatText, nil
	case FormatJSON:
		return FormatJSON, nil
	}
	return "", fmt.Errorf("unknown log format %q: use text or json", s)
}

// FileOptions say where the log file goes and how it rotates.
type FileOptions struct {
	// Path of the log file; empty logs to stdout only (for journald).
	Path string
	// MaxSizeMB is the size in megabytes at which the file is rotated;
	// 0 or less means DefaultMaxSizeMB.
	MaxSizeMB int
	// MaxBackups is how many rotated files to keep; 0 keeps them all.
	MaxBackups int
	// MaxAgeDays removes rotated files older than this; 0 keeps them
	// regardless of age.
	MaxAgeDays int
}

// Open builds the daemon's logger: every line goes to stdout and, unless
// file.Path is empty, to the log file, in format (FormatText or
// FormatJSON). The log file's directory is created; a new file gets mode
// 0640. The file is rotated when it reaches file.MaxSizeMB, the old one
// kept as NAME-<local time>.EXT.
//
// reopen closes the log file so that the next line opens Path afresh: call
// it on SIGHUP after an external logrotate moved the file away. closeFn
// closes the file for good; lines logged after it go to stdout only. Both
// are no-ops without a file. A logger is returned only without error.
func Open(stdout io.Writer, level slog.Level, format string, file FileOptions) (logger *slog.Logger, reopen func() error, closeFn func() error, err error) {
	format, err = ParseFormat(format)
	if err != nil {
		return nil, nil, nil, err
	}
	noop := func() error { return nil }
	w, reopen, closeFn := stdout, noop, noop
	if file.Path != "" {
		f, err := openFile(file)
		if err != nil {
			return nil, nil, nil, err
		}
		w, reopen, closeFn = &tee{stdout: stdout, file: f}, f.reopen, f.close
	}
	var h slog.Handler
	if format == FormatJSON {
		h = jsonHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: jsonLevelName})}
	} else {
		h = NewTextHandler(w, level)
	}
	return slog.New(h), reopen, closeFn, nil
}

// rotatingFile is the log file: lumberjack for size-based rotation, plus
// reopen-after-logrotate and a mode of 0640 on every file it creates.
type rotatingFile struct {
	mu     sync.Mutex
	lj     *lumberjack.Logger
	closed bool
}

func openFile(o FileOptions) (*rotatingFile, error) {
	size := o.MaxSizeMB
	if size <= 0 {
		size = DefaultMaxSizeMB
	}
	f := &rotatingFile{lj: &lumberjack.Logger{
		Filename:   o.Path,
		MaxSize:    size,
		MaxBackups: max(o.MaxBackups, 0),
		MaxAge:     max(o.MaxAgeDays, 0),
		LocalTime:  true,
	}}
	if err := os.MkdirAll(filepath.Dir(o.Path), 0o755); err != nil {
		return nil, fmt.Errorf("log file %s: cannot create its directory: %w", o.Path, err)
	}
	if err := f.create(); err != nil {
		return nil, err
	}
	// Open it now, so a file that cannot be written fails here and not
	// silently on the first line.
	if _, err := f.lj.Write(nil); err != nil {
		return nil, fmt.Errorf("log file %s: cannot open: %w", o.Path, err)
	}
	return f, nil
}

// create makes an empty log file with logFileMode unless one exists:
// lumberjack would create it 0600.
func (f *rotatingFile) create() error {
	fh, err := os.OpenFile(f.lj.Filename, os.O_WRONLY|os.O_CREATE|os.O_APPEND, logFileMode)
	if err != nil {
		return fmt.Errorf("log file %s: cannot open: %w", f.lj.Filename, err)
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("log file %s: %w", f.lj.Filename, err)
	}
	return nil
}

func (f *rotatingFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return len(p), nil
	}
	return f.lj.Write(p)
}

// reopen closes the file and creates Path again if it was moved away; the
// next line is appended to whatever file is at Path.
func (f *rotatingFile) reopen() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	if err := f.lj.Close(); err != nil {
		return fmt.Errorf("log file %s: close for reopening: %w", f.lj.Filename, err)
	}
	if err := os.MkdirAll(filepath.Dir(f.lj.Filename), 0o755); err != nil {
		return fmt.Errorf("log file %s: cannot create its directory: %w", f.lj.Filename, err)
	}
	return f.create()
}

func (f *rotatingFile) close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	if err := f.lj.Close(); err != nil {
		return fmt.Errorf("log file %s: close: %w", f.lj.Filename, err)
	}
	return nil
}

// tee writes each line to stdout, then to the file. A failing file does
// not keep the line from stdout.
type tee struct {
	stdout io.Writer
	file   io.Writer
}

func (t *tee) Write(p []byte) (int, error) {
	_, errOut := t.stdout.Write(p)
	_, errFile := t.file.Write(p)
	return len(p), errors.Join(errOut, errFile)
}

// jsonLevelName writes levels as the text format does: DEBUG, INFO,
// WARNING, ERROR.
func jsonLevelName(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.LevelKey {
		if l, ok := a.Value.Any().(slog.Level); ok {
			a.Value = slog.StringValue(LevelName(l))
		}
	}
	return a
}

// jsonHandler leaves out the lines that only decorate the text format:
// blank lines and the ==== banner rules.
type jsonHandler struct{ slog.Handler }

func (h jsonHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.NumAttrs() == 0 && (r.Message == "" || r.Message == Banner) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h jsonHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return jsonHandler{h.Handler.WithAttrs(attrs)}
}

func (h jsonHandler) WithGroup(name string) slog.Handler {
	return jsonHandler{h.Handler.WithGroup(name)}
}
