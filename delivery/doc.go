// Package delivery pushes each new token to the trading bot(s) over a Unix
// domain socket or a loopback TCP connection.
//
// One delivery to one bot is: connect, check who listens, write exactly
// Message.Wire(), close the write side, then wait for the answer. "OK"
// means the bot took the token. The C++ TokenReceiver module never answers;
// it just closes the connection, which counts as delivered without
// acknowledgment and is not resent. Any other answer, or a network error,
// is retried a few times. A missing socket file means the bot is not
// running: that is normal for dashboard-only setups and is not retried.
//
// Who listens: the uid of the process listening on a Unix socket
// (SO_PEERCRED on Linux, LOCAL_PEERCRED on macOS), or of the socket a
// loopback TCP connection reached (sock_diag, or /proc/net/tcp, Linux
// only; TCP targets are withheld elsewhere), must be ours, root, or one of
// Sender.AllowedPeerUIDs. Otherwise nothing is written and the delivery is
// Withheld. Messages over MaxMessageSize are never sent.
//
// Sender.Send sends to every target at once, returns as soon as each target
// has finished its first attempt (having logged those lines in target order,
// so logs are deterministic), and leaves retries running in the background;
// Delivery.Wait collects the final results. Sender.Deliver is the same for
// the refresh loop (daemon.Deliverer), reporting results to OnResults.
//
// ParseAddress validates --socket values: a socket path or tcp://HOST:PORT on
// loopback only, so tokens never leave the machine. The receiving side, for
// bots written in Go, is package receiver.
package delivery
