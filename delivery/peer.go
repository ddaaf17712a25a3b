package delivery

import (
	"fmt"
	"net"
	"os"
	"slices"

	"golang.org/x/sys/unix"
)

// checkPeer refuses Unix-socket peers whose uid may not receive tokens:
// anyone can create /tmp/bigbrother_token.sock first, so the listening
// process must run as this user, root, or a uid the operator allowed.
// TCP peers are not checked (loopback only; the kernel does not say who
// listens).
func (t *targetRun) checkPeer(conn net.Conn) error {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return nil
	}
	uid, err := peerUID(uc)
	if err != nil {
		return fmt.Errorf("cannot read the listening process's credentials: %w", err)
	}
	self := os.Getuid()
	if uid == self || uid == 0 || slices.Contains(t.cfg.allowedUIDs, uid) {
		return nil
	}
	return fmt.Errorf("the process listening there runs as uid %d, not as this user (uid %d) or root; if it is your bot, pass --allow-peer-uid %d", uid, self, uid)
}

// peerUID reads SO_PEERCRED: the uid of the process that created the
// listening socket.
func peerUID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if credErr != nil {
		return 0, credErr
	}
	return int(cred.Uid), nil
}
