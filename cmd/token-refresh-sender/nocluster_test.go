//go:build !cluster

package main

import (
	"strings"
	"testing"
)

// Run in-process (no hand-over to token-refresh-sender-cluster), the
// default build's cluster entry points refuse with the same one line as
// when the cluster binary is missing: usage, exit 2 (status: 3).
func TestDefaultBuild_clusterEntryPointsRefuse(t *testing.T) {
	s := newWireSandbox(t)
	for cmd, want := range map[string]int{"run": 2, "login": 2, "status": 3} {
		_, errOut, code := runInProcess(t, cmd, "--etcd-endpoints", "http://127.0.0.1:2379",
			"--config", s.config, "--token-file", s.tokenFile, "--log-file", "", "--socket", s.dir+"/bot.sock")
		if code != want || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "built without cluster mode") {
			t.Errorf("%s: exit %d, want %d and the one line about the cluster build:\n%s", cmd, code, want, errOut)
		}
	}
}
