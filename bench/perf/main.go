// Command perf measures the token-refresh-sender binary, run as a
// subprocess beside a token server and a receiving bot on loopback, for
// the three figures of issue 15, and prints each next to its goal:
//
//   - idle wake-ups: voluntary context switches of all threads
//     (/proc/PID/task/*/status), counted over a long idle window that starts
//     2 s (-settle) after the first cycle, averaged per 30 s (the busiest 30 s
//     slice, and the wake-ups while settling, are printed too);
//   - private memory: RssAnon (/proc/PID/status) after the first cycle
//     (the median over the timed start-ups, as it varies by a few hundred
//     kB from one process to the next, and the idle daemon's), and -settle
//     after N more refreshes forced with SIGUSR1, each awaited (token
//     received by the bot and "Next refresh at" logged) before the next
//     signal; peak RSS (VmHWM) for information;
//   - exec to first token: from starting the process to the bot receiving
//     the token, over loopback TLS; median of several runs.
//
// The daemon starts with GOMAXPROCS=1 in its environment (-gomaxprocs), as
// the systemd unit, the launchd agent and scripts/run_token_sender.sh start
// it: otherwise the runtime makes one processor per CPU before main can
// reduce them to one, and about half of the processes keep ~0.45 MB more
// (-gomaxprocs "" measures such a bare start).
//
// Each figure is taken against three token servers on loopback TLS:
//
//   - fake: the project's fakeschwab as the tests start it;
//   - split: the same fake behind a server that writes the response headers
//     (flushed first) and the body in two separate writes, with TCP_NODELAY,
//     as many servers do;
//   - nagle: split with TCP_NODELAY off, so the body waits for the client's
//     ACK of the headers: a delayed-ACK stall shows in full.
//
// Usage:
//
//	go run ./bench/perf [-runs 7] [-idle 5m] [-settle 2s] [-cycles 300] [-servers fake,split,nagle] [-binary PATH] [-tags TAGS] [-args ARGS] [-gomaxprocs 1]
//
// A quick run: -idle 30s -cycles 30 -runs 5 (the window used is printed).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The goals of issue 15.
const (
	goalWakeups   = 2.0                   // per 30 s, idle
	goalRssAnonMB = 3.0                   // after the first cycle and after the forced cycles
	goalFirst     = 10 * time.Millisecond // exec to first token at the bot
)

type options struct {
	runs    int
	idle    time.Duration
	settle  time.Duration
	cycles  int
	servers []string
	binary  string
	tags    string
	args    []string
	procs   string // GOMAXPROCS for the daemon ("": the bench's environment)
	starts  int    // daemons started so far
}

func main() {
	var o options
	var servers string
	flag.IntVar(&o.runs, "runs", 7, "start-ups timed per server (the median is reported)")
	flag.DurationVar(&o.idle, "idle", 5*time.Minute, "idle window for counting wake-ups, starting right after the first cycle")
	flag.DurationVar(&o.settle, "settle", 2*time.Second, "wait between the end of the first cycle and the idle window (its wake-ups are printed apart)")
	flag.IntVar(&o.cycles, "cycles", 300, "refreshes forced with SIGUSR1 before reading RssAnon again")
	flag.StringVar(&servers, "servers", "fake,split,nagle", "token servers to measure against: fake (fakeschwab as it is), split (headers and body in two writes, TCP_NODELAY), nagle (split with Nagle's algorithm on)")
	flag.StringVar(&o.binary, "binary", "", "binary to measure (default: build ./cmd/token-refresh-sender)")
	flag.StringVar(&o.tags, "tags", "", "build tags for the default build (cluster: the cluster build)")
	var args string
	flag.StringVar(&args, "args", "", "more arguments for run, space-separated (e.g. --etcd-endpoints http://127.0.0.1:2379 to measure cluster mode with -tags cluster)")
	flag.StringVar(&o.procs, "gomaxprocs", "1", "GOMAXPROCS in the daemon's environment, as the shipped systemd unit, launchd agent and run script set it (empty: the bench's own environment, a bare start)")
	flag.Parse()
	o.servers = strings.Split(servers, ",")
	o.args = strings.Fields(args)
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "perf:", err)
		os.Exit(1)
	}
}

// result is what one server's measurements came to.
type result struct {
	server      string
	startups    []time.Duration
	idle        idleCount
	rssFirst    int   // kB, the idle daemon after its first cycle
	rssStartups []int // kB, after the first cycle of each timed start-up
	rssAfter    int   // kB, -settle after the last forced cycle
	rssAfterNow int   // kB, as the last forced cycle ended
	hwmFirst    int   // kB
	hwmAfter    int   // kB
	cycles      int
	cyclesDur   time.Duration
}

