package oserr_test

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/schwabtools/token-refresh-sender/internal/oserr"
)

func TestCause(t *testing.T) {
	plain := errors.New("something odd")
	timeout := &net.OpError{Op: "read", Net: "unix", Err: os.ErrDeadlineExceeded}
	for _, tc := range []struct {
		name string
		err  error
		want error
		text string
	}{
		{"nil", nil, nil, ""},
		{"plain error unchanged", plain, plain, "something odd"},
		{"path error", &fs.PathError{Op: "open", Path: "/etc/x", Err: syscall.EACCES}, syscall.EACCES, "permission denied"},
		{"path error, not errno", &fs.PathError{Op: "open", Path: "/x", Err: plain}, plain, "something odd"},
		{"wrapped path error", fmt.Errorf("load: %w", &fs.PathError{Op: "read", Path: "/x", Err: syscall.EIO}), syscall.EIO, "input/output error"},
		{"link error", &os.LinkError{Op: "rename", Old: "/a", New: "/b", Err: syscall.EXDEV}, syscall.EXDEV, "invalid cross-device link"},
		{"link error, not errno", &os.LinkError{Op: "rename", Old: "/a", New: "/b", Err: plain}, plain, "something odd"},
		{"syscall error", os.NewSyscallError("fsync", syscall.ENOSPC), syscall.ENOSPC, "no space left on device"},
		{"syscall error, not errno", os.NewSyscallError("fsync", plain), plain, "something odd"},
		{"dial error", &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, syscall.ECONNREFUSED, "connection refused"},
		{"op error, not errno", timeout, os.ErrDeadlineExceeded, "i/o timeout"},
		{"bare errno with context", fmt.Errorf("flock: %w", syscall.EWOULDBLOCK), syscall.EWOULDBLOCK, syscall.EWOULDBLOCK.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := oserr.Cause(tc.err)
			if got != tc.want {
				t.Errorf("Cause(%v) = %#v, want %#v", tc.err, got, tc.want)
			}
			if s := oserr.Reason(tc.err); s != tc.text {
				t.Errorf("Reason(%v) = %q, want %q", tc.err, s, tc.text)
			}
		})
	}
}

// The cause still matches the sentinels the whole error matched.
func TestCause_keepsSentinels(t *testing.T) {
	err := &fs.PathError{Op: "open", Path: "/x", Err: syscall.ENOENT}
	if !errors.Is(oserr.Cause(err), fs.ErrNotExist) {
		t.Error("Cause of ENOENT does not match fs.ErrNotExist")
	}
}

func TestTimeout(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"deadline", os.ErrDeadlineExceeded, true},
		{"read past its deadline", &net.OpError{Op: "read", Net: "unix", Err: os.ErrDeadlineExceeded}, true},
		{"wrapped deadline", fmt.Errorf("receive: %w", os.ErrDeadlineExceeded), true},
		{"ETIMEDOUT", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ETIMEDOUT)}, true},
		{"EAGAIN", syscall.EAGAIN, true},
		{"connection refused", &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, false},
		{"plain error", errors.New("timeout"), false},
		{"DNS timeout", &net.DNSError{Err: "x", IsTimeout: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := oserr.Timeout(tc.err); got != tc.want {
				t.Errorf("Timeout(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
