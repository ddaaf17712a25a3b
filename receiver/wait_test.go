package receiver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/internal/testproc"
)

func TestToken_redacted(t *testing.T) {
	tok := Token{AccessToken: secretAccess, RefreshToken: secretRefresh, ExpiresAt: time.Unix(1762984855, 0)}
	want := "receiver.Token{access " + tokensender.Redact(secretAccess) + ", refresh " + tokensender.Redact(secretRefresh) + ", expires 2025-11-12T22:00:55Z}"
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x", "%q", "%10.3v"} {
		got := fmt.Sprintf(format, tok)
		assertNoSecret(t, got)
		if format != "%q" && got != want {
			t.Errorf("Sprintf(%q) = %q, want %q", format, got, want)
		}
	}
	if got := fmt.Sprintf("%q", tok); got != `"`+want+`"` {
		t.Errorf("%%q = %s", got)
	}
	if got := fmt.Sprint(&tok, []Token{tok}); !strings.Contains(got, want) {
		t.Errorf("pointer and slice: %q", got)
	}
	if tok.GoString() != want {
		t.Errorf("GoString = %q", tok.GoString())
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("got", "token", tok)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("got", "token", tok)
	assertNoSecret(t, buf.String())
	if strings.Count(buf.String(), want) != 2 {
		t.Errorf("slog output lacks the redacted token:\n%s", buf.String())
	}
}

// serveWithClock serves a Receiver on a short temp path.
func serveWith(t *testing.T, r *Receiver) {
	t.Helper()
	r.Addr = filepath.Join(shortDir(t), "s")
	if r.Now == nil {
		r.Now = func() time.Time { return testNow }
	}
	mustServe(t, r)
}

func TestReceiver_Wait(t *testing.T) {
	r := &Receiver{}
	serveWith(t, r)
	exp := testNow.Unix() + 1800

	// Nothing yet: Wait ends with its context.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if tok, err := r.Wait(ctx); !errors.Is(err, context.Canceled) || tok != (Token{}) {
		t.Fatalf("Wait before any token = %v, %v; want context.Canceled", tok, err)
	}

	// A Wait already blocked gets the first token.
	got := make(chan Token, 1)
	limited, cancelLimited := context.WithTimeout(t.Context(), testproc.WaitLimit) // a safety net
	defer cancelLimited()
	go func() {
		tok, err := r.Wait(limited)
		if err != nil {
			t.Error(err)
		}
		got <- tok
	}()
	mustAccept(t, r, wire("first-access-token", exp))
	select {
	case tok := <-got:
		if tok.AccessToken != "first-access-token" || tok.ExpiresAt.Unix() != exp {
			t.Fatalf("first Wait = %+v", tok.AccessToken)
		}
	case <-time.After(testproc.WaitLimit): // a safety net, not a timing assertion
		t.Fatal("Wait did not return the token")
	}

	// Returned once: the next Wait blocks until a newer token.
	if _, err := r.Wait(ctx); !errors.Is(err, context.Canceled) { // ctx is cancelled already
		t.Fatalf("second Wait without a new token = %v, want context.Canceled", err)
	}

	// Two tokens arrive while nobody waits: the next Wait returns the
	// latest at once, then blocks again. Rejected messages do not count.
	mustAccept(t, r, wire("second-access-token", exp))
	mustAccept(t, r, wire("third-access-token", exp+1))
	mustSend(t, r.BoundAddr(), []byte("garbage"))
	if tok, err := r.Wait(ctx); err != nil || tok.AccessToken != "third-access-token" { // ctx is cancelled: must not block
		t.Fatalf("Wait after two tokens = %v, %v; want the third", tok.AccessToken, err)
	}
	ctx2, cancel2 := context.WithCancel(t.Context())
	cancel2()
	if _, err := r.Wait(ctx2); err == nil || err.Error() != "wait for a token: context canceled" {
		t.Fatalf("Wait with nothing new = %v", err)
	}
}

// mustAccept sends payload and fails the test unless the answer is OK.
func mustAccept(tb testing.TB, r *Receiver, payload []byte) {
	tb.Helper()
	if answer := mustSend(tb, r.BoundAddr(), payload); answer != "OK" {
		tb.Fatalf("answer %q, want OK", answer)
	}
}

// TestReceiver_Wait_alreadyArrived: the first Wait returns a token that came
// before it was called.
func TestReceiver_Wait_alreadyArrived(t *testing.T) {
	var onToken []string
	r := &Receiver{OnToken: func(tok Token) { onToken = append(onToken, tok.AccessToken) }}
	serveWith(t, r)
	mustAccept(t, r, wire("early-access-token", testNow.Unix()+60))
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // must not block, must not need ctx
	if tok, err := r.Wait(ctx); err != nil || tok.AccessToken != "early-access-token" {
		t.Fatalf("Wait = %v, %v", tok.AccessToken, err)
	}
	if len(onToken) != 1 {
		t.Errorf("OnToken saw %v alongside Wait", onToken)
	}
}

