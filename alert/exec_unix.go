//go:build unix

package alert

import (
	"os/exec"
	"syscall"
)

// killGroup makes cmd run in a process group of its own and kills the whole
// group when its context ends, so `sh -c "curl ...; sleep 100"` leaves
// nothing behind.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
