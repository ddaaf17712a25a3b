#!/usr/bin/env bash
# Runs the benchmarks and prints their figures: start-up, memory and idle
# wake-ups of the binary (bench/perf), availability under injected faults
# (bench/chaos), and the Go micro-benchmarks.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
echo "== bench/perf"; go run ./bench/perf "$@"
echo; echo "== bench/chaos"; go run ./bench/chaos
echo; echo "== go test -bench"; go test -run '^$' -bench . -benchtime 200x ./schwab/ ./delivery/ . 2>/dev/null | grep -E '^(Benchmark|ok)'
