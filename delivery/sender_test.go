package delivery

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/internal/testproc"
)

var testMsg = tokensender.Message{
	AccessToken:  "I0.SECRETACCESS.b2F1dGgyLmJkYy5zY2h3YWIuY29t@",
	RefreshToken: "SECRETREFRESH-Q29kZUNoYWxsZW5nZQ@",
	ExpiresAt:    1762984855,
}

// logRecorder is a slog.Handler keeping "LEVEL message" lines.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = append(h.lines, r.Level.String()+" "+r.Message)
	return nil
}

func (h *logRecorder) Lines() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.lines...)
}

// assertLines compares logs line by line and checks no token text leaked.
func assertLines(tb testing.TB, got, want []string) {
	tb.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		tb.Errorf("log lines:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	for _, l := range got {
		if strings.Contains(l, "SECRET") {
			tb.Errorf("log line contains token text: %q", l)
		}
	}
}

// shortDir is a temp dir with a path short enough for Unix sockets.
func shortDir(tb testing.TB) string { return testproc.ShortDir(tb) }

// bot is a fake trading bot on a real socket.
type bot struct {
	addr     Address
	accepted chan int      // connection index, sent when a connection is accepted
	read     chan struct{} // sent when a connection's message has been read

	mu   sync.Mutex
	got  [][]byte   // bytes read, per connection
	held []net.Conn // hung connections
}

// mustStartBot listens on network ("unix" or "tcp"). answer gives the reply
// to connection i after reading the whole message ("" = close without a
// word); a nil answer makes a hung bot that never reads nor answers.
func mustStartBot(tb testing.TB, network string, answer func(i int) string) *bot {
	tb.Helper()
	var ln net.Listener
	var err error
	var addr Address
	if network == "unix" {
		path := filepath.Join(shortDir(tb), "bot.sock")
		ln, err = net.Listen("unix", path)
		addr = Address{"unix", path}
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err == nil {
			addr = Address{"tcp", ln.Addr().String()}
		}
	}
	if err != nil {
		tb.Fatal(err)
	}
	b := &bot{addr: addr, accepted: make(chan int, 1000), read: make(chan struct{}, 1000)}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.accepted <- i
			if answer == nil {
				b.mu.Lock()
				b.held = append(b.held, c)
				b.mu.Unlock()
				continue
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				data, _ := io.ReadAll(c)
				b.mu.Lock()
				b.got = append(b.got, data)
				b.mu.Unlock()
				b.read <- struct{}{}
				if a := answer(i); a != "" {
					c.Write([]byte(a))
				}
			})
		}
	})
	tb.Cleanup(func() {
		ln.Close()
		b.releaseHeld()
		wg.Wait()
	})
	return b
}

func (b *bot) releaseHeld() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.held {
		c.Close()
	}
	b.held = nil
}

// waitConns waits until the bot has read n connections to their end.
func (b *bot) waitConns(tb testing.TB, n int) {
	tb.Helper()
	limit := time.NewTimer(testproc.WaitLimit)
	defer limit.Stop()
	for range n {
		select {
		case <-b.read:
		case <-limit.C:
			tb.Fatalf("the bot read %d connections, want %d", len(b.received()), n)
		}
	}
}

func (b *bot) received() [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]byte(nil), b.got...)
}

func always(s string) func(int) string { return func(int) string { return s } }

