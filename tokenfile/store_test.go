package tokenfile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/renameio/v2"
	tokensender "github.com/schwabtools/token-refresh-sender"
	"golang.org/x/sys/unix"
)

func TestStore_Update(t *testing.T) {
	now := time.Unix(1762990000, 0)
	issued := time.Unix(1762900000, 0)
	refreshed := tokensender.Token{AccessToken: "A-new", RefreshToken: "R-old", IDToken: "ID-old", TokenType: "Bearer", Scope: "api", ExpiresIn: 1800,
		ExpiresAt: now.Add(30 * time.Minute), RefreshTokenIssuedAt: issued}
	errFn := errors.New("refresh failed")
	errWrite := errors.New("disk on fire")
	tests := []struct {
		name      string
		content   string // "" = no file
		mode      os.FileMode
		fnErr     error
		failWrite bool
		wantTok   bool
		wantErr   error
		wantCall  bool
		wantWrite bool
		wantMode  os.FileMode
	}{
		{name: "writes fn's token at now", content: validDoc, wantTok: true, wantCall: true, wantWrite: true, wantMode: 0o600},
		{name: "Mode 0640", content: validDoc, mode: 0o640, wantTok: true, wantCall: true, wantWrite: true, wantMode: 0o640},
		{name: "missing file: fn not called", wantErr: ErrNotFound},
		{name: "fn error: zero token, error unchanged, file untouched", content: validDoc, fnErr: errFn, wantErr: errFn, wantCall: true},
		{name: "write fails: fn's token and the error", content: validDoc, failWrite: true, wantTok: true, wantErr: errWrite, wantCall: true},
		{name: "bad mode: fn's token, nothing written", content: validDoc, mode: 0o644, wantTok: true, wantCall: true, wantErr: errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokens.json")
			if tt.content != "" {
				mustWriteFile(t, path, tt.content, 0o644)
			}
			s := &Store{Path: path, Mode: tt.mode, Now: func() time.Time { return now }}
			if tt.failWrite {
				ops := defaultWriteOps()
				ops.write = func(*renameio.PendingFile, []byte) error { return errWrite }
				s.ops = &ops
			}
			var got tokensender.Token
			called := false
			tok, err := s.Update(context.Background(), func(cur tokensender.Token) (tokensender.Token, error) {
				called, got = true, cur
				// fn runs under the lock: nobody else can take it now.
				fd := mustOpenLock(t, path)
				if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
					t.Errorf("lock free while fn runs: %v", err)
				}
				unix.Close(fd)
				return refreshed, tt.fnErr
			})
			if called != tt.wantCall {
				t.Fatalf("fn called = %v, want %v", called, tt.wantCall)
			}
			if called && got.RefreshToken != "R-old" {
				t.Errorf("fn got %+v, want the file's token", got)
			}
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Update: %v", err)
			case tt.wantErr == errAny && err == nil, tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.fnErr != nil && err != tt.fnErr {
				t.Errorf("fn's error changed to %v", err)
			}
			if want := (tokensender.Token{}); tt.wantTok {
				if tok != refreshed {
					t.Errorf("token = %+v, want fn's", tok)
				}
			} else if tok != want {
				t.Errorf("token = %+v, want zero", tok)
			}
			data, _ := os.ReadFile(path)
			if !tt.wantWrite {
				if string(data) != tt.content {
					t.Errorf("file changed:\n%s", data)
				}
				return
			}
			d := mustParse(t, string(data))
			if diff := cmp.Diff(refreshed, d.Token()); diff != "" || !d.CreatedAt().Equal(now) {
				t.Errorf("file holds (-want +got):\n%s\ncreated %v", diff, d.CreatedAt())
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm() != tt.wantMode {
				t.Errorf("mode = %04o, want %04o", fi.Mode().Perm(), tt.wantMode)
			}
		})
	}
}

// errAny in a table means "some error".
var errAny = errors.New("any error")

