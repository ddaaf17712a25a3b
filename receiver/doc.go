// Package receiver is the receiving end of token-refresh-sender, for trading
// bots written in Go. The sender pushes every new Schwab access token over a
// Unix domain socket (or a loopback TCP port); a Receiver accepts those
// pushes, checks them, and hands each valid token to the bot.
//
// # Protocol
//
// One token per connection. The sender connects, writes one JSON object and
// closes its write side:
//
//	{"access_token": "...", "refresh_token": "...", "expires_at": 1762984855}
//
// expires_at is Unix seconds. The Receiver reads until end of input (at most
// MaxSize bytes, within ReadTimeout), answers "OK" if the token is valid or
// "ERROR: <reason>" if not, and closes the connection. Extra fields are
// ignored; a missing field, a field of the wrong type, an empty token or an
// expired one is rejected. Reasons never contain token text.
//
// # Usage
//
//	r := &receiver.Receiver{ // Addr "" is /tmp/bigbrother_token.sock
//		OnReject: func(err error) { log.Print("sender: ", err) },
//		OnError:  func(err error) { log.Print("receiver: ", err) },
//	}
//	if err := r.Listen(); err != nil { // bound: the sender can reach us now
//		log.Fatal(err)
//	}
//	go r.Serve(ctx) // until ctx is cancelled; removes the socket file
//	for {
//		t, err := r.Wait(ctx) // the first token, then each newer one
//		if err != nil {
//			return err // ctx ended
//		}
//		bot.SetToken(t.AccessToken, t.ExpiresAt)
//	}
//
// Instead of Wait, a bot may set OnToken (called for each token) or poll
// Latest. Listen replaces a stale socket file left by a crashed process, but
// refuses to touch a socket another process still listens on, or anything
// that is not a socket.
//
// A Token prints redacted (%v, %+v, %#v, slog): a short prefix of each
// secret only. OnReject hears the sender's mistakes (what got an "ERROR"
// answer); OnError this side's trouble (failed reads, accept errors).
// The package imports the standard library and this module's root package
// only.
package receiver