// refusedAddr is a socket file nobody listens on (a crashed bot's leftover).
func refusedAddr(tb testing.TB) Address {
	tb.Helper()
	path := filepath.Join(shortDir(tb), "dead.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		tb.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	return Address{"unix", path}
}

func refusedTCPAddr(tb testing.TB) Address {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return Address{"tcp", addr}
}

func fastSender(logs *logRecorder, targets ...Address) *Sender {
	return &Sender{
		Targets:     targets,
		Logger:      slog.New(logs),
		DialTimeout: time.Second,
		AckTimeout:  time.Second,
		RetryDelay:  time.Millisecond,
		Attempts:    3,
	}
}

func TestSender_Send(t *testing.T) {
	const (
		okLine      = "INFO Token successfully sent to trading bot"
		noAckLine   = "WARN Token sent to trading bot, but the bot sent no acknowledgment (connection closed without OK)"
		notFoundLn  = "WARN Bot socket not found - trading bot may not be running"
		refusedLine = "WARN Could not send token to trading bot (attempt %d/3): connection refused; retrying in 1 ms"
	)
	tests := []struct {
		name         string
		target       func(t *testing.T) (Address, *bot)
		ackTimeout   time.Duration
		wantOutcome  Outcome
		wantAttempts int
		wantConns    int // connections the bot saw (-1: no bot)
		wantLines    []string
	}{
		{name: "OK over unix",
			target:      func(t *testing.T) (Address, *bot) { b := mustStartBot(t, "unix", always("OK")); return b.addr, b },
			wantOutcome: Delivered, wantAttempts: 1, wantConns: 1, wantLines: []string{okLine}},
		{name: "OK over tcp",
			target:      func(t *testing.T) (Address, *bot) { b := mustStartBot(t, "tcp", always("OK")); return b.addr, b },
			wantOutcome: Delivered, wantAttempts: 1, wantConns: 1, wantLines: []string{okLine}},
		{name: "OK with newline",
			target:      func(t *testing.T) (Address, *bot) { b := mustStartBot(t, "unix", always(" OK\r\n")); return b.addr, b },
			wantOutcome: Delivered, wantAttempts: 1, wantConns: 1, wantLines: []string{okLine}},
		{name: "no answer (C++ TokenReceiver)",
			target:      func(t *testing.T) (Address, *bot) { b := mustStartBot(t, "unix", always("")); return b.addr, b },
			wantOutcome: DeliveredNoAck, wantAttempts: 1, wantConns: 1, wantLines: []string{noAckLine}},
		{name: "ERROR then OK",
			target: func(t *testing.T) (Address, *bot) {
				b := mustStartBot(t, "unix", func(i int) string {
					if i == 0 {
						return "ERROR"
					}
					return "OK"
				})
				return b.addr, b
			},
			wantOutcome: Delivered, wantAttempts: 2, wantConns: 2, wantLines: []string{
				`WARN Trading bot answered "ERROR" instead of OK (attempt 1/3); retrying in 1 ms`,
				okLine,
			}},
		{name: "always ERROR with reason",
			target: func(t *testing.T) (Address, *bot) {
				b := mustStartBot(t, "tcp", always("ERROR: bad \"json\"\n"))
				return b.addr, b
			},
			wantOutcome: Failed, wantAttempts: 3, wantConns: 3, wantLines: []string{
				`WARN Trading bot answered "ERROR: bad \"json\"" instead of OK (attempt 1/3); retrying in 1 ms`,
				`WARN Trading bot answered "ERROR: bad \"json\"" instead of OK (attempt 2/3); retrying in 1 ms`,
				`ERROR Failed to send token to trading bot after 3 attempts: trading bot answered "ERROR: bad \"json\"" instead of OK`,
			}},
		{name: "unprintable and over-long answer is sanitized",
			target: func(t *testing.T) (Address, *bot) {
				b := mustStartBot(t, "unix", func(i int) string {
					if i == 0 {
						return "NO\x00\x1b[31m~pe\xff" + strings.Repeat("z", 100)
					}
					return "OK"
				})
				return b.addr, b
			},
			wantOutcome: Delivered, wantAttempts: 2, wantConns: 2, wantLines: []string{
				`WARN Trading bot answered "NO??[31m~pe?` + strings.Repeat("z", 52) + `" instead of OK (attempt 1/3); retrying in 1 ms`,
				okLine,
			}},
		{name: "answer echoing the token is withheld",
			target: func(t *testing.T) (Address, *bot) {
				b := mustStartBot(t, "unix", func(i int) string {
					if i == 0 {
						return "ERROR: bad token " + testMsg.AccessToken[:20]
					}
					return "OK"
				})
				return b.addr, b
			},
			wantOutcome: Delivered, wantAttempts: 2, wantConns: 2, wantLines: []string{
				`WARN Trading bot answered "(answer withheld: it repeats part of the token)" instead of OK (attempt 1/3); retrying in 1 ms`,
				okLine,
			}},
		{name: "socket file absent",
			target: func(t *testing.T) (Address, *bot) {
				return Address{"unix", filepath.Join(shortDir(t), "nobody.sock")}, nil
			},
			wantOutcome: NotFound, wantAttempts: 1, wantConns: -1, wantLines: []string{notFoundLn}},
		{name: "socket directory absent",
			target: func(t *testing.T) (Address, *bot) {
				return Address{"unix", filepath.Join(shortDir(t), "no", "such", "dir.sock")}, nil
			},
			wantOutcome: NotFound, wantAttempts: 1, wantConns: -1, wantLines: []string{notFoundLn}},
		{name: "stale socket: connection refused",
			target:      func(t *testing.T) (Address, *bot) { return refusedAddr(t), nil },
			wantOutcome: Failed, wantAttempts: 3, wantConns: -1, wantLines: []string{
				strings.Replace(refusedLine, "%d", "1", 1),
				strings.Replace(refusedLine, "%d", "2", 1),
				"ERROR Failed to send token to trading bot after 3 attempts: connection refused",
			}},
		{name: "tcp connection refused",
			target:      func(t *testing.T) (Address, *bot) { return refusedTCPAddr(t), nil },
			wantOutcome: Failed, wantAttempts: 3, wantConns: -1, wantLines: []string{
				strings.Replace(refusedLine, "%d", "1", 1),
				strings.Replace(refusedLine, "%d", "2", 1),
				"ERROR Failed to send token to trading bot after 3 attempts: connection refused",
			}},
		{name: "hung bot hits the ack timeout",
			target:     func(t *testing.T) (Address, *bot) { b := mustStartBot(t, "unix", nil); return b.addr, b },
			ackTimeout: 30 * time.Millisecond, wantOutcome: Failed, wantAttempts: 3, wantConns: -1, wantLines: []string{
				"WARN Could not send token to trading bot (attempt 1/3): no answer within 30 ms; retrying in 1 ms",
				"WARN Could not send token to trading bot (attempt 2/3): no answer within 30 ms; retrying in 1 ms",
				"ERROR Failed to send token to trading bot after 3 attempts: no answer within 30 ms",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, b := tt.target(t)
			var logs logRecorder
			s := fastSender(&logs, addr)
			if tt.ackTimeout != 0 {
				s.AckTimeout = tt.ackTimeout
			}
			results := s.Send(context.Background(), testMsg).Wait()
			if len(results) != 1 {
				t.Fatalf("got %d results, want 1", len(results))
			}
			r := results[0]
			if r.Target != addr || r.Outcome != tt.wantOutcome || r.Attempts != tt.wantAttempts {
				t.Errorf("result = %+v, want %v after %d attempts", r, tt.wantOutcome, tt.wantAttempts)
			}
			if ok := tt.wantOutcome == Delivered || tt.wantOutcome == DeliveredNoAck; ok != (r.Err == nil) {
				t.Errorf("result error = %v for outcome %v", r.Err, r.Outcome)
			}
			assertLines(t, logs.Lines(), tt.wantLines)
			if tt.wantConns >= 0 {
				got := b.received()
				if len(got) != tt.wantConns {
					t.Fatalf("bot saw %d connections, want %d", len(got), tt.wantConns)
				}
				for i, data := range got {
					if !bytes.Equal(data, testMsg.Wire()) {
						t.Errorf("connection %d received %q, want exactly msg.Wire()", i, data)
					}
				}
			}
		})
	}
}

func TestSender_Send_returnsAfterFirstAttempt(t *testing.T) {
	var logs logRecorder
	s := fastSender(&logs, refusedAddr(t))
	s.RetryDelay = time.Hour // the retry must not come before cancel
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := s.Send(ctx, testMsg)
	slog.New(&logs).Info("Next refresh at 2025-11-13 09:09:24 (25 minutes)")
	select {
	case <-d.Done():
		t.Fatal("Delivery done before its retries")
	default:
	}
	cancel() // mid-retry: Wait must return at once, not after an hour
	res := d.Wait()
	if res[0].Outcome != Canceled || res[0].Attempts != 1 || !errors.Is(res[0].Err, context.Canceled) {
		t.Errorf("result = %+v, want canceled after 1 attempt", res[0])
	}
	assertLines(t, logs.Lines(), []string{
		"WARN Could not send token to trading bot (attempt 1/3): connection refused; retrying in 1 hour",
		"INFO Next refresh at 2025-11-13 09:09:24 (25 minutes)",
		"INFO Stopped sending token to trading bot after 1 of 3 attempts: delivery cancelled",
	})
}

func TestSender_Send_cancelDuringAttempt(t *testing.T) {
	b := mustStartBot(t, "unix", nil)
	var logs logRecorder
	s := fastSender(&logs, b.addr)
	s.AckTimeout = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-b.accepted
		cancel()
	}()
	res := s.Send(ctx, testMsg).Wait()
	if res[0].Outcome != Canceled || res[0].Attempts != 1 {
		t.Errorf("result = %+v, want canceled during attempt 1", res[0])
	}
	assertLines(t, logs.Lines(), []string{"INFO Stopped sending token to trading bot after 1 of 3 attempts: delivery cancelled"})

	// Already cancelled: no attempt at all.
	logs = logRecorder{}
	res = s.Send(ctx, testMsg).Wait()
	if res[0].Outcome != Canceled || res[0].Attempts != 0 {
		t.Errorf("result = %+v, want canceled before any attempt", res[0])
	}
	assertLines(t, logs.Lines(), []string{"INFO Stopped sending token to trading bot after 0 of 3 attempts: delivery cancelled"})
}

