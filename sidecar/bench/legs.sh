#!/usr/bin/env bash
# Where one request's time goes, leg by leg, through a forwarder pair at one keep-alive
# connection: `perf trace record` records the syscalls of the load client, the client-side forwarder,
# the server-side forwarder and the upstream while sidecar/examples/latency.rs sends requests to
# one target; then, per request, each hop's wake-up (from the sender's send returning to the
# receiver's epoll_wait/poll/read returning) and each process's own time (from its wake-up to the
# end of the send that passes the request on), medians over the requests.
#   usage: sidecar/bench/legs.sh [--seconds S] ADDR CLIENT_SIDE_PIDS SERVER_SIDE_PIDS UPSTREAM_PIDS
#   e.g.   sidecar/bench/legs.sh 127.0.0.1:47521 $(cat /var/tmp/sl-tcp/client.pid) \
#            $(cat /var/tmp/sl-tcp/server.pid) $(pgrep -d, -f 'nginx: worker' …)
# A pair in one process (HAProxy's) passes the same PID twice. PIDs are comma-separated lists.
# Tracing costs a few µs per syscall: compare targets traced the same way, not with latency.sh.
# LEGS_KEEP=1 keeps the raw trace (its folder is printed on stderr).
# The client runs on CPU ${BENCH_CLIENT_CPU:-1}; ${LATENCY_BIN:-target/release/examples/latency}.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${LATENCY_BIN:-$root/target/release/examples/latency}
secs=4
if [[ ${1:-} == --seconds ]]; then secs=$2; shift 2; fi
(($# == 4)) || { sed -n '2,15p' "$0"; exit 2; }
((secs >= 2 && secs <= 30)) || { echo "legs.sh: --seconds 2..30" >&2; exit 2; }
addr=$1 client_side=$2 server_side=$3 upstream=$4
[[ $addr == 127.0.0.1:* ]] || { echo "legs.sh: loopback only" >&2; exit 2; }
[[ -x $bin ]] || { echo "legs.sh: build the client first (cargo build --release -p rampart-sidecar --example latency)" >&2; exit 2; }
out=$(mktemp -d)
if [[ -n ${LEGS_KEEP:-} ]]; then echo "# trace kept in $out" >&2; else trap 'rm -rf "$out"' EXIT; fi
tids() { # comma-separated pids -> "tid role" lines
  local p t
  for p in ${1//,/ }; do for t in /proc/"$p"/task/*; do echo "${t##*/} $2"; done; done
}
taskset -c "${BENCH_CLIENT_CPU:-1}" "$bin" --seconds "$secs" "target=$addr" >"$out/latency.txt" &
client=$!
sleep 1.2 # the client's warm-up second
{ tids "$client" K; tids "$client_side" C; tids "$server_side" S; tids "$upstream" U; } >"$out/roles"
all=$(echo "$client,$client_side,$server_side,$upstream" | tr ',' '\n' | sort -u | paste -sd,)
# `perf trace record` only copies the kernel's buffers (pinned beside the client); decoded after.
timeout --signal=INT $((secs - 1)) taskset -c "${BENCH_CLIENT_CPU:-1}" perf trace record -p "$all" \
  -o "$out/data" >/dev/null 2>&1 || true
perf script -i "$out/data" >"$out/trace" 2>/dev/null
wait "$client"
echo "# load $(cut -d' ' -f1-3 /proc/loadavg); the client's own figures (traced period included):"
grep LATENCY "$out/latency.txt" || true
python3 "$(dirname "$0")/legs.py" "$out/roles" "$out/trace"
