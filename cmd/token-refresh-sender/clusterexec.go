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
	fi, err := os.Stat(path)
	if err != nil {
		return usage(errNoCluster(path, err))
	}
	if err := trustedBinary(path, fi, os.Getuid()); err != nil {
		return usage(err)
	}
	err = syscall.Exec(path, append([]string{path}, args...), os.Environ())
	return fmt.Errorf("cluster mode: run %s: %w", path, err)
}

// trustedBinary refuses to run a cluster binary that another user could
// have put there: it must be a regular file owned by root or by uid (this
// process's user) and writable by nobody else: it will hold the tokens,
// and the etcd password is in its environment.
func trustedBinary(path string, fi os.FileInfo, uid int) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.Mode().IsRegular():
		return fmt.Errorf("cluster mode: %s is not a regular file; reinstall the package", path)
	case !ok:
		return nil // no owner to check on this platform
	case st.Uid != 0 && int(st.Uid) != uid:
		return fmt.Errorf("cluster mode: %s belongs to uid %d, not to root or to you (uid %d); refusing to run it: reinstall the package", path, st.Uid, uid)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("cluster mode: %s is writable by other users (mode %04o); refusing to run it: chmod go-w %s", path, fi.Mode().Perm(), path)
	}
	return nil
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