func TestSender_Send_supersededByNewerToken(t *testing.T) {
	var logs logRecorder
	dead := refusedAddr(t)
	s := fastSender(&logs, dead)
	s.RetryDelay = time.Hour
	s.Attempts = 2
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	older := s.Send(ctx, testMsg)
	newer := s.Send(ctx, tokensender.Message{AccessToken: "newer", RefreshToken: "r", ExpiresAt: 2})
	res := older.Wait()
	if res[0].Outcome != Canceled || res[0].Attempts != 1 || res[0].Err == nil || res[0].Err.Error() != "a newer token replaced it" {
		t.Errorf("older result = %+v, want canceled because a newer token replaced it", res[0])
	}
	select {
	case <-newer.Done():
		t.Fatal("the newer delivery was stopped too")
	default:
	}
	cancel()
	newer.Wait()
	lines := logs.Lines()
	want := "INFO Stopped sending token to trading bot after 1 of 2 attempts: a newer token replaced it"
	found := false
	for _, l := range lines {
		found = found || l == want
	}
	if !found {
		t.Errorf("log lines %q lack %q", lines, want)
	}
}

func TestSender_Send_multipleTargets(t *testing.T) {
	cAnswered := make(chan struct{})
	var once sync.Once
	// a answers only after c has answered its first attempt, so a finishes
	// last; the first-attempt lines must still come in Targets order.
	a := mustStartBot(t, "unix", func(int) string { <-cAnswered; return "OK" })
	missing := Address{"unix", filepath.Join(shortDir(t), "gone.sock")}
	c := mustStartBot(t, "tcp", func(int) string {
		defer once.Do(func() { close(cAnswered) })
		return "ERROR"
	})
	var logs logRecorder
	s := fastSender(&logs, a.addr, missing, c.addr)
	s.Attempts = 2
	d := s.Send(context.Background(), testMsg)
	res := d.Wait()

	sa, sm, sc := " ("+a.addr.Addr+")", " ("+missing.Addr+")", " (tcp://"+c.addr.Addr+")"
	assertLines(t, logs.Lines(), []string{
		"INFO Token successfully sent to trading bot" + sa,
		"WARN Bot socket not found - trading bot may not be running" + sm,
		`WARN Trading bot answered "ERROR" instead of OK (attempt 1/2); retrying in 1 ms` + sc,
		`ERROR Failed to send token to trading bot after 2 attempts: trading bot answered "ERROR" instead of OK` + sc,
	})
	want := []struct {
		addr     Address
		outcome  Outcome
		attempts int
	}{{a.addr, Delivered, 1}, {missing, NotFound, 1}, {c.addr, Failed, 2}}
	if len(res) != len(want) {
		t.Fatalf("got %d results, want %d", len(res), len(want))
	}
	for i, w := range want {
		if res[i].Target != w.addr || res[i].Outcome != w.outcome || res[i].Attempts != w.attempts {
			t.Errorf("result %d = %+v, want %v %v after %d", i, res[i], w.addr, w.outcome, w.attempts)
		}
	}
}