func mustOpenLock(tb testing.TB, path string) int {
	tb.Helper()
	fd, err := unix.Open(path+".lock", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	return fd
}

func TestStore_Load(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	mustWriteFile(t, path, validDoc, 0o600)
	tok, err := (&Store{Path: path}).Load(context.Background())
	if err != nil || tok.RefreshToken != "R-old" {
		t.Fatalf("Load = %+v, %v", tok, err)
	}
	if _, err := (&Store{Path: path + ".none"}).Load(context.Background()); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing file: %v", err)
	}
}

// TestStore_Load_tornReads plays another program writing the file in place
// (schwab-py: truncate, then write) while it is read.
func TestStore_Load_tornReads(t *testing.T) {
	full := validDoc
	tests := []struct {
		name    string
		start   string
		during  []string // content written at each pause; "" keeps it
		wantErr string   // "" = loads
		wantIs  error
		justNow bool          // the file was modified just before the read (else an hour ago)
		slept   time.Duration // total pause (default 100ms)
	}{
		{name: "empty, then written", start: "", during: []string{"", full}},
		{name: "truncated, then written at the last re-read", start: full[:20], during: []string{full[:30], full[:40], full[:50], full}},
		{name: "stays empty: the error, with its advice", start: "", during: nil,
			wantErr: "token file %s: is empty; fix it or run token-refresh-sender login", wantIs: ErrInvalid},
		{name: "stays empty though written just now: re-read until it is a second old, then the error", start: "", justNow: true,
			wantErr: "token file %s: is empty; fix it or run token-refresh-sender login", wantIs: ErrInvalid, slept: time.Second},
		{name: "a writer stalled mid-write finishes within the second", start: full[:20], justNow: true,
			during: []string{"", "", "", "", "", "", full}, slept: 400 * time.Millisecond},
		{name: "keeps changing: no login advice", start: "", during: []string{full[:5], full[:10], full[:15], full[:20]},
			wantErr: "token file %s: another program kept rewriting it and it never held a complete token file while it was re-read; this passes on its own, try again in a moment",
			wantIs:  ErrInProgress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokens.json")
			mustWriteFile(t, path, tt.start, 0o600)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			// The clock runs with the pauses, from the file's mtime (or an
			// hour after it).
			base := fi.ModTime().Add(time.Hour)
			if tt.justNow {
				base = fi.ModTime()
			}
			var slept time.Duration
			n := 0
			s := &Store{Path: path, Now: func() time.Time { return base.Add(slept) }, sleep: func(_ context.Context, d time.Duration) error {
				slept += d
				if n < len(tt.during) && tt.during[n] != "" {
					if err := os.WriteFile(path, []byte(tt.during[n]), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				n++
				return nil
			}}
			want := tt.slept
			if want == 0 {
				want = 100 * time.Millisecond
			}
			tok, err := s.Load(context.Background())
			if tt.wantErr == "" {
				if err != nil || tok.RefreshToken != "R-old" {
					t.Fatalf("Load = %+v, %v", tok, err)
				}
				if tt.justNow && slept != want {
					t.Errorf("loaded after %v of pauses, want %v", slept, want)
				}
				return
			}
			if want := strings.Replace(tt.wantErr, "%s", path, 1); err == nil || err.Error() != want {
				t.Fatalf("err = %v\nwant %s", err, want)
			}
			if !errors.Is(err, tt.wantIs) {
				t.Errorf("err does not match %v", tt.wantIs)
			}
			if slept != want {
				t.Errorf("re-read for %v, want %v", slept, want)
			}
		})
	}
}

// TestStore_Load_rewrittenWithSameBytes: a writer that keeps rewriting the
// same content can leave the same cut-off bytes at every re-read. That is
// a file mid-write (no login advice), told by its modification time or a
// new inode; a file left cut off, untouched, keeps Parse's error.
func TestStore_Load_rewrittenWithSameBytes(t *testing.T) {
	cut := validDoc[:20]
	base := time.Unix(1762990000, 0)
	tests := []struct {
		name    string
		rewrite func(t *testing.T, path string, n int) // at the n-th pause
		wantIs  error
		advice  bool
	}{
		{name: "rewritten in place: newer modification time", wantIs: ErrInProgress,
			rewrite: func(t *testing.T, path string, n int) {
				mustWriteFile(t, path, cut, 0o600)
				mustChtimes(t, path, base.Add(time.Duration(n+1)*time.Millisecond))
			}},
		{name: "replaced by rename: same time, new inode", wantIs: ErrInProgress,
			rewrite: func(t *testing.T, path string, n int) {
				tmp := path + ".new"
				mustWriteFile(t, tmp, cut, 0o600)
				mustChtimes(t, tmp, base)
				if err := os.Rename(tmp, path); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "untouched: the error, with its advice", wantIs: ErrInvalid, advice: true,
			rewrite: func(*testing.T, string, int) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokens.json")
			mustWriteFile(t, path, cut, 0o600)
			mustChtimes(t, path, base)
			n := 0
			s := &Store{Path: path, sleep: func(context.Context, time.Duration) error {
				tt.rewrite(t, path, n)
				n++
				return nil
			}}
			_, err := s.Load(context.Background())
			if !errors.Is(err, tt.wantIs) {
				t.Fatalf("err = %v, want it to match %v", err, tt.wantIs)
			}
			if got := strings.Contains(err.Error(), "run token-refresh-sender login"); got != tt.advice {
				t.Errorf("login advice %v, want %v: %v", got, tt.advice, err)
			}
		})
	}
}

func TestFileError_NewLogin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	mustWriteFile(t, path, "", 0o600)
	_, err := Load(path)
	var nl interface{ NewLogin() bool }
	if !errors.As(err, &nl) || nl.NewLogin() {
		t.Errorf("an empty file's error says NewLogin: %v", err)
	}
}

