//go:build !unix

package notify

import "os/exec"

// killGroup keeps exec.CommandContext's default: kill the shell only.
func killGroup(*exec.Cmd) {}
