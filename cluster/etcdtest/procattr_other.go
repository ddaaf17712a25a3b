//go:build !linux

package etcdtest

import "syscall"

// dieWithParent: only Linux can tie a child's life to its parent; elsewhere
// the members are stopped by the test's cleanup alone.
func dieWithParent() *syscall.SysProcAttr { return nil }
