package receiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/internal/testproc"
)

// shortDir is a temp dir with a path short enough for Unix sockets.
func shortDir(tb testing.TB) string { return testproc.ShortDir(tb) }

// recorder collects what a Receiver reports.
type recorder struct {
	mu     sync.Mutex
	tokens []Token
	errs   []error
}

func (rec *recorder) onToken(t Token) {
	rec.mu.Lock()
	rec.tokens = append(rec.tokens, t)
	rec.mu.Unlock()
}
func (rec *recorder) onError(err error) {
	rec.mu.Lock()
	rec.errs = append(rec.errs, err)
	rec.mu.Unlock()
}

func (rec *recorder) snapshot() ([]Token, []error) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]Token(nil), rec.tokens...), append([]error(nil), rec.errs...)
}

// mustServe binds r and serves it until the test ends. The returned stop
// cancels Serve and returns its error.
func mustServe(tb testing.TB, r *Receiver) (stop func() error) {
	tb.Helper()
	if err := r.Listen(); err != nil {
		tb.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx) }()
	var once sync.Once
	var serveErr error
	stop = func() error {
		once.Do(func() { cancel(); serveErr = <-done })
		return serveErr
	}
	tb.Cleanup(func() { stop() })
	return stop
}

func dialAddr(tb testing.TB, bound string) net.Conn {
	tb.Helper()
	network, addr := "unix", bound
	if a, ok := strings.CutPrefix(bound, "tcp://"); ok {
		network, addr = "tcp", a
	}
	c, err := net.Dial(network, addr)
	if err != nil {
		tb.Fatalf("dial %s: %v", bound, err)
	}
	return c
}

// mustSend writes payload as the sender does (then half-closes) and returns
// the answer.
func mustSend(tb testing.TB, bound string, payload []byte) string {
	tb.Helper()
	answer, err := send(bound, payload)
	if err != nil {
		tb.Fatal(err)
	}
	return answer
}

// send is mustSend for goroutines other than the test's.
func send(bound string, payload []byte) (string, error) {
	network, addr := "unix", bound
	if a, ok := strings.CutPrefix(bound, "tcp://"); ok {
		network, addr = "tcp", a
	}
	c, err := net.Dial(network, addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(payload); err != nil {
		return "", fmt.Errorf("write: %w", err)
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		return "", fmt.Errorf("CloseWrite: %w", err)
	}
	answer, err := io.ReadAll(c)
	if err != nil && len(answer) == 0 {
		return "", fmt.Errorf("read answer: %w", err)
	}
	return string(answer), nil
}

func wire(access string, expiresAt int64) []byte {
	return tokensender.Message{AccessToken: access, RefreshToken: secretRefresh, ExpiresAt: expiresAt}.Wire()
}

func TestReceiver_Serve(t *testing.T) {
	future := testNow.Unix() + 1800
	tests := []struct {
		name       string
		payload    []byte
		wantAnswer string
		wantErr    error // nil: accepted
		wantErrMsg string
	}{
		{name: "good", payload: wire(secretAccess, future), wantAnswer: "OK"},
		{name: "truncated", payload: wire(secretAccess, future)[:30],
			wantAnswer: "ERROR: not valid JSON: it ends early (truncated?)", wantErr: ErrInvalidMessage},
		{name: "oversized", payload: []byte(`{"access_token": "` + strings.Repeat("A", 300) + `"}`),
			wantAnswer: "ERROR: message larger than 256 bytes", wantErr: ErrTooLarge,
			wantErrMsg: "receive token: token message too large: more than 256 bytes (Receiver.MaxSize)"},
		{name: "exactly MaxSize", payload: []byte(`{"access_token": "` + strings.Repeat("A", 256-20) + `"}`),
			wantAnswer: `ERROR: field "refresh_token" is missing`, wantErr: ErrInvalidMessage},
		{name: "wrong type", payload: []byte(`{"access_token": "` + secretAccess + `", "refresh_token": 7, "expires_at": 1762984855}`),
			wantAnswer: `ERROR: field "refresh_token" must be a string, not number`, wantErr: ErrInvalidMessage,
			wantErrMsg: `receive token: invalid token message: field "refresh_token" must be a string, not number`},
		{name: "expired", payload: wire(secretAccess, testNow.Unix()-1),
			wantAnswer: "ERROR: token expired at 2025-11-12T21:30:54Z", wantErr: ErrExpired},
		{name: "empty", payload: nil, wantAnswer: "ERROR: empty message", wantErr: ErrInvalidMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rec recorder
			r := &Receiver{Addr: filepath.Join(shortDir(t), "s"), MaxSize: 256,
				OnToken: rec.onToken, OnError: rec.onError, Now: func() time.Time { return testNow }}
			stop := mustServe(t, r)
			if got := mustSend(t, r.BoundAddr(), tt.payload); got != tt.wantAnswer {
				t.Errorf("answer = %q, want %q", got, tt.wantAnswer)
			}
			if err := stop(); err != nil {
				t.Fatalf("Serve: %v", err)
			}
			tokens, errs := rec.snapshot()
			latest, ok := r.Latest()
			if tt.wantErr == nil {
				want := Token{secretAccess, secretRefresh, time.Unix(future, 0)}
				if len(errs) != 0 || len(tokens) != 1 || tokens[0] != want {
					t.Fatalf("OnToken got %v, OnError got %v; want one token %+v", tokens, errs, want)
				}
				if !ok || latest != want {
					t.Errorf("Latest = %+v, %v; want %+v", latest, ok, want)
				}
				return
			}
			if len(tokens) != 0 || ok {
				t.Errorf("rejected message reached OnToken %v / Latest %v", tokens, ok)
			}
			if len(errs) != 1 || !errors.Is(errs[0], tt.wantErr) {
				t.Fatalf("OnError got %v, want one %v", errs, tt.wantErr)
			}
			if tt.wantErrMsg != "" && errs[0].Error() != tt.wantErrMsg {
				t.Errorf("OnError = %q, want %q", errs[0], tt.wantErrMsg)
			}
			assertNoSecret(t, errs[0].Error())
		})
	}
}

