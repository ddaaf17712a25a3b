package logging_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/schwabtools/token-refresh-sender/logging"
)

// mustOpen opens a logger and closes its file when the test ends.
func mustOpen(tb testing.TB, stdout io.Writer, format string, file logging.FileOptions) (*slog.Logger, func() error, func() error) {
	tb.Helper()
	log, reopen, closeFn, err := logging.Open(stdout, slog.LevelDebug, format, file)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { closeFn() })
	return log, reopen, closeFn
}

func readFile(tb testing.TB, path string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// wantMode is 0640 as the process umask lets it be.
func wantMode(tb testing.TB) fs.FileMode {
	tb.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Skip("no /proc/self/status to read the umask from")
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			umask, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				tb.Fatal(err)
			}
			return 0o640 &^ fs.FileMode(umask)
		}
	}
	tb.Skip("no Umask line in /proc/self/status")
	return 0
}

func assertMode(tb testing.TB, path string) {
	tb.Helper()
	want := wantMode(tb)
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		tb.Errorf("%s has mode %o, want %o", path, got, want)
	}
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in, want, wantErr string
	}{
		{"text", "text", ""},
		{"", "text", ""},
		{"JSON", "json", ""},
		{" json ", "json", ""},
		{"xml", "", `unknown log format "xml": use text or json`},
		{"logfmt", "", `unknown log format "logfmt": use text or json`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := logging.ParseFormat(tt.in)
			if got != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && err.Error() != tt.wantErr) {
				t.Errorf("ParseFormat(%q) = %q, %v; want %q, %q", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestOpen_text(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs", "sub", "token_refresh_sender.log")
	var stdout bytes.Buffer
	log, _, closeFn := mustOpen(t, &stdout, "text", logging.FileOptions{Path: path})
	assertMode(t, path)
	log.Info(logging.Banner)
	log.Info("Token Refresh Sender Started")
	log.Info("")
	log.Warn("Bot socket not found - trading bot may not be running")
	log.Debug("debug shown at debug level")
	if err := closeFn(); err != nil {
		t.Fatal(err)
	}
	file := readFile(t, path)
	if file != stdout.String() {
		t.Errorf("log file differs from stdout:\nfile:   %q\nstdout: %q", file, stdout.String())
	}
	lines := strings.Split(strings.TrimSuffix(file, "\n"), "\n")
	wantEnds := []string{"] INFO: " + logging.Banner, "] INFO: Token Refresh Sender Started", "] INFO:",
		"] WARNING: Bot socket not found - trading bot may not be running", "] DEBUG: debug shown at debug level"}
	if len(lines) != len(wantEnds) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(wantEnds), file)
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, "[") || !strings.HasSuffix(l, wantEnds[i]) {
			t.Errorf("line %d = %q, want it to end in %q", i, l, wantEnds[i])
		}
	}
}

func TestOpen_json(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	var stdout bytes.Buffer
	log, _, closeFn := mustOpen(t, &stdout, "json", logging.FileOptions{Path: path})
	log.Info(logging.Banner)
	log.Info("Token Refresh Sender Started")
	log.Info("")
	log.Warn("Bot socket not found - trading bot may not be running")
	log.Error("Token refresh failed: HTTP 401", "attempt", 2)
	log.Debug("dial")
	log.Info("", "kept", "has attrs")
	if err := closeFn(); err != nil {
		t.Fatal(err)
	}
	if file := readFile(t, path); file != stdout.String() {
		t.Errorf("log file differs from stdout:\nfile:   %q\nstdout: %q", file, stdout.String())
	}
	type line struct {
		Level, Msg string
		Attempt    int
		Kept       string
		Time       string
	}
	want := []line{
		{Level: "INFO", Msg: "Token Refresh Sender Started"},
		{Level: "WARNING", Msg: "Bot socket not found - trading bot may not be running"},
		{Level: "ERROR", Msg: "Token refresh failed: HTTP 401", Attempt: 2},
		{Level: "DEBUG", Msg: "dial"},
		{Level: "INFO", Kept: "has attrs"},
	}
	sc := bufio.NewScanner(&stdout)
	var got []line
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("not a JSON line: %q: %v", sc.Text(), err)
		}
		if l.Time == "" {
			t.Errorf("no time in %q", sc.Text())
		}
		l.Time = ""
		got = append(got, l)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d lines %+v, want %d %+v (banners and blank lines left out)", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestOpen_stdoutOnly(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	var stdout bytes.Buffer
	log, reopen, closeFn := mustOpen(t, &stdout, "text", logging.FileOptions{})
	log.Info("hello")
	if err := reopen(); err != nil {
		t.Errorf("reopen without a file = %v", err)
	}
	if err := closeFn(); err != nil {
		t.Errorf("close without a file = %v", err)
	}
	if !strings.HasSuffix(stdout.String(), "] INFO: hello\n") {
		t.Errorf("stdout = %q", stdout.String())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files created without --log-file: %v", entries)
	}
}

