package login

import (
	"errors"
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
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

// openBrowser opens url in the user's browser without putting it on a
// command line: every local user can read any process's arguments
// (/proc/PID/cmdline, ps), and the URL carries the state that makes a
// callback count. The browser is pointed at a private page that forwards
// to url instead; remove deletes that page once the login is over.
func openBrowser(url string) (remove func(), err error) {
	return openVia(url, runtime.GOOS, startDetached)
}

// openVia writes the forwarding page and has start run the system's URL
// opener on its path.
func openVia(url, goos string, start func(name, arg string) error) (remove func(), err error) {
	page, remove, err := writeLaunchPage(url)
	if err != nil {
		return nil, err
	}
	if err := start(browserCommand(goos), page); err != nil {
		remove()
		return nil, err
	}
	return remove, nil
}

// writeLaunchPage writes, in a new directory only this user can enter, a
// page (mode 0600) that sends the browser on to url at once.
func writeLaunchPage(url string) (path string, remove func(), err error) {
	dir, err := os.MkdirTemp("", "token-refresh-sender-login-")
	if err != nil {
		return "", nil, fmt.Errorf("write the login page: %w", err)
	}
	remove = func() { _ = os.RemoveAll(dir) }
	if err := os.Chmod(dir, 0o700); err != nil {
		remove()
		return "", nil, fmt.Errorf("write the login page: %w", err)
	}
	u := html.EscapeString(url)
	page := "<!doctype html>\n<meta charset=\"utf-8\">\n<meta http-equiv=\"refresh\" content=\"0;url=" + u + "\">\n" +
		"<title>Schwab login</title>\n<p><a href=\"" + u + "\">Continue to the Schwab login</a></p>\n"
	path = filepath.Join(dir, "login.html")
	if err := os.WriteFile(path, []byte(page), 0o600); err != nil {
		remove()
		return "", nil, fmt.Errorf("write the login page: %w", err)
	}
	return path, remove, nil
}

// startDetached starts name with one argument and does not wait for it;
// its exit status is collected in the background.
func startDetached(name, arg string) error {
	path, err := exec.LookPath(name)
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return fmt.Errorf("%s is not installed", name)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	cmd := exec.Command(path, arg)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = cmd.Wait() }()
	return nil
}