func TestSender_Send_noTargets(t *testing.T) {
	var logs logRecorder
	res := fastSender(&logs).Send(context.Background(), testMsg).Wait()
	if len(res) != 0 || len(logs.Lines()) != 0 {
		t.Errorf("no targets: results %v, logs %v", res, logs.Lines())
	}
}

func TestSender_Send_noLeaks(t *testing.T) {
	b := mustStartBot(t, "unix", nil)
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skipf("cannot count fds: %v", err)
		}
		return len(ents)
	}
	settled := func(what string, count func() int, limit int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for count() > limit {
			if time.Now().After(deadline) {
				t.Fatalf("%s did not settle: %d, started with %d", what, count(), limit)
			}
			runtime.Gosched()
			time.Sleep(5 * time.Millisecond) // polling for settle, not waiting for a timer
		}
	}
	startG, startFD := runtime.NumGoroutine(), fds()

	const n = 25
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			s := &Sender{Targets: []Address{b.addr}, AckTimeout: 20 * time.Millisecond, RetryDelay: time.Millisecond, Attempts: 2}
			if res := s.Send(context.Background(), testMsg).Wait(); res[0].Outcome != Failed {
				t.Errorf("result = %+v, want Failed", res[0])
			}
		})
	}
	wg.Wait()
	if got := len(b.accepted); got != 2*n {
		t.Errorf("hung bot accepted %d connections, want %d", got, 2*n)
	}
	b.releaseHeld() // the bot's ends of the connections are not ours to count
	settled("goroutines", runtime.NumGoroutine, startG)
	settled("open fds", fds, startFD)
}