// TestReceiver_OnReject: the sender's mistakes go to OnReject, and only
// there, when it is set.
func TestReceiver_OnReject(t *testing.T) {
	var mu sync.Mutex
	var rejects, errs []error
	r := &Receiver{MaxSize: 256, ReadTimeout: 50 * time.Millisecond,
		OnReject: func(err error) { mu.Lock(); rejects = append(rejects, err); mu.Unlock() },
		OnError:  func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() },
	}
	serveWith(t, r)
	mustSend(t, r.BoundAddr(), []byte("{"))
	mustSend(t, r.BoundAddr(), wire(secretAccess, testNow.Unix()-1))
	mustSend(t, r.BoundAddr(), bytes.Repeat([]byte("x"), 300))
	c := dialAddr(t, r.BoundAddr()) // never half-closes
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 0 {
		t.Errorf("OnError got %v; rejections belong to OnReject", errs)
	}
	want := []error{ErrInvalidMessage, ErrExpired, ErrTooLarge, ErrIncomplete}
	if len(rejects) != len(want) {
		t.Fatalf("OnReject got %v, want %v", rejects, want)
	}
	for i, w := range want {
		if !errors.Is(rejects[i], w) || errors.Is(rejects[i], ErrAccept) {
			t.Errorf("rejection %d = %v, want %v", i, rejects[i], w)
		}
	}
}

// flakyListener fails Accept with errs first, then accepts for real.
type flakyListener struct {
	net.Listener
	mu   sync.Mutex
	errs []error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		l.mu.Unlock()
		return nil, err
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

func acceptErr(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", errno)}
}

// TestReceiver_Serve_acceptErrors: a transient accept error goes to
// OnError (wrapping ErrAccept), never to OnReject, and Serve goes on; a
// lasting one ends Serve with it.
func TestReceiver_Serve_acceptErrors(t *testing.T) {
	var mu sync.Mutex
	var rejects, errs []error
	r := &Receiver{Addr: filepath.Join(shortDir(t), "s"), Now: func() time.Time { return testNow },
		OnReject: func(err error) { mu.Lock(); rejects = append(rejects, err); mu.Unlock() },
		OnError:  func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() },
	}
	if err := r.Listen(); err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: r.ln, errs: []error{acceptErr(syscall.EMFILE), acceptErr(syscall.ECONNABORTED)}}
	r.ln = fl
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx) }()
	if got := mustSend(t, r.BoundAddr(), wire(secretAccess, testNow.Unix()+60)); got != "OK" {
		t.Fatalf("answer after transient accept errors = %q", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v", err)
	}
	mu.Lock()
	if len(rejects) != 0 || len(errs) != 2 {
		t.Fatalf("OnReject %v, OnError %v; want two accept errors in OnError", rejects, errs)
	}
	// The retry delay doubles from 5ms.
	for i, want := range []string{"too many open files; retrying in 5ms", "software caused connection abort; retrying in 10ms"} {
		if err := errs[i]; !errors.Is(err, ErrAccept) || err.Error() != "accept on "+r.bound+": accept unix: accept4: "+want {
			t.Errorf("accept error %q, want it to end in %q", err, want)
		}
	}
	mu.Unlock()

	// A lasting error (EBADF) ends Serve.
	if err := r.Listen(); err != nil {
		t.Fatal(err)
	}
	r.ln = &flakyListener{Listener: r.ln, errs: []error{acceptErr(syscall.EBADF)}}
	err := r.Serve(t.Context())
	if !errors.Is(err, ErrAccept) || !errors.Is(err, syscall.EBADF) {
		t.Fatalf("Serve after EBADF = %v, want it to wrap ErrAccept and EBADF", err)
	}
	if _, statErr := os.Lstat(r.Addr); !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("socket file left after Serve failed: %v", statErr)
	}
}

// TestReceiver_Serve_readError: a sender that resets the connection is this
// connection's failure, not a rejected message: it goes to OnError, as one
// line without the socket addresses.
func TestReceiver_Serve_readError(t *testing.T) {
	reported := make(chan error, 8)
	r := &Receiver{Addr: "tcp://127.0.0.1:0",
		OnReject: func(err error) { reported <- fmt.Errorf("OnReject: %w", err) },
		OnError:  func(err error) { reported <- err },
	}
	mustServe(t, r)
	c := dialAddr(t, r.BoundAddr()).(*net.TCPConn)
	if _, err := c.Write([]byte(`{"access_token": "`)); err != nil {
		t.Fatal(err)
	}
	if err := c.SetLinger(0); err != nil { // Close sends a reset
		t.Fatal(err)
	}
	c.Close()
	select {
	case err := <-reported:
		if err.Error() != "receive token: read: connection reset by peer" {
			t.Fatalf("reported %q, want the read error in OnError", err)
		}
	case <-time.After(testproc.WaitLimit): // a safety net, not a timing assertion
		t.Fatal("nothing reported")
	}
}
