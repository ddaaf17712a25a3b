package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version or VCS revision from the build info is used.
var version = ""

// VersionCmd prints the version.
type VersionCmd struct{}

// Run prints "token-refresh-sender <version> (<go version>)".
func (c *VersionCmd) Run(pr *process) error {
	fmt.Fprintln(pr.out, versionLine())
	return nil
}

// versionLine is what `version` and `--version` print.
func versionLine() string {
	return fmt.Sprintf("token-refresh-sender %s (%s)", buildVersion(), runtime.Version())
}

func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "dev-" + s.Value[:12]
		}
	}
	return "dev"
}
