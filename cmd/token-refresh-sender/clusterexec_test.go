package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
