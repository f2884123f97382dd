#!/usr/bin/env bash
# Several targets measured interleaved (A B C … A B C …) with wrk, then the medians and the ratio
# of each target to the first one (or to its --against target). Made for our pair beside the peer
# kit's pairs, the direct upstream included, so "added latency" and "× HAProxy" come from one run.
#   usage: sidecar/bench/compare.sh [--conns N] [--duration S] [--rounds R] NAME=URL ...
#   e.g.   sidecar/bench/compare.sh --conns 1 direct=http://127.0.0.1:42080/ \
#            ours=http://127.0.0.1:42521/ haproxy=http://127.0.0.1:42511/
# wrk (one thread) runs on CPU ${BENCH_CLIENT_CPU:-1}; the servers must be pinned to the other
# core. Bounded: duration <= 60 s, rounds <= 15, every wrk under `timeout`.
set -euo pipefail
kit=${PEERS_KIT:-/work/shared/peers}
lua=$kit/lib/wrk-stats.lua
[[ -f $lua ]] || { echo "compare.sh: $lua not found (set PEERS_KIT)" >&2; exit 2; }
conns=50 dur=5 rounds=5 warmup=1
names=() urls=()
while (($#)); do
  case $1 in
    --conns) conns=$2; shift ;;
    --duration) dur=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    *=http://127.0.0.1:*) names+=("${1%%=*}"); urls+=("${1#*=}") ;;
    *) echo "compare.sh: unknown argument '$1' (targets are NAME=http://127.0.0.1:PORT/)" >&2; exit 2 ;;
  esac
  shift
done
((${#names[@]} >= 1)) || { sed -n '2,9p' "$0"; exit 2; }
((dur >= 1 && dur <= 60 && rounds >= 1 && rounds <= 15)) || { echo "compare.sh: duration 1..60, rounds 1..15" >&2; exit 2; }
cpu=${BENCH_CLIENT_CPU:-1}
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true

one() { # url seconds -> WRKSTATS line
  timeout $(($2 + 30)) taskset -c "$cpu" wrk -t1 -c"$conns" -d"$2"s --timeout 5s -s "$lua" "$1" 2>&1 |
    grep -m1 '^WRKSTATS' || echo "WRKSTATS error"
}
field() { sed -n "s/.* $1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) { print "nan"; exit } if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "# wrk -t1 -c$conns -d${dur}s on CPU $cpu, $rounds interleaved rounds; loadavg at start $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A rps p50 p99
for i in "${!names[@]}"; do
  ((warmup > 0)) && one "${urls[$i]}" "$warmup" >/dev/null
done
for ((r = 1; r <= rounds; r++)); do
  for i in "${!names[@]}"; do
    s=$(one "${urls[$i]}" "$dur")
    [[ $s == "WRKSTATS error" ]] && { echo "round $r ${names[$i]}: wrk failed" >&2; exit 1; }
    bad=$(($(field err_status "$s") + $(field err_connect "$s") + $(field err_read "$s") + $(field err_write "$s") + $(field err_timeout "$s")))
    ((bad == 0)) || echo "round $r ${names[$i]}: $bad errors" >&2
    rps[$i]+="$(field rps "$s") "
    p50[$i]+="$(field p50_ms "$s") "
    p99[$i]+="$(field p99_ms "$s") "
    printf 'round %2d %-10s req/s %9.1f  p50 %7.3f ms  p99 %7.3f ms\n' "$r" "${names[$i]}" \
      "$(field rps "$s")" "$(field p50_ms "$s")" "$(field p99_ms "$s")"
  done
done
echo "# loadavg at end $(cut -d' ' -f1-3 /proc/loadavg)"
base_rps=$(median <<<"${rps[0]}")
base_p50=$(median <<<"${p50[0]}")
for i in "${!names[@]}"; do
  m_rps=$(median <<<"${rps[$i]}")
  m_p50=$(median <<<"${p50[$i]}")
  m_p99=$(median <<<"${p99[$i]}")
  awk -v n="${names[$i]}" -v a="$m_rps" -v b="$m_p50" -v c="$m_p99" -v ba="$base_rps" -v bb="$base_p50" -v first="${names[0]}" 'BEGIN {
    printf "median %-10s req/s %9.1f  p50 %7.3f ms  p99 %7.3f ms  | req/s %.3f× %s, p50 %+.0f µs over %s\n",
      n, a, b, c, (ba > 0 ? a / ba : 0), first, (b - bb) * 1000, first }'
done
