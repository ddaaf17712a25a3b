package tokenfile_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

func TestClaimDaemon(t *testing.T) {
	path := filepath.Join(t.TempDir(), "schwab_tokens.json")
	release, err := tokenfile.ClaimDaemon(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tokenfile.ClaimDaemon(path)
	if !errors.Is(err, tokenfile.ErrAlreadyRunning) {
		t.Fatalf("second claim = %v, want ErrAlreadyRunning", err)
	}
	want := fmt.Sprintf("another token-refresh-sender is already running for %s (pid %d); stop it first, or give this one another --token-file", path, os.Getpid())
	if err.Error() != want {
		t.Errorf("second claim says %q, want %q", err, want)
	}
	// The data lock is independent: refresh and login still work beside a daemon.
	unlock, err := tokenfile.Lock(t.Context(), path)
	if err != nil {
		t.Fatalf("Lock beside a daemon: %v", err)
	}
	unlock()
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".pid"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left after release: %v", err)
	}
	again, err := tokenfile.ClaimDaemon(path)
	if err != nil {
		t.Fatalf("claim after release: %v", err)
	}
	if b, _ := os.ReadFile(path + ".pid"); string(b) != fmt.Sprintln(os.Getpid()) {
		t.Errorf("pid file holds %q", b)
	}
	again()
}

func TestWatch_reportsReplacement(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "schwab_tokens.json")
	if err := os.WriteFile(path, []byte(validForWatch), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	changes, err := tokenfile.Watch(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A replacement by rename, as a login or schwab-py does it, is reported.
	doc, err := tokenfile.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := tokenfile.Write(path, doc); err != nil {
		t.Fatal(err)
	}
	mustReport(t, changes)
	cancel()
	for range changes { // closed when ctx is done
	}
}

// mustReport fails the test when no report arrives; the 10 s are a safety
// net against a hang (the timing itself is pinned on a fake clock in
// TestCoalesce).
func mustReport(tb testing.TB, changes <-chan struct{}) {
	tb.Helper()
	select {
	case <-changes:
	case <-time.After(10 * time.Second):
		tb.Fatal("the change was not reported")
	}
}

func TestInstance_OpenClose(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "schwab_tokens.json")
	if err := os.WriteFile(path, []byte(validForWatch), 0o600); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, ".schwab_tokens.json123456")
	if err := os.WriteFile(stale, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	store := &tokenfile.Store{Path: path, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	inst := &tokenfile.Instance{Store: store}
	if err := inst.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary file left: %v", err)
	}
	if !strings.Contains(logs.String(), "level=INFO msg=\"Removed a temporary file left by an interrupted write: "+stale+"\"") {
		t.Errorf("removal not logged:\n%s", logs.String())
	}
	if b, _ := os.ReadFile(path + ".pid"); string(b) != fmt.Sprintln(os.Getpid()) {
		t.Errorf("pid file holds %q", b)
	}
	second := &tokenfile.Instance{Store: &tokenfile.Store{Path: path}}
	if err := second.Open(t.Context()); !errors.Is(err, tokenfile.ErrAlreadyRunning) {
		t.Errorf("second Open = %v, want ErrAlreadyRunning", err)
	}
	if err := second.Close(); err != nil {
		t.Errorf("Close of an instance that did not open: %v", err)
	}
	if err := tokenfile.Write(path, mustLoad(t, path)); err != nil {
		t.Fatal(err)
	}
	mustReport(t, inst.Changes())
	if err := inst.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-inst.Changes(); ok {
		t.Error("Changes still open after Close")
	}
	if _, err := os.Stat(path + ".pid"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left after Close: %v", err)
	}
}

// A planted lock file is fatal at start-up: no refresh could ever take
// that lock. The claim is let go (no pid file is left behind) and the
// temporary files are not touched without the lock.
func TestInstance_OpenRefusesAPlantedLockFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "schwab_tokens.json")
	if err := os.WriteFile(path, []byte(validForWatch), 0o600); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, ".schwab_tokens.json123456")
	if err := os.WriteFile(stale, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("elsewhere", path+".lock"); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	inst := &tokenfile.Instance{Store: &tokenfile.Store{Path: path, Logger: slog.New(slog.NewTextHandler(&logs, nil))}}
	err := inst.Open(t.Context())
	want := "token file " + path + ": refusing " + path + ".lock: it is a symbolic link"
	if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, tokenfile.ErrLock) {
		t.Fatalf("Open: %v, want an ErrLock starting %q", err, want)
	}
	if _, err := os.Stat(path + ".pid"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left after the refusal: %v", err)
	}
	if err := inst.Close(); err != nil {
		t.Errorf("Close after a failed Open: %v", err)
	}
	if _, err := os.Stat(stale); err != nil {
		t.Errorf("temporary file removed without the lock: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "elsewhere")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file was created at the link's target: %v", err)
	}
}

func mustLoad(tb testing.TB, path string) *tokenfile.Document {
	tb.Helper()
	d, err := tokenfile.Load(path)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

const validForWatch = `{"creation_timestamp": 1, "token": {"refresh_token": "r", "access_token": "a", "expires_at": 2}}`
