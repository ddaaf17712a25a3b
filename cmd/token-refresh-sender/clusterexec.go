package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// clusterBinaryName is the build of this program with cluster mode in it
// (go build -tags cluster). The default build leaves etcd's client out,
// because merely linking it costs every single-host daemon about 0.9 MB of
// private memory at start; the release archives and packages install both
// binaries side by side, and the default one hands any command with
// --etcd-endpoints to this one (execClusterBinary).
const clusterBinaryName = "token-refresh-sender-cluster"

// execClusterBinary replaces this process with clusterBinaryName from this
// executable's own directory (never from $PATH), with the same arguments
// and environment. The pid stays the same, so systemd's supervision and
// the pid file are unaffected. It returns only on failure, with a usage
// error saying what to install.
func execClusterBinary(args []string) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cluster mode: cannot locate this executable to find %s next to it: %w", clusterBinaryName, err)
	}
	path := filepath.Join(filepath.Dir(self), clusterBinaryName)
	if _, err := os.Stat(path); err != nil {
		return usage(errNoCluster(path, err))
	}
	err = syscall.Exec(path, append([]string{path}, args...), os.Environ())
	return fmt.Errorf("cluster mode: run %s: %w", path, err)
}

// errNoCluster says that cluster mode is not in this binary and how to get
// it.
func errNoCluster(path string, cause error) error {
	why := "this binary is built without cluster mode"
	if errors.Is(cause, os.ErrNotExist) {
		why += " and " + path + " does not exist"
	} else if cause != nil {
		why += " and " + cause.Error()
	}
	return fmt.Errorf("--etcd-endpoints: %s; install the release package or archive, which has both binaries, or build it with: go build -tags cluster -o %s ./cmd/token-refresh-sender", why, path)
}
