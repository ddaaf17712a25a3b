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
//	r := &receiver.Receiver{
//		Addr:    "/tmp/bigbrother_token.sock",
//		OnToken: func(t receiver.Token) { bot.SetToken(t.AccessToken, t.ExpiresAt) },
//		OnError: func(err error) { log.Print(err) },
//	}
//	if err := r.Listen(); err != nil { // bound: the sender can reach us now
//		log.Fatal(err)
//	}
//	go r.Serve(ctx) // until ctx is cancelled; removes the socket file
//
// Listen replaces a stale socket file left by a crashed process, but refuses
// to touch a socket another process still listens on, or anything that is not
// a socket. Latest returns the most recently received valid token, for bots
// that poll instead of using OnToken.
package receiver
