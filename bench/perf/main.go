// Command perf measures the token-refresh-sender binary beside nothing but
// loopback: time from process start to the first token delivered to a
// receiver, peak RSS after the first cycle, and wake-ups (voluntary context
// switches over all threads) while idle.
//
//	go run ./bench/perf [-runs 5] [-warmup 30s] [-idle 30s] [-binary bin/token-refresh-sender]
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/schwabtools/token-refresh-sender/fakeschwab"
	"github.com/schwabtools/token-refresh-sender/receiver"
	"github.com/schwabtools/token-refresh-sender/tokenfile"
)

func main() {
	runs := flag.Int("runs", 5, "start-ups to measure (the median is reported)")
	idle := flag.Duration("idle", 30*time.Second, "idle window for counting wake-ups")
	warmup := flag.Duration("warmup", 30*time.Second, "wait after the first cycle before counting (start-up's memory scavenging settles)")
	binary := flag.String("binary", "", "binary to measure (default: build ./cmd/token-refresh-sender)")
	flag.Parse()
	if err := measure(*runs, *warmup, *idle, *binary); err != nil {
		fmt.Fprintln(os.Stderr, "perf:", err)
		os.Exit(1)
	}
}

func measure(runs int, warmup, idle time.Duration, binary string) error {
	dir, err := os.MkdirTemp("", "perf")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if binary == "" {
		binary = filepath.Join(dir, "token-refresh-sender")
		if out, err := exec.Command("go", "build", "-o", binary, "./cmd/token-refresh-sender").CombinedOutput(); err != nil {
			return fmt.Errorf("build: %v\n%s", err, out)
		}
	}
	fake := fakeschwab.New(fakeschwab.Config{AppKey: "perf-key", AppSecret: "perf-secret", CallbackURL: "https://127.0.0.1:8182"})
	srv, err := fakeschwab.StartTLS(fake)
	if err != nil {
		return err
	}
	defer srv.Close()
	cert := filepath.Join(dir, "cert.pem")
	config := filepath.Join(dir, "app.yaml")
	tokens := filepath.Join(dir, "tokens.json")
	if err := os.WriteFile(cert, srv.CertPEM, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(config, []byte("app_key: perf-key\napp_secret: perf-secret\ntoken_url: "+srv.TokenURL+"\n"), 0o600); err != nil {
		return err
	}
	if err := tokenfile.Write(tokens, tokenfile.New(fake.Login(), time.Now())); err != nil {
		return err
	}

	var startups []time.Duration
	var rss, wakeups int
	for i := range runs {
		last := i == runs-1
		took, r, w, err := once(binary, dir, cert, config, tokens, last, warmup, idle)
		if err != nil {
			return err
		}
		startups = append(startups, took)
		if last {
			rss, wakeups = r, w
		}
	}
	slices.Sort(startups)
	fmt.Printf("start to first token delivered: median %v (min %v, max %v, %d runs)\n",
		startups[len(startups)/2].Round(100*time.Microsecond), startups[0].Round(100*time.Microsecond), startups[len(startups)-1].Round(100*time.Microsecond), runs)
	fmt.Printf("peak RSS after the first cycle:  %.1f MB (VmHWM)\n", float64(rss)/1024)
	fmt.Printf("wake-ups while idle:             %d voluntary context switches in %v (all threads, after %v warm-up)\n", wakeups, idle, warmup)
	return nil
}

// once starts the daemon, times the first delivery, and on the last run
// reads its peak RSS and counts wake-ups while idle.
func once(binary, dir, cert, config, tokens string, idleRun bool, warmup, idle time.Duration) (time.Duration, int, int, error) {
	sock := filepath.Join(dir, "bot.sock")
	got := make(chan time.Time, 4)
	bot := &receiver.Receiver{Addr: sock, OnToken: func(receiver.Token) { got <- time.Now() }}
	if err := bot.Listen(); err != nil {
		return 0, 0, 0, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bot.Serve(ctx) }()
	defer func() { cancel(); <-done }()

	cmd := exec.Command(binary, "run", "--config", config, "--token-file", tokens, "--socket", sock, "--log-file", "")
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+cert)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, 0, err
	}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, err
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	cycled := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Next refresh at") {
				close(cycled)
				for sc.Scan() {
				}
				return
			}
		}
	}()
	var first time.Time
	select {
	case first = <-got:
	case <-time.After(30 * time.Second):
		return 0, 0, 0, fmt.Errorf("no token delivered within 30s")
	}
	<-cycled
	if !idleRun {
		return first.Sub(started), 0, 0, nil
	}
	rss, err := statusField(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid), "VmHWM")
	if err != nil {
		return 0, 0, 0, err
	}
	time.Sleep(warmup)
	before, err := switches(cmd.Process.Pid)
	if err != nil {
		return 0, 0, 0, err
	}
	time.Sleep(idle)
	after, err := switches(cmd.Process.Pid)
	if err != nil {
		return 0, 0, 0, err
	}
	return first.Sub(started), rss, after - before, nil
}

// switches sums voluntary_ctxt_switches over every thread of pid.
func switches(pid int) (int, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("read threads of %d: %v", pid, err)
	}
	total := 0
	for _, t := range tasks {
		n, err := statusField(t, "voluntary_ctxt_switches")
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
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.Atoi(strings.Fields(v)[0])
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, field)
}