func TestReceiver_Serve_tcp(t *testing.T) {
	for _, addr := range []string{"tcp://127.0.0.1:0", "tcp://localhost:0"} {
		t.Run(addr, func(t *testing.T) {
			var rec recorder
			r := &Receiver{Addr: addr, OnToken: rec.onToken, Now: func() time.Time { return testNow }}
			mustServe(t, r)
			bound := r.BoundAddr()
			if !strings.HasPrefix(bound, "tcp://127.0.0.1:") || strings.HasSuffix(bound, ":0") {
				t.Fatalf("BoundAddr = %q, want tcp://127.0.0.1:<port>", bound)
			}
			if got := mustSend(t, bound, wire("a1", testNow.Unix()+60)); got != "OK" {
				t.Fatalf("answer = %q, want OK", got)
			}
			if tok, ok := r.Latest(); !ok || tok.AccessToken != "a1" {
				t.Errorf("Latest = %+v, %v", tok, ok)
			}
		})
	}
}

func TestReceiver_Serve_slowSender(t *testing.T) {
	var rec recorder
	r := &Receiver{Addr: filepath.Join(shortDir(t), "s"), ReadTimeout: 50 * time.Millisecond,
		OnToken: rec.onToken, OnError: rec.onError, Now: func() time.Time { return testNow }}
	stop := mustServe(t, r)
	c := dialAddr(t, r.BoundAddr())
	defer c.Close()
	// The whole message, but no half-close: the receiver must not wait forever.
	if _, err := c.Write(wire(secretAccess, testNow.Unix()+60)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	if want := "ERROR: no end of message within 50ms"; string(answer) != want {
		t.Errorf("answer = %q, want %q", answer, want)
	}
	stop()
	tokens, errs := rec.snapshot()
	if len(tokens) != 0 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "the sender must close its write side") {
		t.Errorf("tokens %v, errors %v; want one timeout error", tokens, errs)
	}
}

