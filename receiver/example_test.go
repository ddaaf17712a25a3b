package receiver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/schwabtools/token-refresh-sender/receiver"
)

// A bot listens on a socket; token-refresh-sender connects, writes one JSON
// message, half-closes and reads the answer.
func Example() {
	dir, err := os.MkdirTemp("", "trs")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "bot.sock")

	r := &receiver.Receiver{
		Addr:     sock, // "" would be /tmp/bigbrother_token.sock
		OnReject: func(err error) { fmt.Println("rejected:", err) },
		OnError:  func(err error) { fmt.Println("error:", err) },
		Now:      func() time.Time { return time.Unix(1762983055, 0) }, // a fixed clock for the example
	}
	if err := r.Listen(); err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- r.Serve(ctx) }()

	// What token-refresh-sender does for every new token.
	c, err := net.Dial("unix", sock)
	if err != nil {
		fmt.Println(err)
		return
	}
	io.WriteString(c, `{"access_token": "I0.example-access@", "refresh_token": "example-refresh@", "expires_at": 1762984855}`)
	c.(*net.UnixConn).CloseWrite()
	answer, _ := io.ReadAll(c)
	c.Close()

	fmt.Printf("answer: %s\n", answer)
	if string(answer) != "OK" {
		return
	}
	// The bot's token loop: Wait returns the first token, then each newer one.
	waitCtx, stopWaiting := context.WithTimeout(ctx, time.Minute)
	defer stopWaiting()
	t, err := r.Wait(waitCtx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("token:", t) // redacted
	fmt.Println("expires at:", t.ExpiresAt.UTC())

	cancel()
	fmt.Println("Serve returned:", <-served)
	_, err = os.Lstat(sock)
	fmt.Println("socket file removed:", errors.Is(err, fs.ErrNotExist))
	// Output:
	// answer: OK
	// token: receiver.Token{access I0.e..., refresh exam..., expires 2025-11-12T22:00:55Z}
	// expires at: 2025-11-12 22:00:55 +0000 UTC
	// Serve returned: <nil>
	// socket file removed: true
}

func ExampleParseMessage() {
	now := time.Unix(1762983055, 0)
	for _, msg := range []string{
		`{"access_token": "I0.abc@", "refresh_token": "xyz@", "expires_at": 1762984855}`,
		`{"access_token": "I0.abc@", "refresh_token": "xyz@", "expires_at": 1762980000}`,
		`{"access_token": "I0.abc@", "expires_at": 1762984855}`,
		`{"access_token": "I0.abc@", "refresh_token": "xyz@", "expires_at": "1762984855"}`,
		`{"access_token": "I0.abc@", "refresh_tok`,
	} {
		t, err := receiver.ParseMessage([]byte(msg), now)
		switch {
		case errors.Is(err, receiver.ErrExpired):
			fmt.Println("expired:", err)
		case err != nil:
			fmt.Println("invalid:", err)
		default:
			fmt.Println("valid until", t.ExpiresAt.UTC().Format(time.RFC3339))
		}
	}
	// Output:
	// valid until 2025-11-12T22:00:55Z
	// expired: token expired: expires_at 2025-11-12T20:40:00Z is not after now (2025-11-12T21:30:55Z)
	// invalid: invalid token message: field "refresh_token" is missing
	// invalid: invalid token message: field "expires_at" must be Unix seconds, not string
	// invalid: invalid token message: not valid JSON: it ends early (truncated?)
}