func mustChtimes(t *testing.T, path string, mtime time.Time) {
	t.Helper()
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func TestStore_Load_cancelledWhileRetrying(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	mustWriteFile(t, path, "", 0o600)
	calls := 0
	s := &Store{Path: path, sleep: func(context.Context, time.Duration) error { calls++; return context.Canceled }}
	if _, err := s.Load(context.Background()); !errors.Is(err, ErrInvalid) || calls != 1 {
		t.Errorf("err = %v after %d pauses; want the parse error after 1", err, calls)
	}
}

func TestStore_Load_fileGoneWhileRetrying(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	mustWriteFile(t, path, "", 0o600)
	s := &Store{Path: path, sleep: func(context.Context, time.Duration) error { return os.Remove(path) }}
	if _, err := s.Load(context.Background()); !errors.Is(err, ErrNotFound) {
		t.Errorf("err = %v, want ErrNotFound", err)
	}
}

// TestStore_Update_foreignWriteMeanwhile: a program that does not take the
// lock (schwab-py) writes the file in place while fn runs. A new refresh
// token (a login) is left in place; anything else is replaced.
func TestStore_Update_foreignWriteMeanwhile(t *testing.T) {
	login := strings.Replace(validDoc, `"R-old"`, `"R-login"`, 1)
	sameRefresh := strings.Replace(validDoc, `"A-old"`, `"A-theirs"`, 1)
	tests := []struct {
		name     string
		theirs   string // written in place while fn runs
		wantFile string // "" = fn's token
		wantErr  error
	}{
		{name: "a new login: left in place", theirs: login, wantFile: login, wantErr: ErrNewLogin},
		{name: "the same refresh token: replaced", theirs: sameRefresh},
		{name: "left cut off: replaced", theirs: validDoc[:20]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokens.json")
			mustWriteFile(t, path, validDoc, 0o600)
			s := &Store{Path: path, sleep: func(context.Context, time.Duration) error { return nil }}
			fresh := tokensender.Token{AccessToken: "A-new", RefreshToken: "R-old", ExpiresIn: 1800}
			tok, err := s.Update(context.Background(), func(tokensender.Token) (tokensender.Token, error) {
				f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, err := f.WriteString(tt.theirs); err != nil {
					t.Fatal(err)
				}
				return fresh, nil
			})
			if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tok.AccessToken != "A-new" {
				t.Errorf("Update returned %+v, want fn's token", tok)
			}
			data, rerr := os.ReadFile(path)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if tt.wantFile != "" {
				if string(data) != tt.wantFile {
					t.Errorf("file = %s\nwant theirs, untouched: %s", data, tt.wantFile)
				}
				if want := "token file " + path + ": another program wrote a new refresh token into it meanwhile (a new login); left as it is, so that login is kept"; err.Error() != want {
					t.Errorf("err = %v\nwant %s", err, want)
				}
				// The daemon, which does not import this package, tells it so.
				var nl interface{ NewLogin() bool }
				if !errors.As(err, &nl) || !nl.NewLogin() {
					t.Errorf("err has no NewLogin() true: %v", err)
				}
				return
			}
			if d, perr := Parse(path, data); perr != nil || d.Token().AccessToken != "A-new" {
				t.Errorf("file does not hold fn's token (%v): %s", perr, data)
			}
		})
	}
}

