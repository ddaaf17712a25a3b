// Package testproc runs programs under test as real subprocesses: the
// token-refresh-sender binary in end-to-end tests, the C++ example bot in
// the integration kit's tests. It reads their standard output line by line
// so a test can wait for a log line instead of sleeping, and it keeps Unix
// socket paths short. It is for tests only.
package testproc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// WaitLimit is how long WaitFor and Wait wait before failing the test: a
// safety net against a hang, not a timing assertion.
const WaitLimit = 30 * time.Second

// ShortDir is a temporary directory short enough for Unix socket paths
// (108 bytes), unlike t.TempDir(); it is removed when the test ends.
func ShortDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "trs")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Build compiles the Go package pkg (an import path or ./dir) into dir,
// named name, with any extra go build flags (such as "-tags", "cluster"),
// and returns the binary's path. It is meant for TestMain, so it returns
// an error instead of failing a test.
func Build(dir, pkg, name string, flags ...string) (string, error) {
	bin := dir + "/" + name
	args := append(append([]string{"build"}, flags...), "-o", bin, pkg)
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}

// Proc is a program running in the background.
type Proc struct {
	tb     testing.TB
	name   string
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []string
	stderr bytes.Buffer
	more   chan struct{}
	done   chan struct{}
	code   int
	waited bool
}

// Start runs bin with args and env added to this process's environment.
// The process is killed when the test ends, if it still runs.
func Start(tb testing.TB, name string, env []string, bin string, args ...string) *Proc {
	tb.Helper()
	p := &Proc{tb: tb, name: name, cmd: exec.Command(bin, args...), more: make(chan struct{}, 1), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = lockedWriter{p}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
			select {
			case p.more <- struct{}{}:
			default:
			}
		}
	}()
	tb.Cleanup(func() {
		if !p.waited {
			p.cmd.Process.Kill()
			<-p.done
			p.cmd.Wait()
		}
	})
	return p
}

type lockedWriter struct{ p *Proc }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.stderr.Write(b)
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Output is every line printed to standard output so far.
func (p *Proc) Output() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Text is the standard output so far, one string.
func (p *Proc) Text() string { return strings.Join(p.Output(), "\n") }

// Stderr is everything printed to standard error so far.
func (p *Proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// Count is how many lines of output contain substr.
func (p *Proc) Count(substr string) int {
	n := 0
	for _, l := range p.Output() {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

// WaitFor blocks until n lines of output contain substr, failing the test
// if the process exits first or WaitLimit passes.
func (p *Proc) WaitFor(substr string, n int) {
	p.tb.Helper()
	deadline := time.After(WaitLimit)
	for p.Count(substr) < n {
		select {
		case <-p.more:
		case <-p.done:
			if p.Count(substr) >= n {
				return
			}
			p.tb.Fatalf("%s exited before printing %q %d time(s):\n%s\nstderr: %s", p.name, substr, n, p.Text(), p.Stderr())
		case <-deadline:
			p.tb.Fatalf("%s: no %q %d time(s) after %v:\n%s", p.name, substr, n, WaitLimit, p.Text())
		}
	}
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) {
	p.tb.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.tb.Fatalf("signal %s: %v", p.name, err)
	}
}

// Wait returns the exit code once the process has ended (and all its
// output has been read), failing the test after WaitLimit.
func (p *Proc) Wait() int {
	p.tb.Helper()
	if p.waited {
		return p.code
	}
	select {
	case <-p.done:
	case <-time.After(WaitLimit):
		p.tb.Fatalf("%s did not exit within %v:\n%s", p.name, WaitLimit, p.Text())
	}
	err := p.cmd.Wait()
	p.waited = true
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		p.code = ee.ExitCode()
	case err != nil:
		p.tb.Fatalf("%s: %v", p.name, err)
	}
	return p.code
}
