#!/bin/bash
# Instructions per request under callgrind (docs/measurements/proxy.md): runs CMD pinned to CPU 0
# with instrumentation off, waits until PORT answers HTTPS (not merely accepts: the edge binds
# before it compiles its WAF rules), warms up 3 s, instruments one `wrk -t1 -c10 -d${CG_SECS:-15}s`
# on CPU 1, and prints instructions per request with wrk's 10 full handshakes (1.30 M each)
# subtracted. Output file: $CG_DIR/cg-NAME.out.1 (CG_DIR defaults to /var/tmp).
# usage: benches/edge/callgrind.sh NAME PORT CMD...
set -u
lua=${WRK_STATS_LUA:-$(dirname "$0")/../../../shared/peers/lib/wrk-stats.lua}
[[ -f $lua ]] || { echo "$0: $lua not found (set WRK_STATS_LUA to the peers' lib/wrk-stats.lua)" >&2; exit 2; }
name=$1 port=$2; shift 2
out=${CG_DIR:-/var/tmp}/cg-$name.out
rm -f $out*
taskset -c 0 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=$out "$@" > ${CG_DIR:-/var/tmp}/cg-$name.log 2>&1 &
vp=$!
for i in $(seq 1 600); do curl -sk -o /dev/null --max-time 5 -H 'Host: localhost' https://127.0.0.1:$port/ && break; sleep 0.5; done
sleep 1
taskset -c 1 wrk -t1 -c10 -d3s -H 'Host: localhost' https://127.0.0.1:$port/ > /dev/null 2>&1
callgrind_control -i on $vp > /dev/null
r=$(taskset -c 1 wrk -t1 -c10 -d${CG_SECS:-15}s -H 'Host: localhost' -s "$lua" https://127.0.0.1:$port/ | grep WRKSTATS)
callgrind_control -d $vp > /dev/null
callgrind_control -i off $vp > /dev/null
kill -INT $vp; sleep 2; kill -TERM $vp 2>/dev/null; wait $vp 2>/dev/null
n=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$r")
f=$out.1
ir=$(sed -n "s/^summary: //p" $f)
echo "$name requests=$n Ir=$ir Ir/request(handshakes excluded)=$(awk -v a=$ir -v b=$n 'BEGIN{printf "%.0f", (a-13.0e6)/b}') file=$f load=$(cut -d' ' -f1-3 /proc/loadavg)"