func TestReceiver_Serve_concurrentSenders(t *testing.T) {
	var (
		active  atomic.Int32
		overlap atomic.Bool
		mu      sync.Mutex
		order   []Token
	)
	r := &Receiver{
		Addr: filepath.Join(shortDir(t), "s"),
		Now:  func() time.Time { return testNow },
		OnToken: func(tok Token) {
			if active.Add(1) != 1 {
				overlap.Store(true)
			}
			mu.Lock()
			order = append(order, tok)
			mu.Unlock()
			active.Add(-1)
		},
	}
	mustServe(t, r)
	const n = 20
	var wg sync.WaitGroup
	answers := make([]string, n)
	for i := range n {
		wg.Go(func() {
			a, err := send(r.BoundAddr(), wire("tok-"+string(rune('a'+i)), testNow.Unix()+int64(100+i)))
			if err != nil {
				t.Errorf("sender %d: %v", i, err)
			}
			answers[i] = a
		})
	}
	wg.Wait()
	for i, a := range answers {
		if a != "OK" {
			t.Errorf("sender %d got %q", i, a)
		}
	}
	if overlap.Load() {
		t.Error("OnToken calls overlapped")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(order) != n {
		t.Fatalf("OnToken called %d times, want %d", len(order), n)
	}
	// Latest is the last token received, which is the last OnToken saw.
	if got, ok := r.Latest(); !ok || got != order[n-1] {
		t.Errorf("Latest = %+v, want last received %+v", got, order[n-1])
	}
}

func TestReceiver_Listen(t *testing.T) {
	t.Run("stale socket is replaced", func(t *testing.T) {
		path := filepath.Join(shortDir(t), "s")
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		ln.SetUnlinkOnClose(false)
		ln.Close()
		if _, err := os.Lstat(path); err != nil {
			t.Fatalf("setup: stale socket missing: %v", err)
		}
		r := &Receiver{Addr: path, Now: func() time.Time { return testNow }}
		mustServe(t, r)
		if got := mustSend(t, path, wire("a", testNow.Unix()+60)); got != "OK" {
			t.Errorf("answer = %q, want OK", got)
		}
	})
	t.Run("live socket is left alone", func(t *testing.T) {
		path := filepath.Join(shortDir(t), "s")
		other := &Receiver{Addr: path}
		mustServe(t, other)
		err := (&Receiver{Addr: path}).Listen()
		if want := "socket " + path + " is in use by another process"; err == nil || err.Error() != want {
			t.Fatalf("Listen error = %v, want %q", err, want)
		}
		if got := mustSend(t, path, wire("a", time.Now().Unix()+60)); got != "OK" {
			t.Errorf("the other receiver no longer answers: %q", got)
		}
	})
	for _, kind := range []string{"regular file", "directory", "symlink"} {
		t.Run(kind+" is left alone", func(t *testing.T) {
			dir := shortDir(t)
			path := filepath.Join(dir, "s")
			var err error
			switch kind {
			case "regular file":
				err = os.WriteFile(path, []byte("keep me"), 0o600)
			case "directory":
				err = os.Mkdir(path, 0o700)
			case "symlink":
				err = os.Symlink(filepath.Join(dir, "elsewhere"), path)
			}
			if err != nil {
				t.Fatal(err)
			}
			before, _ := os.Lstat(path)
			err = (&Receiver{Addr: path}).Listen()
			if want := path + " exists and is not a socket; refusing to remove it"; err == nil || err.Error() != want {
				t.Fatalf("Listen error = %v, want %q", err, want)
			}
			after, err := os.Lstat(path)
			if err != nil || !os.SameFile(before, after) {
				t.Errorf("%s was touched: %v", kind, err)
			}
		})
	}
	t.Run("mode", func(t *testing.T) {
		for _, tt := range []struct {
			mode, want os.FileMode
		}{{0, 0o600}, {0o660, 0o660}, {0o666, 0o666}} {
			path := filepath.Join(shortDir(t), "s")
			r := &Receiver{Addr: path, Mode: tt.mode}
			if err := r.Listen(); err != nil {
				t.Fatal(err)
			}
			info, err := os.Lstat(path)
			r.Close()
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode().Type() != fs.ModeSocket || info.Mode().Perm() != tt.want {
				t.Errorf("Mode %#o: socket file mode = %v, want %#o", tt.mode, info.Mode(), tt.want)
			}
		}
	})
	t.Run("bad addresses", func(t *testing.T) {
		for _, tt := range []struct{ addr, want string }{
			{"tcp://0.0.0.0:9999", "only loopback addresses are allowed"},
			{"tcp://:9999", "only loopback addresses are allowed"},
			{"tcp://10.0.0.5:9999", "tokens must not leave this machine"},
			{"tcp://127.0.0.1", "expected tcp://HOST:PORT"},
			{"tcp://127.0.0.1:70000", "must be a number from 0 to 65535"},
			{"udp://127.0.0.1:9", `unsupported scheme "udp"`},
			{"/tmp/" + strings.Repeat("x", 103), "limited to 107 bytes, this one has 108"},
			{"\x00/tmp/x.sock", "cannot contain a NUL byte"},
			{"/tmp/x\x00.sock", "cannot contain a NUL byte"},
			{"@abstract", "abstract Unix sockets"},
		} {
			err := (&Receiver{Addr: tt.addr}).Listen()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Listen(%q) error = %v, want it to contain %q", tt.addr, err, tt.want)
			}
		}
	})
	t.Run("longest path", func(t *testing.T) {
		dir := shortDir(t)
		path := dir + "/" + strings.Repeat("s", 107-len(dir)-1)
		r := &Receiver{Addr: path}
		if err := r.Listen(); err != nil {
			t.Fatalf("Listen on a 107-byte path: %v", err)
		}
		r.Close()
	})
	t.Run("zero Addr is the C++ receiver's default", func(t *testing.T) {
		// Not bound for real: the path is shared with real bots.
		if got := (&Receiver{}).addr(); got != "/tmp/bigbrother_token.sock" {
			t.Errorf("zero Addr means %q, want /tmp/bigbrother_token.sock", got)
		}
		if got := (&Receiver{Addr: "/tmp/x.sock"}).addr(); got != "/tmp/x.sock" {
			t.Errorf("Addr /tmp/x.sock means %q", got)
		}
	})
	t.Run("twice", func(t *testing.T) {
		r := &Receiver{Addr: filepath.Join(shortDir(t), "s")}
		if err := r.Listen(); err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if err := r.Listen(); err == nil || !strings.Contains(err.Error(), "already listening") {
			t.Errorf("second Listen error = %v", err)
		}
	})
}

