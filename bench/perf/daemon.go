package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/schwabtools/token-refresh-sender/receiver"
)

// wait bounds every wait for the daemon: far beyond any healthy cycle.
const wait = 30 * time.Second

// daemon is one `token-refresh-sender run` subprocess and the bot it
// delivers to.
type daemon struct {
	cmd     *exec.Cmd
	started time.Time
	got     chan time.Time // the bot received a token
	logged  chan struct{}  // "Next refresh at" was logged: the cycle is over
	stopBot func()

	mu   sync.Mutex
	tail []string // last lines of output, for errors
}

// startDaemon starts the bot on f.socket, then the daemon, with env added
// to the bench's environment.
func startDaemon(binary string, f files, extra, env []string) (*daemon, error) {
	d := &daemon{got: make(chan time.Time, 16), logged: make(chan struct{}, 16)}
	bot := &receiver.Receiver{Addr: f.socket, OnToken: func(receiver.Token) { d.got <- time.Now() }}
	if err := bot.Listen(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- bot.Serve(ctx) }()
	d.stopBot = func() { cancel(); <-served }

	args := append([]string{"run", "--config", f.config, "--token-file", f.tokens, "--socket", f.socket, "--log-file", ""}, extra...)
	d.cmd = exec.Command(binary, args...)
	d.cmd.Env = append(os.Environ(), env...)
	out, err := d.cmd.StdoutPipe()
	if err != nil {
		d.stopBot()
		return nil, err
	}
	d.cmd.Stderr = d.cmd.Stdout
	d.started = time.Now()
	if err := d.cmd.Start(); err != nil {
		d.stopBot()
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			d.tail = append(d.tail, line)
			if len(d.tail) > 10 {
				d.tail = d.tail[1:]
			}
			d.mu.Unlock()
			if strings.Contains(line, "Next refresh at") {
				d.logged <- struct{}{}
			}
		}
	}()
	return d, nil
}

// stop ends the daemon (SIGTERM) and the bot.
func (d *daemon) stop() {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	_ = d.cmd.Wait()
	d.stopBot()
}

// firstCycle waits for the start-up cycle and returns the time from
// exec to the bot receiving the token.
func (d *daemon) firstCycle() (time.Duration, error) {
	at, err := d.cycle()
	return at.Sub(d.started), err
}

// forceCycle asks for a refresh with SIGUSR1 and waits until it is over.
func (d *daemon) forceCycle() error {
	drain(d.got)
	drain(d.logged)
	if err := d.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return err
	}
	_, err := d.cycle()
	return err
}

// cycle waits for a token at the bot and the end of the cycle in the log.
func (d *daemon) cycle() (time.Time, error) {
	var at time.Time
	select {
	case at = <-d.got:
	case <-time.After(wait):
		return at, d.failed("no token reached the bot")
	}
	select {
	case <-d.logged:
	case <-time.After(wait):
		return at, d.failed(`no "Next refresh at" logged`)
	}
	return at, nil
}

func (d *daemon) failed(what string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return fmt.Errorf("%s within %v; last output:\n\t%s", what, wait, strings.Join(d.tail, "\n\t"))
}

func drain[T any](c chan T) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

// memory reads RssAnon (private memory) and VmHWM (peak RSS), in kB.
func (d *daemon) memory() (rssAnon, hwm int, err error) {
	status := fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid)
	if rssAnon, err = statusField(status, "RssAnon"); err != nil {
		return 0, 0, err
	}
	hwm, err = statusField(status, "VmHWM")
	return rssAnon, hwm, err
}

// idleCount is the voluntary context switches counted over an idle window,
// in consecutive slices of 30 s (the last one may be shorter).
type idleCount struct {
	window time.Duration
	total  int
	slices []int
}

func (c idleCount) per30s() float64 {
	if c.window <= 0 {
		return 0
	}
	return float64(c.total) * float64(30*time.Second) / float64(c.window)
}

// countIdle counts the wake-ups of every thread of each daemon over the
// same window, in slices of 30 s.
func countIdle(ds []*daemon, window time.Duration) ([]idleCount, error) {
	counts := make([]idleCount, len(ds))
	sample := func() ([]int, error) {
		now := make([]int, len(ds))
		for i, d := range ds {
			n, err := switches(d.cmd.Process.Pid)
			if err != nil {
				return nil, err
			}
			now[i] = n
		}
		return now, nil
	}
	prev, err := sample()
	if err != nil {
		return nil, err
	}
	for i := range counts {
		counts[i].window = window
	}
	for left := window; left > 0; left -= 30 * time.Second {
		time.Sleep(min(left, 30*time.Second))
		now, err := sample()
		if err != nil {
			return nil, err
		}
		for i := range counts {
			counts[i].slices = append(counts[i].slices, now[i]-prev[i])
			counts[i].total += now[i] - prev[i]
		}
		prev = now
	}
	return counts, nil
}

// switches sums voluntary_ctxt_switches over every thread of pid. A thread
// that exits between the listing and the read is skipped (its switches
// leave the sum: Go rarely ends threads, and the slices would show it).
func switches(pid int) (int, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("read threads of %d: %v", pid, err)
	}
	total := 0
	for _, t := range tasks {
		n, err := statusField(t, "voluntary_ctxt_switches")
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// statusField reads one numeric field (kB for memory) of a /proc status file.
func statusField(path, field string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.Atoi(strings.Fields(v)[0])
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, field)
}
