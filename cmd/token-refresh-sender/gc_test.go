package main

import (
	"bytes"
	"math"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/schwabtools/token-refresh-sender/schwab"
)

// TestIdleGC: the periodic collection is off and the memory limit set,
// unless GOGC or GOMEMLIMIT is in the environment.
func TestIdleGC(t *testing.T) {
	restore := func() {
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(math.MaxInt64)
	}
	restore()
	defer restore()
	for _, tc := range []struct {
		name, gogc, memlimit string
		wantPercent          int
		wantLimit            int64
	}{
		{"no environment", "", "", -1, idleMemoryLimit},
		{"GOGC set", "50", "", 100, math.MaxInt64},
		{"GOMEMLIMIT set", "", "64MiB", 100, math.MaxInt64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			restore()
			t.Setenv("GOGC", tc.gogc)
			t.Setenv("GOMEMLIMIT", tc.memlimit)
			idleGC()
			percent := debug.SetGCPercent(100)
			limit := debug.SetMemoryLimit(math.MaxInt64)
			if percent != tc.wantPercent || limit != tc.wantLimit {
				t.Errorf("GC percent %d, memory limit %d; want %d, %d", percent, limit, tc.wantPercent, tc.wantLimit)
			}
		})
	}
}

// TestTuneRuntime: one processor and no heap profiling, unless
// GOMAXPROCS is in the environment (then only the profiling is off).
func TestTuneRuntime(t *testing.T) {
	procs, rate := runtime.GOMAXPROCS(0), runtime.MemProfileRate
	defer func() { runtime.GOMAXPROCS(procs); runtime.MemProfileRate = rate }()
	for _, tc := range []struct {
		env       string
		wantProcs int
	}{{"", 1}, {"3", 3}} {
		runtime.GOMAXPROCS(3)
		runtime.MemProfileRate = 512 << 10
		t.Setenv("GOMAXPROCS", tc.env)
		tuneRuntime()
		if got := runtime.GOMAXPROCS(0); got != tc.wantProcs || runtime.MemProfileRate != 0 {
			t.Errorf("GOMAXPROCS=%q: %d processors, MemProfileRate %d; want %d, 0", tc.env, got, runtime.MemProfileRate, tc.wantProcs)
		}
	}
}

// TestRunCmd_idleGC: run applies idleGC, except with --metrics-addr
// (scrapes allocate between cycles and wake the process anyway).
func TestRunCmd_idleGC(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra []string
		want  int
	}{
		{"plain run", nil, 1},
		{"with metrics", []string{"--metrics-addr", "127.0.0.1:0"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			var out, errOut bytes.Buffer
			// --interval 0s stops the run at its first check: only the
			// wiring before it is exercised.
			args := append([]string{"run", "--interval", "0s", "--token-file", t.TempDir() + "/tokens.json"}, tc.extra...)
			code := run(args, &process{out: &out, err: &errOut, in: strings.NewReader(""),
				schwabHTTP: schwab.NewHTTPClient(nil), idleGC: func() { calls++ }})
			if code != exitUsage {
				t.Fatalf("exit code %d, want %d (usage):\n%s%s", code, exitUsage, out.String(), errOut.String())
			}
			if calls != tc.want {
				t.Errorf("idleGC called %d times, want %d", calls, tc.want)
			}
		})
	}
}
