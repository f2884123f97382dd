#!/bin/bash
# Instructions per request under callgrind (docs/measurements/proxy.md): runs CMD pinned to CPU 0
# with instrumentation off, waits until PORT answers HTTPS (not merely accepts: the edge binds
# before it compiles its WAF rules), warms up 3 s, then instruments two `wrk -t1 -c10` runs on
# CPU 1 back to back, a long one (${CG_SECS:-15} s) and a short one (${CG_SHORT:-5} s), each
# dumped on its own. Both open the same 10 connections (10 full TLS handshakes) and pay the same
# fixed costs, so their difference is requests only:
#   per request    = (Ir_long - Ir_short) / (requests_long - requests_short)
#   per connection = (Ir_short - per request x requests_short) / 10   (handshake and set-up)
# Nothing is a constant measured once. Allocations (calls of mimalloc's malloc/realloc) are
# differenced the same way. Prints both, and `cg_parts.py`'s per-function table with PATTERN
# (CG_PARTS, default the edge's own crates) when set.
# Output files: $CG_DIR/cg-NAME.out.1 (long) and .2 (short); CG_DIR defaults to /var/tmp.
# usage: benches/edge/callgrind.sh NAME PORT CMD...
set -u
here=$(dirname "$0")
lua=${WRK_STATS_LUA:-$here/../../../shared/peers/lib/wrk-stats.lua}
[[ -f $lua ]] || { echo "$0: $lua not found (set WRK_STATS_LUA to the peers' lib/wrk-stats.lua)" >&2; exit 2; }
name=$1 port=$2; shift 2
dir=${CG_DIR:-/var/tmp}
out=$dir/cg-$name.out
rm -f $out*
# The edge's allocator settings, given to every server alike (the edge would otherwise re-execute
# itself to set them, and valgrind does not follow that exec).
export MIMALLOC_PURGE_DELAY=0 MIMALLOC_ALLOW_THP=0
taskset -c 0 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=$out "$@" > $dir/cg-$name.log 2>&1 &
vp=$!
for i in $(seq 1 600); do curl -sk -o /dev/null --max-time 5 -H 'Host: localhost' https://127.0.0.1:$port/ && break; sleep 0.5; done
sleep 1
url=https://127.0.0.1:$port/
taskset -c 1 wrk -t1 -c10 -d3s -H 'Host: localhost' $url > /dev/null 2>&1
run() { taskset -c 1 wrk -t1 -c10 -d$1s -H 'Host: localhost' -s "$lua" $url | sed -n 's/.*requests=\([0-9]*\).*/\1/p'; }
callgrind_control -i on $vp > /dev/null
n1=$(run ${CG_SECS:-15})
callgrind_control -d $vp > /dev/null # writes .1 and zeroes the counters
n2=$(run ${CG_SHORT:-5})
callgrind_control -d $vp > /dev/null # .2
callgrind_control -i off $vp > /dev/null
kill -INT $vp; sleep 2; kill -TERM $vp 2>/dev/null; wait $vp 2>/dev/null
ir() { sed -n "s/^summary: //p" $1; }
# Calls of mimalloc's allocation entry points, summed over every call site of the file.
# Callgrind keeps one name table for fn= and cfn= and writes a name only where its id first
# appears, which may be an fn= line: names are learnt from both, the callee set by cfn= only.
allocs() { awk '/^c?fn=\(/ { id = $1; sub(/^c?fn=/, "", id); sub(/\).*/, ")", id); f = $0; sub(/^c?fn=\([0-9]+\) ?/, "", f); if (f != "") nm[id] = f; if ($0 ~ /^cfn=/) cur = nm[id]; next }
  /^calls=/ { if (cur ~ /^mi_(malloc|realloc|zalloc)_aligned$/) { split($1, c, "="); s += c[2] } }
  END { print s + 0 }' $1; }
[[ $n1 =~ ^[0-9]+$ && $n2 =~ ^[0-9]+$ ]] && (( n1 > n2 )) || { echo "$0: no usable request counts (long run: '$n1', short run: '$n2')" >&2; exit 1; }
i1=$(ir $out.1) i2=$(ir $out.2) a1=$(allocs $out.1) a2=$(allocs $out.2)
awk -v name=$name -v i1=$i1 -v i2=$i2 -v n1=$n1 -v n2=$n2 -v a1=$a1 -v a2=$a2 -v f=$out -v load="$(cut -d' ' -f1-3 /proc/loadavg)" 'BEGIN {
  r = (i1 - i2) / (n1 - n2)
  printf "%s requests=%d/%d Ir=%d/%d Ir/request=%.0f Ir/connection=%.0f allocs/request=%.1f files=%s.1,.2 load=%s\n",
    name, n1, n2, i1, i2, r, (i2 - r * n2) / 10, (a1 - a2) / (n1 - n2), f, load }'
if [[ -n ${CG_PARTS:-} ]]; then
  python3 $here/cg_parts.py $out.1 $n1 $out.2 $n2 "$CG_PARTS"
fi
