package receiver

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoThirdPartyImports: bots import this package; it must pull in no
// module but the standard library and this module.
func TestNoThirdPartyImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg != "github.com/schwabtools/token-refresh-sender" && !strings.HasPrefix(pkg, "github.com/schwabtools/token-refresh-sender/") {
			t.Errorf("receiver depends on %s, a third-party package", pkg)
		}
	}
}
