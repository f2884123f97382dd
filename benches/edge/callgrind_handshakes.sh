#!/usr/bin/env bash
# Instructions per new TLS connection of a server under callgrind, and where they go.
# Runs CMD pinned to CPU 0 with instrumentation off, waits until PORT completes a handshake and a
# request, warms up, then instruments four runs of the `handshakes` client (4 loops, CPU 1),
# each dumped on its own:
#   .1  full:      N connections, each a full handshake + one GET   -> Ir / connections
#   .2  resumed:   N connections (the first one full)               -> (Ir - full) / resumed
#   .3, .4  keepalive: K1 and K2 requests on the same 5 handshakes  -> (Ir3 - Ir4) / (K1 - K2)
# The connection counts are the client's own (`all_done`, `all_full`, `all_resumed`: the test
# loadtest/tests/handshakes.rs checks they equal the server's). A connection's cost minus a
# keep-alive request's is the handshake and the connection's set-up and close.
# Then the full run's inclusive instructions per connection of the functions matching
# CG_PARTS (default: ring, rustls, pingora and our crates' main entry points).
# usage: benches/edge/callgrind_handshakes.sh NAME PORT CMD...   (CG_N, CG_K1, CG_K2, CG_DIR)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
name=$1 port=$2
shift 2
peers=${PEERS_HOME:-/var/tmp/rampart-peers}
ca=${CG_CA:-$peers/pki/ca.crt}
client=${HANDSHAKES_BIN:-$root/target/release/handshakes}
n=${CG_N:-1000} k1=${CG_K1:-20000} k2=${CG_K2:-5000}
dir=${CG_DIR:-/var/tmp}
out=$dir/cgh-$name.out
rm -f "$out"*
export MIMALLOC_PURGE_DELAY=0 MIMALLOC_ALLOW_THP=0
taskset -c 0 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" "$@" >"$dir/cgh-$name.log" 2>&1 &
vp=$!
trap 'kill -INT $vp 2>/dev/null; sleep 2; kill -TERM $vp 2>/dev/null || true' EXIT
cl() {
  # Long step timeout: quiet-run (anyone's timed run) pauses callgrind.
  taskset -c 1 "$client" --addr "127.0.0.1:$port" --ca "$ca" --warmup 0 --step-timeout 600 "$@"
}
ready=0
for _ in $(seq 300); do
  if cl --mode full --conns 1 --count 1 --duration 5 >/dev/null 2>&1; then ready=1; break; fi
  sleep 1
done
((ready)) || { echo "$0: $port never answered; $dir/cgh-$name.log" >&2; exit 1; }
cl --mode full --conns 4 --duration 600 --count 50 >/dev/null
get() { sed -n "s/.* $1=\\([0-9]*\\).*/\\1/p" <<<"$2"; }
callgrind_control -i on $vp >/dev/null
full=$(cl --mode full --conns 4 --duration 600 --count "$n")
callgrind_control -d $vp >/dev/null
resumed=$(cl --mode resumed --conns 4 --duration 600 --count "$n")
callgrind_control -d $vp >/dev/null
ka1=$(cl --mode keepalive --conns 4 --duration 600 --count "$k1")
callgrind_control -d $vp >/dev/null
ka2=$(cl --mode keepalive --conns 4 --duration 600 --count "$k2")
callgrind_control -d $vp >/dev/null
callgrind_control -i off $vp >/dev/null
ir() { sed -n 's/^summary: //p' "$1"; }
nf=$(get all_done "$full") rf=$(get all_full "$resumed") rr=$(get all_resumed "$resumed")
n3=$(get all_done "$ka1") n4=$(get all_done "$ka2")
awk -v name="$name" -v i1="$(ir "$out.1")" -v i2="$(ir "$out.2")" -v i3="$(ir "$out.3")" -v i4="$(ir "$out.4")" \
  -v nf="$nf" -v rf="$rf" -v rr="$rr" -v n3="$n3" -v n4="$n4" -v f="$out" -v load="$(cut -d' ' -f1-3 /proc/loadavg)" 'BEGIN {
  full = i1 / nf; req = (i3 - i4) / (n3 - n4); res = (i2 - rf * full) / rr
  printf "%s full: %d connections, Ir/connection %.0f | resumed: %d resumed + %d full, Ir/resumed connection %.0f | keepalive: %d - %d requests, Ir/request %.0f\n", name, nf, full, rr, rf, res, n3, n4, req
  printf "%s handshake + connection set-up (minus one keep-alive request): full %.0f, resumed %.0f  files=%s.1-4 load=%s\n", name, full - req, res - req, f, load }'
python3 "$here/cg_handshake_parts.py" "$out.1" "$nf" "$out.2" "$rr" "$rf" ${CG_PARTS:+"$CG_PARTS"}
