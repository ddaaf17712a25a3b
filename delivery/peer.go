package delivery

import (
	"fmt"
	"net"
	"os"
	"slices"
)

// peerLookup finds who listens on the far end of a connection. The zero
// value uses the kernel (SO_PEERCRED, sock_diag); tests inject fakes so the
// rule is checked without a second user.
type peerLookup struct {
	unixUID func(*net.UnixConn) (int, error) // uid of the process that listens on the Unix socket
	tcpUID  func(*net.TCPConn) (int, error)  // uid owning the TCP socket the connection reached
	selfUID func() int                       // this process's uid
}

// withDefaults fills in the kernel lookups for nil fields.
func (l peerLookup) withDefaults() peerLookup {
	if l.unixUID == nil {
		l.unixUID = unixPeerUID
	}
	if l.tcpUID == nil {
		l.tcpUID = tcpOwnerUID
	}
	if l.selfUID == nil {
		l.selfUID = os.Getuid
	}
	return l
}

// checkPeer refuses peers whose uid may not receive tokens: anyone can
// create /tmp/bigbrother_token.sock or bind a loopback port first, so the
// listening socket must belong to this user, root, or a uid the operator
// allowed. It runs on the connected socket, before anything is written.
func (t *targetRun) checkPeer(conn net.Conn) error {
	var uid int
	var err error
	switch c := conn.(type) {
	case *net.UnixConn:
		if uid, err = t.cfg.lookup.unixUID(c); err != nil {
			return fmt.Errorf("cannot read the listening process's credentials: %w", err)
		}
	case *net.TCPConn:
		if uid, err = t.cfg.lookup.tcpUID(c); err != nil {
			return fmt.Errorf("cannot find which user owns the listening socket: %w", err)
		}
	default:
		return fmt.Errorf("cannot check who listens on a %T connection", conn)
	}
	return peerAllowed(uid, t.cfg.lookup.selfUID(), t.cfg.allowedUIDs)
}

// peerAllowed is the rule: the peer runs as us, as root, or as an allowed
// uid. The error is the reason to log.
func peerAllowed(uid, self int, allowed []int) error {
	if uid == self || uid == 0 || slices.Contains(allowed, uid) {
		return nil
	}
	return fmt.Errorf("the process listening there runs as uid %d, not as this user (uid %d) or root; if it is your bot, pass --allow-peer-uid %d", uid, self, uid)
}