func TestStore_UpdateDocument(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	mustWriteFile(t, path, validDoc, 0o600)
	s := &Store{Path: path}
	err := s.UpdateDocument(context.Background(), func(d *Document) error {
		d.top.set("mine", intJSON(7))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mustReadFile(t, path)), `"mine": 7`) {
		t.Errorf("edit not written:\n%s", mustReadFile(t, path))
	}
}

func TestStore_SaveLogin(t *testing.T) {
	now := time.Unix(1762990000, 0)
	tok := tokensender.Token{AccessToken: "A-login", RefreshToken: "R-login", ExpiresIn: 1800, ExpiresAt: now.Add(30 * time.Minute)}
	for _, tt := range []struct {
		name, content string
		keepsMine     bool
	}{
		{"existing file keeps other keys", `{"mine": 1, "token": {"refresh_token": "R-old", "extra": 2}}`, true},
		{"no file", "", false},
		{"bad file replaced", "{", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokens.json")
			if tt.content != "" {
				mustWriteFile(t, path, tt.content, 0o644)
			}
			s := &Store{Path: path, Now: func() time.Time { return now }, sleep: func(context.Context, time.Duration) error { return nil }}
			if err := s.SaveLogin(context.Background(), tok); err != nil {
				t.Fatal(err)
			}
			data := string(mustReadFile(t, path))
			d := mustParse(t, data)
			want := tok
			want.RefreshTokenIssuedAt = now
			if !cmp.Equal(d.Token(), want) {
				t.Errorf("saved %+v, want %+v", d.Token(), want)
			}
			if got := strings.Contains(data, `"mine": 1`) && strings.Contains(data, `"extra": 2`); got != tt.keepsMine {
				t.Errorf("other keys kept = %v, want %v:\n%s", got, tt.keepsMine, data)
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %04o", fi.Mode().Perm())
			}
		})
	}
	t.Run("issued time given", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "tokens.json")
		tk := tok
		tk.RefreshTokenIssuedAt = now.Add(-time.Hour)
		if err := (&Store{Path: path, Now: func() time.Time { return now }}).SaveLogin(context.Background(), tk); err != nil {
			t.Fatal(err)
		}
		if got, _ := mustParse(t, string(mustReadFile(t, path))).RefreshTokenIssuedAt(); !got.Equal(now.Add(-time.Hour)) {
			t.Errorf("issued %v", got)
		}
	})
	t.Run("lock refused", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "tokens.json")
		if err := os.Symlink("/nowhere", path+".lock"); err != nil {
			t.Fatal(err)
		}
		if err := (&Store{Path: path}).SaveLogin(context.Background(), tok); !errors.Is(err, ErrLock) {
			t.Errorf("err = %v", err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("written without the lock")
		}
	})
}
