#!/usr/bin/env bash
# Instructions per request of one side of a sidecar pair, counted by callgrind (deterministic:
# the figure does not move with the machine's load, unlike CPU time).
#   usage: sidecar/bench/callgrind.sh BINARY server|client tcp|http [TAG]
# Starts a pair (pair.sh, offset ${SIDECAR_PAIR_OFFSET:-570}) whose SIDE runs under
# `valgrind --tool=callgrind`, warms it up with `wrk -c10` for 3 s, zeroes the counters, runs
# two windows (`wrk -t1 -c10 -d${CG_SHORT:-2}s`, then `-d${CG_SECONDS:-8}s`), each counted on its own, stops
# the pair and prints Ir per request of the long window (all threads: workers and the log
# writer; with the share of its 10 new connections' handshakes), and the difference of the two
# windows divided by the difference of their requests (the handshakes cancel out).
# CG_COUNT="N1 N2": windows of N1 and N2 requests (h2load) instead of times, for a loaded machine.
# The profile stays in ${CG_DIR:-/var/tmp/rampart-callgrind}/TAG.out.* for callgrind_annotate.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$(realpath "${1:?binary}") side=${2:?server or client} mode=${3:?tcp or http}
tag=${4:-$side-$mode}
[[ $side == server || $side == client ]] || { echo "callgrind.sh: side is server or client" >&2; exit 2; }
out=${CG_DIR:-/var/tmp/rampart-callgrind}
secs=${CG_SECONDS:-8}
base=${PEERS_PORT_BASE:-38000}
offset=${SIDECAR_PAIR_OFFSET:-570}
mkdir -p "$out"
rm -f "$out/$tag.out"*
# The wrapper pair.sh starts as the sidecar binary: SIDE under callgrind, the other side plain.
wrap=$out/$tag.wrap
cat >"$wrap" <<EOT
#!/bin/sh
case "\$*" in
  *$side.toml*) exec valgrind --tool=callgrind --callgrind-out-file=$out/$tag.out $bin "\$@" ;;
  *) exec $bin "\$@" ;;
esac
EOT
chmod +x "$wrap"
export SIDECAR_BIN=$wrap SIDECAR_BENCH_DIR=$out/$tag.pair SIDECAR_PAIR_OFFSET=$offset
url=$("$root/sidecar/bench/pair.sh" start "$mode")
trap '"$root/sidecar/bench/pair.sh" stop' EXIT
pid=$(cat "$out/$tag.pair/$side.pid")
load() { timeout $(($1 + 60)) taskset -c "${BENCH_CLIENT_CPU:-1}" wrk -t1 -c10 -d"$1s" "$url" | awk '/requests in/ { print $1 }'; }
if [[ -n ${CG_COUNT:-} ]]; then
  # A fixed number of requests per window instead of a time (a starved, idle-priority
  # callgrind run may serve none in a short window): h2load, HTTP/1.1, 10 keep-alive
  # connections; prints the requests that succeeded.
  load() {
    timeout 600 taskset -c "${BENCH_CLIENT_CPU:-1}" h2load --h1 -n "$1" -c 10 -t 1 "$url" |
      awk '/^requests:/ { print $8 }'
  }
fi
window() { # seconds -> "requests Ir" of one window (10 new connections, then keep-alive)
  callgrind_control -z "$pid" >/dev/null
  local n
  n=$(load "$1")
  callgrind_control -d "$pid" >/dev/null
  local f
  f=$(ls -t "$out/$tag.out".* | head -1)
  echo "$n $(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')"
}
if [[ -n ${CG_COUNT:-} ]]; then
  read -r c1 c2 <<<"$CG_COUNT"
  load 200 >/dev/null
  read -r n1 i1 < <(window "$c1")
  read -r n2 i2 < <(window "$c2")
else
  load 3 >/dev/null
  read -r n1 i1 < <(window "${CG_SHORT:-2}")
  read -r n2 i2 < <(window "$secs")
fi
# Both windows open 10 connections (handshakes): the difference is requests only.
echo "$tag: requests $n2, Ir $i2, per request $((i2 / n2)) (handshakes included), $(((i2 - i1) / (n2 - n1))) (without: windows of $n1 and $n2 requests)"
