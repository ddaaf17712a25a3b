package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/schwabtools/token-refresh-sender/internal/testkit"
	"github.com/schwabtools/token-refresh-sender/internal/testproc"
	"github.com/schwabtools/token-refresh-sender/logging"
	"github.com/schwabtools/token-refresh-sender/receiver"
)

// listen reports the sender's mistakes (rejected messages) apart from its
// own trouble (accept and read errors).
func TestNewListener_rejectionsApartFromErrors(t *testing.T) {
	var out testkit.Buffer
	r := newListener(filepath.Join(testproc.ShortDir(t), "bot.sock"), slog.New(logging.NewTextHandler(&out, nil)), "[bot] ")
	if err := r.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- r.Serve(ctx) }()
	defer func() {
		cancel()
		<-served
	}()

	// A real rejection, end to end: the sender gets "ERROR: ..." (the
	// receiver reports it before it answers).
	c, err := net.DialTimeout("unix", r.BoundAddr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testproc.WaitLimit))
	if _, err := c.Write([]byte("not json")); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.UnixConn).CloseWrite()
	answer, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(answer), "ERROR") {
		t.Fatalf("answer %q, want ERROR...", answer)
	}
	// This side's trouble, as Serve reports it.
	r.OnError(fmt.Errorf("%w on %s: too many open files; retrying in 5ms", receiver.ErrAccept, r.BoundAddr()))

	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if _, msg, ok := strings.Cut(l, "] "); ok {
			lines = append(lines, msg)
		}
	}
	if len(lines) != 2 ||
		!strings.HasPrefix(lines[0], "WARNING: [bot] Rejected a message: ") ||
		!strings.Contains(lines[0], receiver.ErrInvalidMessage.Error()) ||
		!strings.HasPrefix(lines[1], "ERROR: [bot] Could not receive: accept on ") {
		t.Errorf("log lines:\n%s\nwant a WARNING rejection, then an ERROR for the accept error", strings.Join(lines, "\n"))
	}
}
