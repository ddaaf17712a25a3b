//go:build !unix

package alert

import (
	"io/fs"
	"os"
	"os/exec"
)

// killGroup keeps exec.CommandContext's default: kill the shell only.
func killGroup(*exec.Cmd) {}

// openNoFollow opens path for reading.
func openNoFollow(path string) (*os.File, error) { return os.Open(path) }

// fileOwner is unknown here: only the mode is checked.
func fileOwner(fs.FileInfo) (int, bool) { return 0, false }
