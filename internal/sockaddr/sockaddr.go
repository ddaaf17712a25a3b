// Package sockaddr parses the address a token travels over: a Unix socket
// path, or tcp://HOST:PORT on a loopback address. The sender's --socket
// values (package delivery) and the public receiver's Addr follow the same
// rules, so an address one accepts the other accepts too. It imports the
// standard library only, so the receiver may use it.
package sockaddr

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

// Parse checks s: a Unix socket path (absolute or relative, at most 107
// bytes), or tcp://HOST:PORT where HOST is a loopback IP (127.0.0.0/8, or
// [::1] in brackets) or localhost and PORT is 1..65535 (0 too when listen
// is true: the listener picks a free port). Anything that would send tokens
// off this machine is refused. localhost stands for 127.0.0.1 only, whatever
// /etc/hosts says: were it also ::1, a user who took the port there would be
// tried too.
//
// network is "unix" or "tcp"; addr is the path, or host:port for net.Dial
// and net.Listen. The error's text says what is wrong and how to fix it; it
// does not repeat s, which the caller names in its own words.
func Parse(s string, listen bool) (network, addr string, err error) {
	bad := func(format string, args ...any) (string, string, error) {
		return "", "", fmt.Errorf(format, args...)
	}
	if s == "" {
		return bad("empty; give a Unix socket path such as /tmp/bigbrother_token.sock, or tcp://127.0.0.1:PORT")
	}
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		switch strings.ToLower(scheme) {
		case "tcp":
			return parseTCP(rest, listen)
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
	return "unix", s, nil
}

// parseTCP checks the part after "tcp://".
func parseTCP(hostport string, listen bool) (network, addr string, err error) {
	bad := func(format string, args ...any) (string, string, error) {
		return "", "", fmt.Errorf(format, args...)
	}
	const loopbackOnly = "only loopback addresses are allowed (127.0.0.1, [::1] or localhost): tokens must not leave this machine"
	if strings.ContainsAny(hostport, "/?#@") {
		return bad("expected tcp://HOST:PORT with nothing after the port")
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return bad("expected tcp://HOST:PORT, for example tcp://127.0.0.1:9999 (IPv6 in brackets: tcp://[::1]:9999)")
	}
	lowest := uint64(1)
	if listen {
		lowest = 0
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n < lowest || port[0] == '+' {
		return bad("port %q must be a number from %d to 65535", port, lowest)
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
	return "tcp", net.JoinHostPort(host, strconv.FormatUint(n, 10)), nil
}
