#!/usr/bin/env bash
# Runs the benchmarks and prints their figures: idle wake-ups, private
# memory and start-up of the binary against three loopback token servers
# (bench/perf, about 7 minutes: a 5-minute idle window and 300 forced
# refreshes), availability under injected faults (bench/chaos, 100 s), and
# the Go micro-benchmarks. Arguments go to bench/perf; a quick look:
#   ./bench/run.sh -idle 30s -cycles 30 -runs 5
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
echo "== bench/perf"; go run ./bench/perf "$@"
echo; echo "== bench/chaos"; go run ./bench/chaos
echo; echo "== bench/cluster (needs etcd: apt-get install etcd-server)"; go run ./bench/cluster
echo; echo "== go test -bench"; go test -run '^$' -bench . -benchtime 200x ./schwab/ ./delivery/ ./internal/sysroots/ . 2>/dev/null | grep -E '^(Benchmark|ok)'
