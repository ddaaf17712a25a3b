package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 10 item 4: a token file readable by others, or a directory others
// may write, is named in one WARNING by status (on stderr, so the report on
// stdout stays what monitoring parses) and by refresh, with the fix; and a
// refresh rewrites the file 0600 whatever its old mode was.
func TestPermissions_looseTokenFileIsWarnedAndTightened(t *testing.T) {
	s := newSandbox(t)
	if err := os.Chmod(s.tokenFile, 0o644); err != nil {
		t.Fatal(err)
	}
	noBot := filepath.Join(s.dir, "none.sock")

	stdout, stderr, _ := runToEnd(t, nil, s.args("status", "--socket", noBot)...)
	if !strings.Contains(stderr, "WARNING: ") || !strings.Contains(stderr, s.tokenFile) {
		t.Errorf("status stderr %q: want a WARNING naming %s", stderr, s.tokenFile)
	}
	if strings.Contains(stdout, "readable by") {
		t.Errorf("status stdout carries the permission warning:\n%s", stdout)
	}

	stdout, _, code := runToEnd(t, []string{"SSL_CERT_FILE=" + s.certFile}, s.args("refresh", "--socket", noBot)...)
	if code != 0 {
		t.Fatalf("refresh exit %d:\n%s", code, stdout)
	}
	warned := false
	for _, line := range strings.Split(stdout, "\n") {
		if strings.Contains(line, "WARNING: ") && strings.Contains(line, s.tokenFile) {
			warned = true
		}
	}
	if !warned {
		t.Errorf("refresh did not warn about the 0644 token file:\n%s", stdout)
	}
	if fi, err := os.Stat(s.tokenFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("after refresh the token file is %v (%v), want 0600", fi.Mode().Perm(), err)
	}

	// --token-file-mode 0640 is what the next write gives it.
	if _, _, code := runToEnd(t, []string{"SSL_CERT_FILE=" + s.certFile}, s.args("refresh", "--socket", noBot, "--token-file-mode", "0640")...); code != 0 {
		t.Fatalf("refresh --token-file-mode 0640: exit %d", code)
	}
	if fi, err := os.Stat(s.tokenFile); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("after refresh --token-file-mode 0640 the file is %v (%v)", fi.Mode().Perm(), err)
	}
	// A mode that would let others read it is a usage error.
	if _, stderr, code := runToEnd(t, nil, s.args("refresh", "--socket", noBot, "--token-file-mode", "0644")...); code != 2 {
		t.Errorf("--token-file-mode 0644: exit %d (%s), want 2", code, stderr)
	}
	if _, stderr, code := runToEnd(t, nil, s.args("login", "--manual", "--token-file-mode", "0666")...); code != 2 {
		t.Errorf("login --token-file-mode 0666: exit %d (%s), want 2", code, stderr)
	}
}