func TestOutcome_String(t *testing.T) {
	for o, want := range map[Outcome]string{Delivered: "delivered", DeliveredNoAck: "delivered without acknowledgment",
		NotFound: "not found", Failed: "failed", Canceled: "canceled", Withheld: "withheld", Outcome(6): "Outcome(6)", Outcome(-1): "Outcome(-1)"} {
		if got := o.String(); got != want {
			t.Errorf("Outcome(%d).String() = %q, want %q", int(o), got, want)
		}
	}
}

func TestSender_config(t *testing.T) {
	c := (&Sender{}).config()
	if c.dialTimeout != 5*time.Second || c.ackTimeout != 5*time.Second || c.retryDelay != 5*time.Second || c.attempts != 3 || c.logger == nil {
		t.Errorf("defaults = %+v", c)
	}
	c = (&Sender{RetryDelay: -1, Attempts: 1}).config()
	if c.retryDelay != 0 || c.attempts != 1 {
		t.Errorf("RetryDelay -1, Attempts 1 gave %+v", c)
	}
}

// The protocol's limit is 8192 bytes: a message of exactly that size is
// sent, one byte more is refused before connecting, in one ERROR line
// without token text.
func TestSender_Send_messageSizeLimit(t *testing.T) {
	sized := func(n int) tokensender.Message {
		m := tokensender.Message{AccessToken: "SECRET", RefreshToken: testMsg.RefreshToken, ExpiresAt: testMsg.ExpiresAt}
		m.AccessToken += strings.Repeat("x", n-len(m.Wire()))
		if len(m.Wire()) != n {
			t.Fatalf("built a %d-byte message, want %d", len(m.Wire()), n)
		}
		return m
	}
	b := mustStartBot(t, "unix", always("OK"))
	var logs logRecorder
	s := fastSender(&logs, b.addr, b.addr)

	res := s.Send(context.Background(), sized(MaxMessageSize)).Wait()
	if res[0].Outcome != Delivered || res[1].Outcome != Delivered {
		t.Fatalf("8192 bytes: results %+v, want delivered", res)
	}
	b.waitConns(t, 2)
	if got := b.received(); len(got[0]) != MaxMessageSize {
		t.Errorf("the bot got %d bytes, want %d", len(got[0]), MaxMessageSize)
	}

	logs = logRecorder{}
	res = s.Send(context.Background(), sized(MaxMessageSize+1)).Wait()
	for _, r := range res {
		if r.Outcome != Failed || r.Attempts != 0 || r.Err == nil {
			t.Errorf("8193 bytes: result %+v, want failed before any attempt", r)
		}
	}
	suffix := " (" + b.addr.Addr + ")"
	line := "ERROR Not sending token to trading bot: the message is 8193 bytes, over the protocol's limit of 8192 bytes; a token that long is not a real Schwab token" + suffix
	assertLines(t, logs.Lines(), []string{line, line})
	if n := len(b.accepted); n != 2 {
		t.Errorf("the bot saw %d connections, want only the 2 of the 8192-byte message", n)
	}
}

