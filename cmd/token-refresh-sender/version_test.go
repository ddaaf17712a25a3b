package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestBuildStamp_String(t *testing.T) {
	platform := buildStamp{Go: "go1.26.8", OS: "linux", Arch: "amd64"}
	cases := []struct {
		name string
		s    buildStamp
		want string
	}{
		{"release", buildStamp{Version: "1.2.3", Commit: "abc1234", Date: "2026-12-02T10:00:00Z", Go: "go1.26.8", OS: "linux", Arch: "amd64"},
			"token-refresh-sender 1.2.3 (commit abc1234, built 2026-12-02T10:00:00Z, go1.26.8 linux/amd64)"},
		{"checkout", buildStamp{Version: "dev", Commit: "0123456789ab-dirty", Date: "2026-12-01T09:00:00Z", DateIsCommit: true, Go: "go1.26.8", OS: "darwin", Arch: "arm64"},
			"token-refresh-sender dev (commit 0123456789ab-dirty, committed 2026-12-01T09:00:00Z, go1.26.8 darwin/arm64)"},
		{"version only", buildStamp{Version: "v1.2.3", Go: "go1.26.8", OS: "linux", Arch: "amd64"},
			"token-refresh-sender v1.2.3 (go1.26.8 linux/amd64)"},
		{"commit without date", buildStamp{Version: "dev", Commit: "abc1234", Go: "go1.26.8", OS: "linux", Arch: "amd64"},
			"token-refresh-sender dev (commit abc1234, go1.26.8 linux/amd64)"},
		{"date without commit", buildStamp{Version: "dev", Date: "2026-12-02T10:00:00Z", Go: "go1.26.8", OS: "linux", Arch: "amd64"},
			"token-refresh-sender dev (built 2026-12-02T10:00:00Z, go1.26.8 linux/amd64)"},
		{"nothing known", platform.withBuildInfo(nil),
			"token-refresh-sender dev (go1.26.8 linux/amd64)"},
		{"cluster build", buildStamp{Version: "1.2.3", Go: "go1.26.8", OS: "linux", Arch: "amd64", Cluster: true},
			"token-refresh-sender 1.2.3 (go1.26.8 linux/amd64, with cluster mode)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.s.String(); got != c.want {
				t.Errorf("String()\n got %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestBuildStamp_WithBuildInfo(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{
			{Key: "-trimpath", Value: "true"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: rev},
			{Key: "vcs.time", Value: "2026-12-01T09:00:00Z"},
			{Key: "vcs.modified", Value: modified},
		}
	}
	info := func(mainVersion string, settings []debug.BuildSetting) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Path: "github.com/schwabtools/token-refresh-sender", Version: mainVersion}, Settings: settings}
	}
	stamped := buildStamp{Version: "1.2.3", Commit: "abc1234", Date: "2026-12-02T10:00:00Z"}
	cases := []struct {
		name string
		s    buildStamp
		info *debug.BuildInfo
		want buildStamp
	}{
		{"stamped values win over build info", stamped, info("v9.9.9", vcs("true")), stamped},
		{"stamped commit alone keeps the VCS date out", buildStamp{Commit: "abc1234"}, info("(devel)", vcs("false")),
			buildStamp{Version: "dev", Commit: "abc1234"}},
		{"stamped date alone keeps the VCS commit out", buildStamp{Date: "2026-12-02T10:00:00Z"}, info("(devel)", vcs("false")),
			buildStamp{Version: "dev", Date: "2026-12-02T10:00:00Z"}},
		{"go build in a clean checkout", buildStamp{}, info("(devel)", vcs("false")),
			buildStamp{Version: "dev", Commit: rev[:12], Date: "2026-12-01T09:00:00Z", DateIsCommit: true}},
		{"go build in a modified checkout", buildStamp{}, info("(devel)", vcs("true")),
			buildStamp{Version: "dev", Commit: rev[:12] + "-dirty", Date: "2026-12-01T09:00:00Z", DateIsCommit: true}},
		{"go install module@version", buildStamp{}, info("v1.2.3", nil), buildStamp{Version: "v1.2.3"}},
		{"go install of a pseudo-version", buildStamp{}, info("v0.0.0-20261201090000-0123456789ab", nil),
			buildStamp{Version: "v0.0.0-20261201090000-0123456789ab"}},
		{"stamped version, VCS commit", buildStamp{Version: "1.2.3"}, info("(devel)", vcs("false")),
			buildStamp{Version: "1.2.3", Commit: rev[:12], Date: "2026-12-01T09:00:00Z", DateIsCommit: true}},
		{"short revision kept whole", buildStamp{}, info("", []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}}),
			buildStamp{Version: "dev", Commit: "abc"}},
		{"modified without a revision", buildStamp{}, info("(devel)", []debug.BuildSetting{{Key: "vcs.modified", Value: "true"}}),
			buildStamp{Version: "dev"}},
		{"no build info", buildStamp{}, nil, buildStamp{Version: "dev"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.s.withBuildInfo(c.info); got != c.want {
				t.Errorf("withBuildInfo()\n got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

// versionLine reads the variables the release build stamps.
func TestVersionLine_Stamped(t *testing.T) {
	defer func(v, c, d string) { version, commit, date = v, c, d }(version, commit, date)
	version, commit, date = "1.2.3", "abc1234", "2026-12-02T10:00:00Z"
	want := "token-refresh-sender 1.2.3 (commit abc1234, built 2026-12-02T10:00:00Z, " +
		runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")"
	if got := versionLine(); got != want {
		t.Errorf("versionLine()\n got %q\nwant %q", got, want)
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var out, errOut bytes.Buffer
		if code := run(args, &process{out: &out, err: &errOut}); code != 0 || out.String() != want+"\n" {
			t.Errorf("%v: exit %d, stdout %q, want 0 and %q (stderr %q)", args, code, out.String(), want+"\n", errOut.String())
		}
	}
}

// The ldflags in .goreleaser.yaml reach the variables: a binary linked with
// them (template fields filled in) prints the stamped values. A renamed
// variable would make -X a silent no-op.
func TestVersion_GoreleaserLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("links a binary")
	}
	raw, err := os.ReadFile("../../.goreleaser.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Builds []struct {
			ID      string   `yaml:"id"`
			Main    string   `yaml:"main"`
			Binary  string   `yaml:"binary"`
			Tags    []string `yaml:"tags"`
			Ldflags []string `yaml:"ldflags"`
		} `yaml:"builds"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf(".goreleaser.yaml: %v", err)
	}
	// Two builds of one program: the default binary and the cluster build
	// it hands --etcd-endpoints to (clusterexec.go).
	wantBuilds := map[string]string{"token-refresh-sender": "", "token-refresh-sender-cluster": "cluster"}
	if len(cfg.Builds) != len(wantBuilds) {
		t.Fatalf(".goreleaser.yaml: want the builds %v, got %+v", wantBuilds, cfg.Builds)
	}
	for _, b := range cfg.Builds {
		tags, ok := wantBuilds[b.Binary]
		if !ok || b.Main != "./cmd/token-refresh-sender" || strings.Join(b.Tags, ",") != tags {
			t.Fatalf(".goreleaser.yaml: build %+v; want binary token-refresh-sender (no tags) and token-refresh-sender-cluster (tags [cluster]), both of ./cmd/token-refresh-sender", b)
		}
		t.Run(b.Binary, func(t *testing.T) { checkStampedVersion(t, b.Ldflags, b.Tags) })
	}
}

// checkStampedVersion links the program with ldflags (GoReleaser's
// template fields filled in) and tags, and checks what version prints.
func checkStampedVersion(t *testing.T, ldflagsTmpl, tags []string) {
	fields := map[string]string{"Version": "1.2.3", "ShortCommit": "abc1234", "Date": "2026-12-02T10:00:00Z"}
	tmpl := regexp.MustCompile(`{{\s*\.(\w+)\s*}}`)
	ldflags := tmpl.ReplaceAllStringFunc(strings.Join(ldflagsTmpl, " "), func(m string) string {
		name := tmpl.FindStringSubmatch(m)[1]
		v, ok := fields[name]
		if !ok {
			t.Fatalf(".goreleaser.yaml ldflags: template field %q not known to this test", name)
		}
		return v
	})
	if !strings.Contains(ldflags, "-X main.version=") {
		t.Fatalf(".goreleaser.yaml ldflags %q do not stamp main.version", ldflags)
	}
	bin := filepath.Join(t.TempDir(), "token-refresh-sender")
	args := []string{"build", "-trimpath", "-ldflags", ldflags, "-o", bin}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		t.Fatalf("go %v: %v\n%s", args, err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("%s version: %v", bin, err)
	}
	cluster := ""
	if len(tags) > 0 {
		cluster = ", with cluster mode"
	}
	want := "token-refresh-sender 1.2.3 (commit abc1234, built 2026-12-02T10:00:00Z, " +
		runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + cluster + ")\n"
	if string(out) != want {
		t.Errorf("version printed\n%q\nwant\n%q", out, want)
	}
}
