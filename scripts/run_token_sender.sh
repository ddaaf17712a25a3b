#!/usr/bin/env bash
# Builds bin/token-refresh-sender when it is missing or older than the
# sources, then runs it from the repository root with this script's
# arguments (no arguments: the refresh daemon).
#
# The defaults (configs/..., logs/...) are relative to the repository root.
# A relative path you pass in --config, --token-file, --log-file or --socket
# (or in TOKEN_SENDER_CONFIG, TOKEN_SENDER_TOKEN_FILE, TOKEN_SENDER_LOG_FILE,
# TOKEN_SENDER_SOCKET) means what it says where you typed it: the script
# makes it absolute against your current directory before changing to the root.
set -euo pipefail

caller="$PWD"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="bin/token-refresh-sender"

# abs prints $1 made absolute against the caller's directory; empty values,
# absolute paths and tcp:// addresses are kept as they are.
abs() {
	case "$1" in
	"" | /* | tcp://*) printf '%s' "$1" ;;
	*) printf '%s/%s' "$caller" "$1" ;;
	esac
}

args=()
value_of="" # the flag whose value comes next
while [ $# -gt 0 ]; do
	a="$1"
	shift
	if [ -n "$value_of" ]; then
		args+=("$(abs "$a")")
		value_of=""
		continue
	fi
	case "$a" in
	--)
		args+=("$a" "$@")
		break
		;;
	--config | --token-file | --log-file | --socket)
		args+=("$a")
		value_of="$a"
		;;
	--config=* | --token-file=* | --log-file=* | --socket=*)
		args+=("${a%%=*}=$(abs "${a#*=}")")
		;;
	*) args+=("$a") ;;
	esac
done

for var in TOKEN_SENDER_CONFIG TOKEN_SENDER_TOKEN_FILE TOKEN_SENDER_LOG_FILE; do
	if [ -n "${!var:-}" ]; then
		export "$var=$(abs "${!var}")"
	fi
done
if [ -n "${TOKEN_SENDER_SOCKET:-}" ]; then
	sockets=""
	while IFS= read -r line; do
		sockets+="$(abs "$line")"$'\n'
	done <<<"$TOKEN_SENDER_SOCKET"
	export TOKEN_SENDER_SOCKET="$sockets"
fi

cd "$root"

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

# Cluster mode (--etcd-endpoints) runs in the cluster build, which the
# default binary hands over to from its own directory.
cluster_bin="$bin-cluster"
wants_cluster() {
	[ -n "${TOKEN_SENDER_ETCD_ENDPOINTS:-}" ] && return 0
	local a
	for a in ${args[@]+"${args[@]}"}; do
		case "$a" in --etcd-endpoints | --etcd-endpoints=*) return 0 ;; esac
	done
	return 1
}
if wants_cluster && { [ ! -x "$cluster_bin" ] || [ "$cluster_bin" -ot "$bin" ]; }; then
	echo "Building $cluster_bin ..." >&2
	go build -tags cluster -o "$cluster_bin" ./cmd/token-refresh-sender
fi

mkdir -p logs
# One processor from the start, as the systemd unit and launchd agent run
# it (README.md, "Performance"); a GOMAXPROCS of your own wins.
export GOMAXPROCS="${GOMAXPROCS:-1}"
exec "$bin" ${args[@]+"${args[@]}"}
