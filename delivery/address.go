package delivery

import (
	"fmt"

	"github.com/schwabtools/token-refresh-sender/internal/sockaddr"
)

// MaxUnixPathLen is the longest Unix socket path Linux accepts: sun_path
// holds 108 bytes including the terminating NUL.
const MaxUnixPathLen = sockaddr.MaxUnixPathLen

// Address is one place a trading bot listens for tokens: a Unix socket path
// (Network "unix") or a loopback TCP address (Network "tcp", Addr
// "127.0.0.1:9999"). Build it with ParseAddress.
type Address struct {
	Network string // "unix" or "tcp"
	Addr    string // socket path, or host:port for net.Dial
}

// String returns the address as a --socket value: the socket path, or
// "tcp://HOST:PORT" (localhost written as 127.0.0.1).
func (a Address) String() string {
	if a.Network == "tcp" {
		return "tcp://" + a.Addr
	}
	return a.Addr
}

// AddressError reports a --socket value ParseAddress refused. Input is the
// value as given, Reason says what is wrong and how to fix it.
type AddressError struct {
	Input  string
	Reason string
}

func (e *AddressError) Error() string {
	return fmt.Sprintf("--socket %q: %s", e.Input, e.Reason)
}

// ParseAddress parses a --socket value by the rules of sockaddr.Parse: a
// Unix socket path (absolute or relative, at most 107 bytes), or
// tcp://HOST:PORT where HOST is a loopback IP (127.0.0.0/8, or [::1] in
// brackets) or localhost and PORT is 1..65535. Anything that would send
// tokens off this machine is refused. localhost stands for 127.0.0.1 only,
// whatever /etc/hosts says: were it also ::1, a user who took the port there
// would be tried too.
func ParseAddress(s string) (Address, error) {
	network, addr, err := sockaddr.Parse(s, false)
	if err != nil {
		return Address{}, &AddressError{Input: s, Reason: err.Error()}
	}
	return Address{Network: network, Addr: addr}, nil
}
