package logging_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/schwabtools/token-refresh-sender/logging"
)

func TestTextHandler_Handle(t *testing.T) {
	at := time.Date(2025, 11, 13, 8, 44, 23, 0, time.Local)
	tests := []struct {
		name  string
		level slog.Level
		msg   string
		attrs []slog.Attr
		want  string
	}{
		{"info", slog.LevelInfo, "Token Refresh Sender Started", nil, "[2025-11-13 08:44:23] INFO: Token Refresh Sender Started\n"},
		{"warning uses the Python word", slog.LevelWarn, "Bot socket not found - trading bot may not be running", nil,
			"[2025-11-13 08:44:23] WARNING: Bot socket not found - trading bot may not be running\n"},
		{"error", slog.LevelError, "Token refresh failed: HTTP 401", nil, "[2025-11-13 08:44:23] ERROR: Token refresh failed: HTTP 401\n"},
		{"empty message has no trailing space", slog.LevelInfo, "", nil, "[2025-11-13 08:44:23] INFO:\n"},
		{"attrs follow as key=value", slog.LevelDebug, "dial", []slog.Attr{slog.String("addr", "/tmp/x.sock"), slog.String("err", "no such file")},
			"[2025-11-13 08:44:23] DEBUG: dial addr=/tmp/x.sock err=\"no such file\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			h := logging.NewTextHandler(&buf, slog.LevelDebug)
			r := slog.NewRecord(at, tt.level, tt.msg, 0)
			r.AddAttrs(tt.attrs...)
			if err := h.Handle(t.Context(), r); err != nil {
				t.Fatal(err)
			}
			if got := buf.String(); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestTextHandler_Enabled(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(logging.NewTextHandler(&buf, slog.LevelInfo))
	log.Debug("hidden")
	log.Info("shown")
	if got := buf.String(); bytes.Contains(buf.Bytes(), []byte("hidden")) || !bytes.Contains(buf.Bytes(), []byte("INFO: shown")) {
		t.Errorf("level filtering wrong: %q", got)
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{"debug": slog.LevelDebug, "INFO": slog.LevelInfo, "warning": slog.LevelWarn, "warn": slog.LevelWarn, "error": slog.LevelError} {
		got, err := logging.ParseLevel(in)
		if err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := logging.ParseLevel("loud"); err == nil {
		t.Error("ParseLevel(loud) accepted")
	}
}

func TestBanner(t *testing.T) {
	if len(logging.Banner) != 70 || strings.Trim(logging.Banner, "=") != "" {
		t.Errorf("Banner = %q, want 70 '='", logging.Banner)
	}
}