func TestReceiver_Serve_cancel(t *testing.T) {
	var rec recorder
	path := filepath.Join(shortDir(t), "s")
	r := &Receiver{Addr: path, ReadTimeout: time.Hour, OnError: rec.onError}
	stop := mustServe(t, r)
	// A sender that connects and then hangs must not hold up shutdown.
	c := dialAddr(t, path)
	defer c.Close()
	c.Write([]byte(`{"access_token": "`))
	if got := mustSend(t, path, nil); got != "ERROR: empty message" { // Serve is accepting
		t.Fatalf("answer = %q", got)
	}
	if err := stop(); err != nil {
		t.Fatalf("Serve returned %v, want nil", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file not removed: %v", err)
	}
	if r.BoundAddr() != "" {
		t.Errorf("BoundAddr after Serve = %q", r.BoundAddr())
	}
	if _, errs := rec.snapshot(); len(errs) != 1 {
		t.Errorf("OnError got %v; shutdown must not report the hung connection", errs)
	}
	// The receiver can listen again.
	mustServe(t, r)
}

func TestReceiver_Serve_keepsForeignFile(t *testing.T) {
	path := filepath.Join(shortDir(t), "s")
	r := &Receiver{Addr: path}
	stop := mustServe(t, r)
	// Someone replaces our socket file; shutdown must not delete theirs.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("theirs"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "theirs" {
		t.Errorf("foreign file at socket path lost: %q, %v", b, err)
	}
}

func TestReceiver_Close(t *testing.T) {
	path := filepath.Join(shortDir(t), "s")
	r := &Receiver{Addr: path}
	if err := r.Serve(context.Background()); err == nil || !strings.Contains(err.Error(), "before Listen") {
		t.Errorf("Serve before Listen = %v", err)
	}
	if err := r.Listen(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file not removed by Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	// Close while serving makes Serve return nil.
	if err := r.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Serve(context.Background()) }()
	if got := mustSend(t, path, nil); got != "ERROR: empty message" {
		t.Fatalf("answer = %q", got)
	}
	r.Close()
	if err := <-done; err != nil {
		t.Errorf("Serve after Close = %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file not removed: %v", err)
	}
}
