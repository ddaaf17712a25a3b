//go:build linux || darwin

package delivery

import "syscall"

// peerCredUID runs getUID, the platform's peer-credential getsockopt, on
// c's descriptor: the uid of the process that created the listening socket.
func peerCredUID(c syscall.Conn, getUID func(fd int) (uint32, error)) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var uid uint32
	var getErr error
	if err := raw.Control(func(fd uintptr) { uid, getErr = getUID(int(fd)) }); err != nil {
		return 0, err
	}
	if getErr != nil {
		return 0, getErr
	}
	return int(uid), nil
}