func TestOpen_reopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token_refresh_sender.log")
	log, reopen, _ := mustOpen(t, io.Discard, "text", logging.FileOptions{Path: path})
	log.Info("before logrotate")

	// What logrotate does without copytruncate: move the file away, then
	// signal the daemon (SIGHUP), which calls reopen.
	moved := path + ".1"
	if err := os.Rename(path, moved); err != nil {
		t.Fatal(err)
	}
	log.Info("still into the moved file")
	if err := reopen(); err != nil {
		t.Fatalf("reopen: %v", err)
	}
	assertMode(t, path)
	log.Info("after logrotate")

	old, cur := readFile(t, moved), readFile(t, path)
	if !strings.Contains(old, "before logrotate") || !strings.Contains(old, "still into the moved file") || strings.Contains(old, "after logrotate") {
		t.Errorf("moved file = %q", old)
	}
	if !strings.HasSuffix(cur, "] INFO: after logrotate\n") || strings.Count(cur, "\n") != 1 {
		t.Errorf("new file at %s = %q, want only the line logged after reopen", path, cur)
	}

	// Reopen with the file still in place appends to it.
	if err := reopen(); err != nil {
		t.Fatalf("second reopen: %v", err)
	}
	log.Info("appended")
	if cur := readFile(t, path); strings.Count(cur, "\n") != 2 {
		t.Errorf("after a reopen in place the file = %q, want 2 lines", cur)
	}
}

func TestOpen_rotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token_refresh_sender.log")
	log, _, closeFn := mustOpen(t, io.Discard, "text", logging.FileOptions{Path: path, MaxSizeMB: 1, MaxBackups: 5})
	msg := strings.Repeat("x", 1000)
	const n = 1200 // about 1.2 MB
	for i := range n {
		log.Info(strconv.Itoa(i) + " " + msg)
	}
	if err := closeFn(); err != nil {
		t.Fatal(err)
	}
	backups, err := filepath.Glob(filepath.Join(dir, "token_refresh_sender-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	if len(backups) != 1 {
		t.Fatalf("backups after writing 1.2 MB with a 1 MB limit: %v, want exactly one", backups)
	}
	assertMode(t, backups[0])
	assertMode(t, path)
	lines := 0
	for _, f := range append(backups, path) {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 1<<20 {
			t.Errorf("%s is %d bytes, over the 1 MB limit", f, fi.Size())
		}
		lines += strings.Count(readFile(t, f), "\n")
	}
	if lines != n {
		t.Errorf("%d lines across the files, want %d (none lost in rotation)", lines, n)
	}
}

func TestOpen_close(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	var stdout bytes.Buffer
	log, reopen, closeFn := mustOpen(t, &stdout, "text", logging.FileOptions{Path: path})
	log.Info("one")
	if err := closeFn(); err != nil {
		t.Fatal(err)
	}
	log.Info("two")
	if err := reopen(); err != nil {
		t.Errorf("reopen after close = %v", err)
	}
	log.Info("three")
	if err := closeFn(); err != nil {
		t.Errorf("second close = %v", err)
	}
	if got := readFile(t, path); strings.Count(got, "\n") != 1 || !strings.Contains(got, "one") {
		t.Errorf("file after close = %q, want only the line before close", got)
	}
	if got := stdout.String(); strings.Count(got, "\n") != 3 {
		t.Errorf("stdout = %q, want all 3 lines", got)
	}
}

type brokenWriter struct{}

func (brokenWriter) Write([]byte) (int, error) { return 0, errors.New("stdout closed") }

func TestOpen_brokenStdout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	log, _, _ := mustOpen(t, brokenWriter{}, "text", logging.FileOptions{Path: path})
	log.Info("kept in the file")
	if got := readFile(t, path); !strings.Contains(got, "kept in the file") {
		t.Errorf("file = %q: a broken stdout kept the line from the file", got)
	}
}

func TestOpen_errors(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "plain")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		format  string
		path    string
		wantErr string
	}{
		{"bad format", "xml", filepath.Join(dir, "a.log"), `unknown log format "xml"`},
		{"directory blocked by a file", "text", filepath.Join(notDir, "logs", "a.log"), "log file " + filepath.Join(notDir, "logs", "a.log") + ": cannot create its directory: "},
		{"path is a directory", "text", dir, "log file " + dir + ": cannot open: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, reopen, closeFn, err := logging.Open(io.Discard, slog.LevelInfo, tt.format, logging.FileOptions{Path: tt.path})
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("Open = %v, want an error starting %q", err, tt.wantErr)
			}
			if log != nil || reopen != nil || closeFn != nil {
				t.Error("Open returned a logger along with an error")
			}
		})
	}
}
