package tokenfile_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

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
	changes, err := tokenfile.Watch(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Another file in the directory is not a change.
	if err := os.WriteFile(filepath.Join(dir, "other.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A replacement by rename, as a login or schwab-py does it, is.
	doc, err := tokenfile.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := tokenfile.Write(path, doc); err != nil {
		t.Fatal(err)
	}
	<-changes // the test's deadline is the safety net
	select {
	case <-changes:
		t.Error("one replacement reported twice")
	default:
	}
}

const validForWatch = `{"creation_timestamp": 1, "token": {"refresh_token": "r", "access_token": "a", "expires_at": 2}}`