// Deliver is the refresh loop's view: it returns after the first attempts,
// wait returns after the retries, and OnResults sees the final results once
// per Deliver, before wait returns. Send does not call OnResults.
func TestSender_Deliver(t *testing.T) {
	ok := mustStartBot(t, "unix", always("OK"))
	refused := refusedAddr(t)
	var logs logRecorder
	s := fastSender(&logs, ok.addr, refused)
	s.Attempts = 2
	var calls [][]Result
	s.OnResults = func(r []Result) { calls = append(calls, r) }

	wait := s.Deliver(context.Background(), testMsg)
	wait()
	if len(calls) != 1 {
		t.Fatalf("OnResults called %d times, want once before wait returned", len(calls))
	}
	got := calls[0]
	if len(got) != 2 || got[0].Target != ok.addr || got[0].Outcome != Delivered || got[1].Target != refused || got[1].Outcome != Failed || got[1].Attempts != 2 {
		t.Errorf("OnResults got %+v, want delivered, then failed after 2 attempts", got)
	}
	wait() // waiting again returns at once and reports nothing new
	if len(calls) != 1 {
		t.Errorf("OnResults called %d times after a second wait, want 1", len(calls))
	}

	s.Send(context.Background(), testMsg).Wait()
	if len(calls) != 1 {
		t.Errorf("Send called OnResults")
	}
	s.OnResults = nil
	s.Deliver(context.Background(), testMsg)() // no OnResults: no panic
}

// Deliver returns before the retries; wait does not.
func TestSender_Deliver_waitCoversRetries(t *testing.T) {
	var logs logRecorder
	s := fastSender(&logs, refusedAddr(t))
	s.RetryDelay = time.Hour
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	reported := make(chan []Result, 1)
	s.OnResults = func(r []Result) { reported <- r }
	wait := s.Deliver(ctx, testMsg)
	select {
	case <-reported:
		t.Fatal("results reported before the retries ended")
	default:
	}
	// The caller's own reason for cancelling is what the INFO line says.
	cancel(errors.New("a newer token replaced it"))
	wait()
	if r := <-reported; r[0].Outcome != Canceled || r[0].Attempts != 1 {
		t.Errorf("result %+v, want canceled after 1 attempt", r[0])
	}
	assertLines(t, logs.Lines(), []string{
		"WARN Could not send token to trading bot (attempt 1/3): connection refused; retrying in 1 hour",
		"INFO Stopped sending token to trading bot after 1 of 3 attempts: a newer token replaced it",
	})
}

// An answer repeating 12 bytes of either token is withheld from the log;
// 11 bytes are not enough to tell.
func TestTargetRun_sanitize(t *testing.T) {
	tr := &targetRun{msg: testMsg}
	const withheld = "(answer withheld: it repeats part of the token)"
	for _, tt := range []struct{ answer, want string }{
		{testMsg.AccessToken[3:15], withheld},
		{testMsg.RefreshToken[len(testMsg.RefreshToken)-12:], withheld},
		{"x" + testMsg.RefreshToken[:12], withheld},
		{testMsg.AccessToken[3:14], testMsg.AccessToken[3:14]},
		{"ERROR: ~ok~", "ERROR: ~ok~"},
	} {
		if got := tr.sanitize([]byte(tt.answer)); got != tt.want {
			t.Errorf("sanitize(%q) = %q, want %q", tt.answer, got, tt.want)
		}
	}
}
