//go:build !unix

package alert

import "os/exec"

// killGroup keeps exec.CommandContext's default: kill the shell only.
func killGroup(*exec.Cmd) {}
