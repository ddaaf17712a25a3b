package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set at build time by the release build (.goreleaser.yaml):
//
//	-ldflags "-X main.version=1.2.3 -X main.commit=abc1234 -X main.date=2026-12-02T10:00:00Z"
//
// Left empty, the module version and the VCS revision and commit time that
// the go command records in the binary are used instead.
var (
	version = ""
	commit  = ""
	date    = ""
)

// VersionCmd prints the version.
type VersionCmd struct{}

// Run prints the version line.
func (c *VersionCmd) Run(pr *process) error {
	fmt.Fprintln(pr.out, versionLine())
	return nil
}

// versionLine is what `version` and `--version` print, e.g.
// "token-refresh-sender 1.2.3 (commit abc1234, built 2026-12-02T10:00:00Z, go1.26.8 linux/amd64)".
func versionLine() string {
	info, _ := debug.ReadBuildInfo() // nil when the binary has none
	return buildStamp{
		Version: version, Commit: commit, Date: date,
		Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		Cluster: clusterBuilt,
	}.withBuildInfo(info).String()
}

// buildStamp is what a binary knows about how it was built.
type buildStamp struct {
	Version string // "1.2.3", "v1.2.3" (go install), "dev" when unknown
	Commit  string // short revision, "-dirty" appended for a modified tree
	Date    string // RFC 3339
	// DateIsCommit: Date is the commit's time (from the VCS), not the
	// build's (stamped by the release build).
	DateIsCommit bool
	Go, OS, Arch string
	// Cluster: the cluster build (token-refresh-sender-cluster).
	Cluster bool
}

// shortRevision is how much of a VCS revision the fallback shows.
const shortRevision = 12

// withBuildInfo fills what the release build did not stamp from the build
// information the go command records: the module version (go install
// module@version) and vcs.revision, vcs.time and vcs.modified (go build in
// a git checkout). Stamped values always win; info may be nil.
func (s buildStamp) withBuildInfo(info *debug.BuildInfo) buildStamp {
	if info != nil {
		if s.Version == "" {
			if v := info.Main.Version; v != "(devel)" {
				s.Version = v
			}
		}
		if s.Commit == "" && s.Date == "" {
			var modified bool
			for _, kv := range info.Settings {
				switch kv.Key {
				case "vcs.revision":
					s.Commit = kv.Value[:min(len(kv.Value), shortRevision)]
				case "vcs.time":
					s.Date, s.DateIsCommit = kv.Value, true
				case "vcs.modified":
					modified = kv.Value == "true"
				}
			}
			if modified && s.Commit != "" {
				s.Commit += "-dirty"
			}
		}
	}
	if s.Version == "" {
		s.Version = "dev"
	}
	return s
}

// String is the version line: the version, then in parentheses whatever is
// known of the commit and date, the Go version and the platform.
func (s buildStamp) String() string {
	var parts []string
	if s.Commit != "" {
		parts = append(parts, "commit "+s.Commit)
	}
	if s.Date != "" {
		if s.DateIsCommit {
			parts = append(parts, "committed "+s.Date)
		} else {
			parts = append(parts, "built "+s.Date)
		}
	}
	parts = append(parts, s.Go+" "+s.OS+"/"+s.Arch)
	if s.Cluster {
		parts = append(parts, "with cluster mode")
	}
	return fmt.Sprintf("token-refresh-sender %s (%s)", s.Version, strings.Join(parts, ", "))
}
