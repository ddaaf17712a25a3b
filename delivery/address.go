package delivery

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// MaxUnixPathLen is the longest Unix socket path Linux accepts: sun_path
// holds 108 bytes including the terminating NUL.
const MaxUnixPathLen = 107

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

// ParseAddress parses a --socket value: a Unix socket path (absolute or
// relative, at most 107 bytes), or tcp://HOST:PORT where HOST is a loopback IP
// (127.0.0.0/8, or [::1] in brackets) or localhost and PORT is 1..65535.
// Anything that would send tokens off this machine is refused. localhost
// stands for 127.0.0.1 only, whatever /etc/hosts says: were it also ::1, a
// user who took the port there would be tried too.
func ParseAddress(s string) (Address, error) {
	bad := func(format string, args ...any) (Address, error) {
		return Address{}, &AddressError{Input: s, Reason: fmt.Sprintf(format, args...)}
	}
	if s == "" {
		return bad("empty; give a Unix socket path such as /tmp/bigbrother_token.sock, or tcp://127.0.0.1:PORT")
	}
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		switch strings.ToLower(scheme) {
		case "tcp":
			return parseTCP(s, rest)
		case "unix":
			return bad("write a Unix socket as a plain path, without unix:// (for example %s)", rest)
		default:
			return bad("unsupported scheme %q; use a Unix socket path, or tcp://127.0.0.1:PORT", scheme)
		}
	}
	if strings.IndexByte(s, 0) >= 0 {
		return bad("a socket path cannot contain a NUL byte")
	}
	if strings.HasPrefix(s, "@") {
		return bad("abstract Unix sockets (@name) are not supported; use a filesystem path")
	}
	if len(s) > MaxUnixPathLen {
		return bad("Unix socket paths are limited to %d bytes, this one has %d; use a shorter path", MaxUnixPathLen, len(s))
	}
	if host, port, err := net.SplitHostPort(s); err == nil && !strings.Contains(s, "/") {
		if _, err := strconv.ParseUint(port, 10, 16); err == nil {
			return bad("looks like a TCP address; write tcp://%s to use TCP, or ./%s for a socket file of that name", net.JoinHostPort(host, port), s)
		}
	}
	return Address{Network: "unix", Addr: s}, nil
}

// parseTCP checks the part after "tcp://".
func parseTCP(input, hostport string) (Address, error) {
	bad := func(format string, args ...any) (Address, error) {
		return Address{}, &AddressError{Input: input, Reason: fmt.Sprintf(format, args...)}
	}
	const loopbackOnly = "only loopback addresses are allowed (127.0.0.1, [::1] or localhost): tokens must not leave this machine"
	if strings.ContainsAny(hostport, "/?#@") {
		return bad("expected tcp://HOST:PORT with nothing after the port")
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return bad("expected tcp://HOST:PORT, for example tcp://127.0.0.1:9999 (IPv6 in brackets: tcp://[::1]:9999)")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 || port[0] == '+' {
		return bad("port %q must be a number from 1 to 65535", port)
	}
	if strings.EqualFold(host, "localhost") {
		host = "127.0.0.1"
	} else {
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.IsLoopback() || ip.Zone() != "" {
			return bad("%s", loopbackOnly)
		}
		if ip.Is6() && !strings.HasPrefix(hostport, "[") {
			return bad("put IPv6 addresses in brackets: tcp://[%s]:%s", host, port)
		}
		host = ip.String()
	}
	return Address{Network: "tcp", Addr: net.JoinHostPort(host, strconv.FormatUint(n, 10))}, nil
}
