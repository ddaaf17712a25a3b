package etcdtest

import "syscall"

// dieWithParent has the kernel kill a member when the test process dies,
// so a crashed test leaves no etcd behind.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
