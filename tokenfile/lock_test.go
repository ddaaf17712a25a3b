package tokenfile

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
)

func mustLock(tb testing.TB, path string) func() error {
	tb.Helper()
	unlock, err := Lock(context.Background(), path)
	if err != nil {
		tb.Fatalf("Lock: %v", err)
	}
	return unlock
}

func TestLock_ExcludesSecondLocker(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	synctest.Test(t, func(t *testing.T) {
		unlock := mustLock(t, path)

		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := Lock(ctx, path)
		if err == nil {
			t.Fatal("second Lock succeeded while the first is held")
		}
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "gave up waiting for lock "+path+".lock") {
			t.Errorf("err = %v", err)
		}

		// A waiting locker gets the lock once the holder lets go.
		got := make(chan func() error)
		go func() {
			u, err := Lock(context.Background(), path)
			if err != nil {
				t.Error(err)
			}
			got <- u
		}()
		synctest.Wait()
		select {
		case <-got:
			t.Fatal("waiting Lock returned while the lock is held")
		default:
		}
		if err := unlock(); err != nil {
			t.Fatal(err)
		}
		if u := <-got; u != nil {
			if err := u(); err != nil {
				t.Error(err)
			}
		}
	})
	fi, err := os.Stat(path + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode = %04o, want 0600", fi.Mode().Perm())
	}
}

func TestLock_CancelledContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	holdLock(t, path)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Lock(ctx, path); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestLock_UnwritableLockDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing-dir", "tokens.json")
	_, err := Lock(context.Background(), path)
	want := "token file " + path + ": cannot open " + path + ".lock: no such file or directory; check that the token file's directory exists and is writable by this user"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}

// TestLockHelperProcess is not a test: TestLock_CrossProcess runs the test
// binary with TOKENFILE_LOCK_HELPER set to hold the lock in another process
// until its stdin closes.
func TestLockHelperProcess(t *testing.T) {
	path := os.Getenv("TOKENFILE_LOCK_HELPER")
	if path == "" {
		t.Skip("helper process only")
	}
	unlock, err := Lock(context.Background(), path)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := unlock(); err != nil {
		os.Exit(3)
	}
	os.Exit(0)
}

func TestLock_CrossProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	cmd.Env = append(os.Environ(), "TOKENFILE_LOCK_HELPER="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := Lock(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock while another process holds it: err = %v, want deadline exceeded", err)
	}

	stdin.Close() // helper unlocks and exits
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	unlock, err := Lock(ctx2, path)
	if err != nil {
		t.Fatalf("Lock after the other process exited: %v", err)
	}
	if err := unlock(); err != nil {
		t.Error(err)
	}
}

func TestUpdate(t *testing.T) {
	now := time.Unix(1762990000, 0)
	refreshed := tokensender.Token{AccessToken: "A-new", RefreshToken: "R-old", ExpiresIn: 1800, ExpiresAt: now.Add(30 * time.Minute)}
	errFn := errors.New("refresh failed")
	tests := []struct {
		name      string
		content   string // "" = no file
		fnErr     error
		wantErr   string
		wantCall  bool
		wantWrite bool
	}{
		{name: "writes what fn did", content: validDoc, wantCall: true, wantWrite: true},
		{name: "missing file: fn not called, nothing written", wantErr: "Token file not found: %s"},
		{name: "malformed file: fn not called, file untouched", content: "{\"token\": ",
			wantErr: "token file %s: malformed JSON at line 1, column 11: unexpected end of JSON input; fix it or run token-refresh-sender login"},
		{name: "fn error: returned as is, file untouched", content: validDoc, fnErr: errFn, wantErr: "refresh failed", wantCall: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "tokens.json")
			if tt.content != "" {
				mustWriteFile(t, path, tt.content, 0o600)
			}
			called := false
			err := Update(context.Background(), path, func(d *Document) error {
				called = true
				d.Apply(refreshed, now)
				return tt.fnErr
			})
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Update: %v", err)
			}
			if want := strings.Replace(tt.wantErr, "%s", path, 1); tt.wantErr != "" && (err == nil || err.Error() != want) {
				t.Fatalf("err = %v, want %q", err, want)
			}
			if tt.fnErr != nil && !errors.Is(err, tt.fnErr) {
				t.Errorf("fn's error not returned as is: %v", err)
			}
			if called != tt.wantCall {
				t.Errorf("fn called = %v, want %v", called, tt.wantCall)
			}
			got, readErr := os.ReadFile(path)
			switch {
			case tt.content == "":
				if !errors.Is(readErr, os.ErrNotExist) {
					t.Errorf("Update created the token file")
				}
			case tt.wantWrite:
				if d := mustParse(t, string(got)); d.Token().AccessToken != "A-new" {
					t.Errorf("file not updated:\n%s", got)
				}
			default:
				if string(got) != tt.content {
					t.Errorf("file changed:\n%s", got)
				}
			}
			// The lock is released whatever happened.
			mustLock(t, path)()
		})
	}
}

func TestUpdate_Serialises(t *testing.T) {
	// Concurrent read-modify-write cycles, each incrementing a counter kept
	// in an unknown key: without the lock some increments would be lost.
	path := filepath.Join(t.TempDir(), "tokens.json")
	mustWriteFile(t, path, `{"n": 0, "token": {"refresh_token": "R-old"}}`, 0o600)
	const workers = 6
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			err := Update(context.Background(), path, func(d *Document) error {
				raw, _ := d.top.get("n")
				var n int
				if err := json.Unmarshal(raw, &n); err != nil {
					return err
				}
				d.top.set("n", intJSON(int64(n+1)))
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	d, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := d.top.get("n"); string(raw) != fmt.Sprint(workers) {
		t.Errorf("n = %s, want %d", raw, workers)
	}
}
