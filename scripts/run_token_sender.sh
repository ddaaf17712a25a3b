#!/usr/bin/env bash
# Builds bin/token-refresh-sender when it is missing or older than the
# sources, then runs it from the repository root with this script's
# arguments (no arguments: the refresh daemon).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bin="bin/token-refresh-sender"

needs_build() {
	[ -x "$bin" ] || return 0
	[ -n "$(find . -path ./bin -prune -o \( -name '*.go' -o -name go.mod -o -name go.sum \) -newer "$bin" -print -quit)" ]
}

if needs_build; then
	if ! command -v go >/dev/null 2>&1; then
		echo "run_token_sender.sh: Go is not installed (or not on PATH); install Go 1.26+ from your package manager" >&2
		exit 1
	fi
	echo "Building $bin ..." >&2
	go build -o "$bin" ./cmd/token-refresh-sender
fi

mkdir -p logs
exec "$bin" "$@"
