package delivery

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	tokensender "github.com/schwabtools/token-refresh-sender"
	"github.com/schwabtools/token-refresh-sender/receiver"
)

// mustServeReceiver runs a receiver.Receiver until the test ends.
func mustServeReceiver(tb testing.TB, r *receiver.Receiver) Address {
	tb.Helper()
	if err := r.Listen(); err != nil {
		tb.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Serve: %v", err)
		}
	})
	addr, err := ParseAddress(r.BoundAddr())
	if err != nil {
		tb.Fatalf("BoundAddr %q does not parse: %v", r.BoundAddr(), err)
	}
	return addr
}

// TestSender_Deliver_toReceiver runs the real sender against the real
// receiver over both transports.
func TestSender_Send_toReceiver(t *testing.T) {
	now := time.Unix(1762983055, 0)
	for _, network := range []string{"unix", "tcp"} {
		t.Run(network, func(t *testing.T) {
			var mu sync.Mutex
			var errs []error
			addr := "tcp://127.0.0.1:0"
			if network == "unix" {
				addr = filepath.Join(shortDir(t), "bot.sock")
			}
			r := &receiver.Receiver{
				Addr:    addr,
				Now:     func() time.Time { return now },
				OnError: func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() },
			}
			target := mustServeReceiver(t, r)

			var logs logRecorder
			s := fastSender(&logs, target)
			s.Attempts = 2
			res := s.Send(context.Background(), testMsg).Wait()
			if res[0].Outcome != Delivered || res[0].Attempts != 1 {
				t.Fatalf("result = %+v, want delivered at once", res[0])
			}
			got, ok := r.Latest()
			want := receiver.Token{AccessToken: testMsg.AccessToken, RefreshToken: testMsg.RefreshToken, ExpiresAt: time.Unix(testMsg.ExpiresAt, 0)}
			if !ok || got != want {
				t.Errorf("receiver holds %+v, %v; want %+v", got, ok, want)
			}

			// An expired token is refused; the sender retries, then gives up
			// and says why, in the receiver's words.
			expired := tokensender.Message{AccessToken: "SECRET-old", RefreshToken: "SECRET-r", ExpiresAt: now.Unix() - 60}
			res = s.Send(context.Background(), expired).Wait()
			if res[0].Outcome != Failed || res[0].Attempts != 2 {
				t.Fatalf("expired token: result = %+v, want failed after 2 attempts", res[0])
			}
			assertLines(t, logs.Lines(), []string{
				"INFO Token successfully sent to trading bot",
				`WARN Trading bot answered "ERROR: token expired at 2025-11-12T21:29:55Z" instead of OK (attempt 1/2); retrying in 1 ms`,
				`ERROR Failed to send token to trading bot after 2 attempts: trading bot answered "ERROR: token expired at 2025-11-12T21:29:55Z" instead of OK`,
			})
			if got, _ := r.Latest(); got != want {
				t.Errorf("expired token replaced the good one: %+v", got)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(errs) != 2 || !errors.Is(errs[0], receiver.ErrExpired) {
				t.Errorf("receiver errors = %v, want two ErrExpired", errs)
			}
		})
	}
}

// A receiver and the sender agree on what a socket address is.
func TestParseAddress_receiverAgrees(t *testing.T) {
	for _, in := range []string{"tcp://127.0.0.1:0", "tcp://localhost:0", "tcp://[::1]:0"} {
		r := &receiver.Receiver{Addr: in}
		if err := r.Listen(); err != nil {
			if in == "tcp://[::1]:0" {
				t.Logf("no IPv6 loopback here: %v", err)
				continue
			}
			t.Fatalf("Listen(%q): %v", in, err)
		}
		bound := r.BoundAddr()
		r.Close()
		if _, err := ParseAddress(bound); err != nil {
			t.Errorf("receiver bound %q, which ParseAddress refuses: %v", bound, err)
		}
	}
	// An empty address: --socket "" is refused, while a receiver's zero
	// Addr means the default socket (not bound here: real bots use it).
	if _, err := ParseAddress(""); err == nil {
		t.Error(`ParseAddress("") accepted`)
	}
	for _, in := range []string{"tcp://10.0.0.5:9999", "tcp://0.0.0.0:1", "http://127.0.0.1:1"} {
		if _, err := ParseAddress(in); err == nil {
			t.Errorf("ParseAddress(%q) accepted", in)
		}
		if err := (&receiver.Receiver{Addr: in}).Listen(); err == nil {
			t.Errorf("receiver Listen(%q) accepted", in)
		}
	}
}

// BenchmarkSender_Deliver measures one delivery to the reference receiver
// over a Unix socket: connect, send, half-close, wait for OK.
func BenchmarkSender_Send(b *testing.B) {
	addr := mustServeReceiver(b, &receiver.Receiver{Addr: filepath.Join(shortDir(b), "bot.sock")})
	s := &Sender{Targets: []Address{addr}}
	msg := tokensender.Message{AccessToken: "I0.bench-access-token@", RefreshToken: "bench-refresh-token@", ExpiresAt: time.Now().Add(time.Hour).Unix()}
	b.ReportAllocs()
	for b.Loop() {
		if r := s.Send(context.Background(), msg).Wait(); r[0].Outcome != Delivered {
			b.Fatalf("outcome %v: %v", r[0].Outcome, r[0].Err)
		}
	}
}
