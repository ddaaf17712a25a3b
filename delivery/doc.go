// Package delivery pushes each new token to the trading bot(s) over a Unix
// domain socket or a loopback TCP connection.
//
// One delivery to one bot is: connect, write exactly Message.Wire(), close the
// write side, then wait for the answer. "OK" means the bot took the token.
// The C++ TokenReceiver module never answers; it just closes the connection,
// which counts as delivered without acknowledgment and is not resent. Any
// other answer, or a network error, is retried a few times. A missing socket
// file means the bot is not running: that is normal for dashboard-only
// setups and is not retried.
//
// Sender.Deliver sends to every target at once, returns as soon as each target
// has finished its first attempt (having logged those lines in target order,
// so logs are deterministic), and leaves retries running in the background;
// Delivery.Wait collects the final results.
//
// ParseAddress validates --socket values: a socket path or tcp://HOST:PORT on
// loopback only, so tokens never leave the machine. The receiving side, for
// bots written in Go, is package receiver.
package delivery
