package login

import (
	"errors"
	"fmt"
	"os/exec"
	"runtime"
)

// hasDisplay reports whether a browser window can be shown: on macOS
// always, elsewhere when $DISPLAY or $WAYLAND_DISPLAY is set.
func hasDisplay(getenv func(string) string, goos string) bool {
	if goos == "darwin" {
		return true
	}
	return getenv("DISPLAY") != "" || getenv("WAYLAND_DISPLAY") != ""
}

// browserCommand is the program that opens a URL in the user's browser.
func browserCommand(goos string) string {
	if goos == "darwin" {
		return "open"
	}
	return "xdg-open"
}

// openBrowser starts the system's URL opener and does not wait for the
// browser; the opener's exit status is collected in the background.
func openBrowser(url string) error {
	name := browserCommand(runtime.GOOS)
	path, err := exec.LookPath(name)
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return fmt.Errorf("%s is not installed", name)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	cmd := exec.Command(path, url)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = cmd.Wait() }()
	return nil
}