func run(o options) error {
	for _, s := range o.servers {
		if s != "fake" && s != "split" && s != "nagle" {
			return fmt.Errorf("-servers: unknown server %q (want fake, split or nagle)", s)
		}
	}
	if o.runs < 1 || o.cycles < 0 || o.idle < 0 || o.settle < 0 {
		return errors.New("-runs must be at least 1, -cycles, -idle and -settle not negative")
	}
	dir, err := os.MkdirTemp("", "perf")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if o.binary == "" {
		o.binary = filepath.Join(dir, "token-refresh-sender")
		// As the release is built (.goreleaser.yaml): static, no cgo.
		build := exec.Command("go", "build", "-trimpath", "-tags", o.tags, "-o", o.binary, "./cmd/token-refresh-sender")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("build: %v\n%s", err, out)
		}
	}
	procs := "GOMAXPROCS=" + o.procs
	if o.procs == "" {
		procs = "GOMAXPROCS from the environment (" + os.Getenv("GOMAXPROCS") + ")"
	}
	fmt.Printf("binary %s; %d start-ups, idle window %v, %d forced cycles per server; daemon %s; %s\n",
		o.binary, o.runs, o.idle, o.cycles, procs, loadavg())
	results, err := measure(o, dir)
	if err != nil {
		return err
	}
	fmt.Println()
	report(results, o)
	return nil
}

