package alert_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/schwabtools/token-refresh-sender/alert"
)

// TestNotifier_Notify_killsProcessGroup checks that a hook's background
// children die with it at the timeout, not only the shell.
func TestNotifier_Notify_killsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	log, logs := newLogger(t)
	n := &alert.Notifier{
		Exec:    "sleep 60 & echo $! > " + shellQuote(pidFile) + "; wait",
		Timeout: 300 * time.Millisecond,
		Logger:  log,
	}
	n.Notify(alert.Notification{Event: alert.EventRecovered})
	mustClose(t, n)
	if !strings.Contains(logs.String(), "timed out after 300 ms") {
		t.Fatalf("hook did not time out:\n%s", logs)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("hook did not record its child: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return // already gone
	}
	if err != nil {
		t.Skipf("pidfd_open: %v", err)
	}
	defer unix.Close(fd)
	// A pidfd becomes readable when the process exits.
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 10_000)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		if n == 0 {
			_ = unix.Kill(pid, unix.SIGKILL)
			t.Fatalf("the hook's child %d still runs 10 s after the hook was killed", pid)
		}
		return
	}
}
