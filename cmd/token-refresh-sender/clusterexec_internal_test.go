package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The cluster binary runs only when no other user could have put it
// there: a regular file of root's or ours, writable by nobody else.
func TestTrustedBinary(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, clusterBinaryName)
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	check := func(uid int) error {
		t.Helper()
		fi, err := os.Stat(bin)
		if err != nil {
			t.Fatal(err)
		}
		return trustedBinary(bin, fi, uid)
	}
	me := os.Getuid()
	if err := check(me); err != nil {
		t.Fatalf("our own 0755 file refused: %v", err)
	}

	if err := os.Chmod(bin, 0o775); err != nil {
		t.Fatal(err)
	}
	if err := check(me); err == nil || !strings.Contains(err.Error(), "writable by other users") {
		t.Errorf("group-writable file: %v, want refused", err)
	}
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}

	// Another user's file: as root, hand it to uid 65534; otherwise it is
	// ours and the check runs for someone else.
	runAs := me + 1
	if me == 0 {
		if err := os.Chown(bin, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		runAs = 0
	}
	if err := check(runAs); err == nil || !strings.Contains(err.Error(), "not to root or to you") {
		t.Errorf("another user's file: %v, want refused", err)
	}

	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := trustedBinary(dir, fi, me); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a directory: %v, want refused", err)
	}
}