// measure takes the three figures against every server. Start-ups and
// forced cycles run one server at a time; the idle windows run side by
// side, one daemon per server, so a long window is paid once. The daemon
// counted idle is the one then forced to cycle.
func measure(o options, dir string) ([]result, error) {
	results := make([]result, len(o.servers))
	daemons := make([]*daemon, len(o.servers))
	fs := make([]files, len(o.servers))
	defer func() {
		for _, d := range daemons {
			if d != nil {
				d.stop()
			}
		}
	}()
	for i, name := range o.servers {
		r := &results[i]
		r.server = name
		srv, err := startServer(name)
		if err != nil {
			return nil, err
		}
		defer srv.Close()
		f, err := srv.writeFiles(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		for run := range o.runs {
			d, err := o.start(f)
			if err != nil {
				return nil, err
			}
			first, err := d.firstCycle()
			var rss int
			if err == nil {
				rss, _, err = d.memory()
			}
			d.stop()
			if err != nil {
				return nil, fmt.Errorf("%s: start-up %d: %w", name, run+1, err)
			}
			r.startups = append(r.startups, first)
			r.rssStartups = append(r.rssStartups, rss)
		}
		fmt.Printf("%s: exec to first token %v\n", name, rounded(r.startups))
		fmt.Printf("%s: RssAnon after each start-up's first cycle %v kB\n", name, r.rssStartups)
		fs[i] = f
	}

	// The idle daemons start together, so each window begins right
	// after its daemon's first cycle.
	for i, name := range o.servers {
		r := &results[i]
		var err error
		if daemons[i], err = o.start(fs[i]); err != nil {
			return nil, err
		}
		if _, err := daemons[i].firstCycle(); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if r.rssFirst, r.hwmFirst, err = daemons[i].memory(); err != nil {
			return nil, err
		}
		fmt.Printf("%s: after the first cycle RssAnon %d kB, VmHWM %d kB\n", name, r.rssFirst, r.hwmFirst)
	}

	settling, err := countIdle(daemons, o.settle)
	if err != nil {
		return nil, err
	}
	fmt.Printf("counting wake-ups over %v...\n", o.idle)
	counts, err := countIdle(daemons, o.idle)
	if err != nil {
		return nil, err
	}
	for i := range results {
		results[i].idle = counts[i]
		fmt.Printf("%s: %d wake-ups while settling (%v), then %d in %v (30 s slices: %v)\n",
			o.servers[i], settling[i].total, o.settle, counts[i].total, o.idle, counts[i].slices)
	}

	for i, d := range daemons {
		r := &results[i]
		began := time.Now()
		for n := range o.cycles {
			if err := d.forceCycle(); err != nil {
				return nil, fmt.Errorf("%s: forced cycle %d: %w", r.server, n+1, err)
			}
		}
		r.cycles, r.cyclesDur = o.cycles, time.Since(began)
		if r.rssAfterNow, _, err = d.memory(); err != nil {
			return nil, err
		}
		time.Sleep(o.settle)
		if r.rssAfter, r.hwmAfter, err = d.memory(); err != nil {
			return nil, err
		}
		fmt.Printf("%s: after %d forced cycles RssAnon %d kB (%d kB as the last one ended), VmHWM %d kB\n", r.server, o.cycles, r.rssAfter, r.rssAfterNow, r.hwmAfter)
	}
	return results, nil
}

// start starts one daemon with a fresh token file (its access token just
// expired, so every start refreshes at once) and o.args, where "{start}"
// becomes a number of its own (for an etcd prefix of its own, in cluster
// mode: a record left by the previous start would not be due).
func (o *options) start(f files) (*daemon, error) {
	o.starts++
	if err := f.resetTokens(); err != nil {
		return nil, err
	}
	args := make([]string, len(o.args))
	for i, a := range o.args {
		args[i] = strings.ReplaceAll(a, "{start}", strconv.Itoa(o.starts))
	}
	env := []string{"SSL_CERT_FILE=" + f.cert}
	if o.procs != "" {
		env = append(env, "GOMAXPROCS="+o.procs)
	}
	return startDaemon(o.binary, f, args, env)
}

// report prints the table of figures beside the goals.
func report(results []result, o options) {
	fmt.Printf("%-44s", "figure")
	for _, r := range results {
		fmt.Printf(" | %-32s", "against "+r.server)
	}
	fmt.Printf(" | goal\n")
	row := func(label, goal string, cell func(result) string) {
		fmt.Printf("%-44s", label)
		for _, r := range results {
			fmt.Printf(" | %-32s", cell(r))
		}
		fmt.Printf(" | %s\n", goal)
	}
	row(fmt.Sprintf("idle wake-ups per 30 s (%v, after %v)", o.idle, o.settle), fmt.Sprintf("<= %g", goalWakeups), func(r result) string {
		return fmt.Sprintf("%.1f (max slice %d)%s", r.idle.per30s(), slices.Max(append([]int{0}, r.idle.slices...)), mark(r.idle.per30s() <= goalWakeups))
	})
	row(fmt.Sprintf("RssAnon after the first cycle (median of %d)", o.runs), fmt.Sprintf("<= %g MB", goalRssAnonMB), func(r result) string {
		s := slices.Sorted(slices.Values(r.rssStartups))
		m := mb(s[len(s)/2])
		return fmt.Sprintf("%.2f MB (%.2f..%.2f)%s", m, mb(s[0]), mb(s[len(s)-1]), mark(m <= goalRssAnonMB))
	})
	row("RssAnon after the first cycle, idle daemon", "(information)", func(r result) string {
		return fmt.Sprintf("%.2f MB", mb(r.rssFirst))
	})
	row(fmt.Sprintf("RssAnon after %d forced refreshes", o.cycles), fmt.Sprintf("<= %g MB", goalRssAnonMB), func(r result) string {
		return fmt.Sprintf("%.2f MB%s", mb(r.rssAfter), mark(mb(r.rssAfter) <= goalRssAnonMB))
	})
	row("VmHWM (peak RSS) first / after", "(information)", func(r result) string {
		return fmt.Sprintf("%.1f / %.1f MB", mb(r.hwmFirst), mb(r.hwmAfter))
	})
	row(fmt.Sprintf("exec to first token at the bot (median of %d)", o.runs), fmt.Sprintf("<= %v", goalFirst), func(r result) string {
		s := slices.Sorted(slices.Values(r.startups))
		return fmt.Sprintf("%v (%v..%v)%s", round(s[len(s)/2]), round(s[0]), round(s[len(s)-1]), mark(s[len(s)/2] <= goalFirst))
	})
	row("forced refresh, signal to next refresh logged", "(information)", func(r result) string {
		if r.cycles == 0 {
			return "-"
		}
		return fmt.Sprintf("%v mean", round(r.cyclesDur/time.Duration(r.cycles)))
	})
	fmt.Printf("(%s at the end)\n", loadavg())
}

func mark(ok bool) string {
	if ok {
		return " ok"
	}
	return " MISSED"
}

func mb(kB int) float64 { return float64(kB) / 1024 }

func round(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }

func rounded(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = round(d)
	}
	return out
}

// loadavg describes how busy the machine is, for the reader of the figures.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "load average unknown"
	}
	f := strings.Fields(string(b))
	return fmt.Sprintf("load average %s %s %s on %d CPUs", f[0], f[1], f[2], runtime.NumCPU())
}
