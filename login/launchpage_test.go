package login

import (
	"errors"
	"html"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The authorize URL carries this login's state; a local user who read it
// from the opener's command line (/proc/PID/cmdline) could forge a callback
// that counts. So the opener gets the path of a private page instead.
func TestOpenVia_keepsTheURLOffTheCommandLine(t *testing.T) {
	const url = "https://api.schwabapi.com/v1/oauth/authorize?client_id=k&redirect_uri=https%3A%2F%2F127.0.0.1%3A8182&state=s3cr3t-state&x=<y>"
	var name, arg string
	remove, err := openVia(url, "linux", func(n, a string) error { name, arg = n, a; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if name != "xdg-open" {
		t.Errorf("opener %q, want xdg-open", name)
	}
	if strings.Contains(arg, "state") || strings.Contains(arg, "schwabapi") {
		t.Fatalf("the opener's argument %q carries the URL", arg)
	}
	fi, err := os.Stat(arg)
	if err != nil {
		t.Fatalf("the opener's argument is not the page: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("page mode %v, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(filepath.Dir(arg))
	if err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("page directory mode %v (%v), want 0700", di.Mode().Perm(), err)
	}
	page, err := os.ReadFile(arg)
	if err != nil {
		t.Fatal(err)
	}
	if want := `content="0;url=` + html.EscapeString(url) + `"`; !strings.Contains(string(page), want) {
		t.Errorf("page does not forward to the URL (escaped):\n%s", page)
	}
	remove()
	if _, err := os.Stat(filepath.Dir(arg)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("remove left %s: %v", filepath.Dir(arg), err)
	}
}

func TestOpenVia_failedOpenerLeavesNoPage(t *testing.T) {
	var arg string
	_, err := openVia("https://example.invalid/?state=s", "darwin", func(n, a string) error {
		arg = a
		if n != "open" {
			t.Errorf("opener %q on macOS, want open", n)
		}
		return errors.New("no opener")
	})
	if err == nil {
		t.Fatal("openVia succeeded with a failing opener")
	}
	if _, statErr := os.Stat(filepath.Dir(arg)); !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("the page's directory is left after a failed open: %v", statErr)
	}
}
