#!/usr/bin/env bash
# Several targets measured interleaved (A B C … A B C …) with wrk, then the medians and the ratio
# of each target to the first one (or to its --against target). Made for our pair beside the peer
# kit's pairs, the direct upstream included, so "added latency" and "× HAProxy" come from one run.
#   usage: sidecar/bench/compare.sh [--conns N] [--duration S] [--rounds R] NAME=URL[=PID,…] ...
#   e.g.   sidecar/bench/compare.sh --conns 1 direct=http://127.0.0.1:42080/ \
#            ours=http://127.0.0.1:42521/ haproxy=http://127.0.0.1:42511/
# wrk (one thread) runs on CPU ${BENCH_CLIENT_CPU:-1}; the servers must be pinned to the other
# core. Bounded: duration <= 60 s, rounds <= 15, every wrk under `timeout`.
# With =PID,… after a URL, the CPU time (utime + stime, /proc) those processes spent per request
# is printed too: on a machine whose other core-sharers take a varying share, it is the figure
# that compares efficiencies (req/s on a saturated core is its inverse).
set -euo pipefail
kit=${PEERS_KIT:-/work/shared/peers}
lua=$kit/lib/wrk-stats.lua
[[ -f $lua ]] || { echo "compare.sh: $lua not found (set PEERS_KIT)" >&2; exit 2; }
conns=50 dur=5 rounds=5 warmup=1
names=() urls=() pids=()
while (($#)); do
  case $1 in
    --conns) conns=$2; shift ;;
    --duration) dur=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    *=http://127.0.0.1:*)
      names+=("${1%%=*}")
      rest=${1#*=}
      if [[ $rest == *=* ]]; then urls+=("${rest%%=*}"); pids+=("${rest#*=}"); else urls+=("$rest"); pids+=(""); fi
      ;;
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
    grep -m1 "^WRKSTATS" || echo "WRKSTATS error"
}
ticks=$(getconf CLK_TCK)
cpu_ticks() { # comma-separated pids -> summed utime+stime ticks
  local t=0 p
  for p in ${1//,/ }; do t=$((t + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}'))); done
  echo "$t"
}
field() { sed -n "s/.* $1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) { print "nan"; exit } if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "# wrk -t1 -c$conns -d${dur}s on CPU $cpu, $rounds interleaved rounds; loadavg at start $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A rps p50 p99 cpu_us
for i in "${!names[@]}"; do
  ((warmup > 0)) && one "${urls[$i]}" "$warmup" >/dev/null
done
for ((r = 1; r <= rounds; r++)); do
  for i in "${!names[@]}"; do
    c0=$(cpu_ticks "${pids[$i]}")
    s=$(one "${urls[$i]}" "$dur")
    c1=$(cpu_ticks "${pids[$i]}")
    [[ $s == "WRKSTATS error" ]] && { echo "round $r ${names[$i]}: wrk failed" >&2; exit 1; }
    bad=$(($(field err_status "$s") + $(field err_connect "$s") + $(field err_read "$s") + $(field err_write "$s") + $(field err_timeout "$s")))
    ((bad == 0)) || echo "round $r ${names[$i]}: $bad errors" >&2
    rps[$i]+="$(field rps "$s") "
    p50[$i]+="$(field p50_ms "$s") "
    p99[$i]+="$(field p99_ms "$s") "
    us=$(awk -v c=$((c1 - c0)) -v t="$ticks" -v n="$(field requests "$s")" 'BEGIN { printf "%.1f", (n > 0 ? c / t / n * 1e6 : 0) }')
    cpu_us[$i]+="$us "
    printf 'round %2d %-10s req/s %9.1f  p50 %7.3f ms  p99 %7.3f ms  cpu/request %6s µs\n' "$r" "${names[$i]}" \
      "$(field rps "$s")" "$(field p50_ms "$s")" "$(field p99_ms "$s")" "${pids[$i]:+$us}"
  done
done
echo "# loadavg at end $(cut -d' ' -f1-3 /proc/loadavg)"
base_rps=$(median <<<"${rps[0]}")
base_p50=$(median <<<"${p50[0]}")
for i in "${!names[@]}"; do
  m_rps=$(median <<<"${rps[$i]}")
  m_p50=$(median <<<"${p50[$i]}")
  m_p99=$(median <<<"${p99[$i]}")
  m_cpu=$(median <<<"${cpu_us[$i]}")
  awk -v n="${names[$i]}" -v a="$m_rps" -v b="$m_p50" -v c="$m_p99" -v ba="$base_rps" -v bb="$base_p50" -v first="${names[0]}" -v u="$m_cpu" -v has="${pids[$i]}" 'BEGIN {
    printf "median %-10s req/s %9.1f  p50 %7.3f ms  p99 %7.3f ms  | req/s %.3f× %s, p50 %+.0f µs over %s",
      n, a, b, c, (ba > 0 ? a / ba : 0), first, (b - bb) * 1000, first
    if (has != "") printf "  | cpu/request %.1f µs", u
    printf "\n" }'
done
