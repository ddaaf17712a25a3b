package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/schwabtools/token-refresh-sender/internal/testproc"
)

// The default build links no etcd client: cluster mode's cost (about
// 0.9 MB of private memory at start, 6 MB of binary) is paid only by
// token-refresh-sender-cluster.
func TestDefaultBuild_linksNoEtcdClient(t *testing.T) {
	for _, tc := range []struct {
		bin  string
		want bool
	}{
		{binary, false},
		{filepath.Join(filepath.Dir(binary), "token-refresh-sender-cluster"), true},
	} {
		out, err := exec.Command("go", "version", "-m", tc.bin).CombinedOutput()
		if err != nil {
			t.Fatalf("go version -m %s: %v\n%s", tc.bin, err, out)
		}
		if got := strings.Contains(string(out), "go.etcd.io/etcd/client/v3"); got != tc.want {
			t.Errorf("%s links go.etcd.io/etcd/client/v3: %v, want %v", filepath.Base(tc.bin), got, tc.want)
		}
	}
}

// Without token-refresh-sender-cluster next to it, the default build
// refuses --etcd-endpoints with one line saying how to get cluster mode,
// and touches nothing.
func TestDefaultBuild_clusterModeWithoutClusterBinary(t *testing.T) {
	s := newSandbox(t)
	before := snap(t, s.tokenFile)
	alone := filepath.Join(t.TempDir(), "token-refresh-sender")
	data, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(alone, data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"run", "login", "status"} {
		args := s.args(cmd, "--etcd-endpoints", "http://127.0.0.1:2379", "--socket", filepath.Join(s.dir, "bot.sock"))
		_, errOut, code := runBinaryToEnd(t, alone, nil, args...)
		want := 2
		if cmd == "status" {
			want = 3
		}
		if code != want || strings.Count(errOut, "\n") != 1 ||
			!strings.Contains(errOut, filepath.Join(filepath.Dir(alone), "token-refresh-sender-cluster")+" does not exist") ||
			!strings.Contains(errOut, "go build -tags cluster") {
			t.Errorf("%s: exit %d, want %d and one line naming the missing cluster binary:\n%s", cmd, code, want, errOut)
		}
	}
	before.assertUnchanged(t)
}

// Another user (uid 65534) who can write to the directory the program is
// installed in plants a token-refresh-sender-cluster there: the hand-over
// refuses to run it, in one line, and the planted program never runs.
func TestDefaultBuild_plantedClusterBinaryIsRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to act the other user as uid 65534")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("setpriv (util-linux) not found, and CI is set")
		}
		t.Skip("setpriv (util-linux) not found")
	}
	s := newSandbox(t)
	dir := testproc.ShortDir(t) // in /tmp, which uid 65534 can reach
	if err := os.Chmod(dir, 0o1777); err != nil {
		t.Fatal(err)
	}
	self := filepath.Join(dir, "token-refresh-sender")
	data, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(self, data, 0o755); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "planted-ran")
	plant := "printf '#!/bin/sh\\ntouch " + marker + "\\n' > " + filepath.Join(dir, "token-refresh-sender-cluster") +
		" && chmod 755 " + filepath.Join(dir, "token-refresh-sender-cluster")
	if out, err := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", plant).CombinedOutput(); err != nil {
		t.Fatalf("planting as uid 65534: %v\n%s", err, out)
	}
	args := s.args("run", "--etcd-endpoints", "http://127.0.0.1:2379", "--socket", filepath.Join(s.dir, "bot.sock"))
	_, errOut, code := runBinaryToEnd(t, self, nil, args...)
	if code != 2 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "belongs to uid 65534") {
		t.Errorf("exit %d, want 2 and one line refusing the planted binary:\n%s", code, errOut)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the planted cluster binary ran")
	}
}
