#!/usr/bin/env bash
# Interleaved wrk rounds over several HTTPS servers already running pinned to CPU 0 (NAME=URL=PID
# each, the first one is the baseline): medians of req/s, p50, p99 and each server's user/kernel
# CPU per request (/proc/PID/stat over the round), context switches per request (voluntary +
# involuntary, summed over the process's threads) and minor page faults per request; at the
# end each server's threads with their context switches over all rounds (who wakes). wrk -t1
# on CPU 1, back to back, or with `--rate N` at N requests per second in all (paced.lua: every
# server at the same load). Bounded: rounds and seconds as given, each wrk under `timeout`.
# docs/measurements/proxy.md has the runs.
# usage: benches/edge/cpu_per_request.sh [--rounds 5] [--duration 5] [--conns 50] [--rate N] \
#            [-H 'Host: x'] nginx=https://127.0.0.1:40443/=PID edge=https://127.0.0.1:41443/=PID ...
set -euo pipefail
lua=${WRK_STATS_LUA:-$(dirname "$0")/../../../shared/peers/lib/wrk-stats.lua}
[[ -f $lua ]] || { echo "$0: $lua not found (set WRK_STATS_LUA to the peers' lib/wrk-stats.lua)" >&2; exit 2; }
declare -A opt=([--conns]=50 [--duration]=5 [--rounds]=5 [--rate]=0)
hdr=() names=() urls=() pids=()
while (($#)); do
  arg=$1
  shift
  if [[ -v opt[$arg] ]]; then opt[$arg]=$1; shift
  elif [[ $arg == -H ]]; then hdr+=(-H "$1"); shift
  elif [[ $arg == *=https://* ]]; then
    names+=("${arg%%=*}"); rest=${arg#*=}; urls+=("${rest%=*}"); pids+=("${rest##*=}")
  else echo "bad argument $arg" >&2; exit 2; fi
done
conns=${opt[--conns]} dur=${opt[--duration]} rounds=${opt[--rounds]} rate=${opt[--rate]}
script=$lua
if ((rate > 0)); then script=$(dirname "$0")/paced.lua; export WRK_STATS_LUA=$lua PACED_RPS=$rate; fi
ticks=$(getconf CLK_TCK)
# user and system ticks, minor faults, context switches of every thread
stat() {
  sed 's/^.*) //' "/proc/$1/stat" | awk '{printf "%s %s %s ", $12, $13, $8}'
  cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {n += $2} END {print n}'
}
# each thread: "tid:comm voluntary involuntary"
threads() { for t in /proc/"$1"/task/*; do printf '%s:%s %s\n' "${t##*/}" "$(tr ' ' _ <"$t"/comm)" "$(awk '/ctxt_switches/ {printf "%s ", $2}' "$t"/status)"; done 2>/dev/null; }
one() { timeout $(($2 + 30)) taskset -c 1 wrk -t1 -c"$conns" -d"$2"s --timeout 5s -s "$script" "${hdr[@]}" "$1" 2>&1 | grep -m1 '^WRKSTATS' || echo "WRKSTATS error"; }
field() { sed -n "s/.* $1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
echo "# wrk -t1 -c$conns -d${dur}s, $rounds interleaved rounds, $( ((rate > 0)) && echo "paced at $rate req/s" || echo "back to back"); loadavg at start $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A rps p50 p99 us sy ctx pf before
for i in "${!names[@]}"; do one "${urls[$i]}" 1 >/dev/null; before[$i]=$(threads "${pids[$i]}"); done
for ((r = 1; r <= rounds; r++)); do
  for i in "${!names[@]}"; do
    read -r u0 s0 f0 c0 < <(stat "${pids[$i]}")
    s=$(one "${urls[$i]}" "$dur")
    read -r u1 s1 f1 c1 < <(stat "${pids[$i]}")
    n=$(field requests "$s"); e=$(( $(field err_connect "$s") + $(field err_read "$s") + $(field err_write "$s") + $(field err_timeout "$s") + $(field err_status "$s") ))
    cu=$(awk -v a=$u0 -v b=$u1 -v n=$n -v t=$ticks 'BEGIN{printf "%.2f", (b-a)/t/n*1e6}')
    cs=$(awk -v a=$s0 -v b=$s1 -v n=$n -v t=$ticks 'BEGIN{printf "%.2f", (b-a)/t/n*1e6}')
    cx=$(awk -v a=$c0 -v b=$c1 -v n=$n 'BEGIN{printf "%.3f", (b-a)/n}')
    fl=$(awk -v a=$f0 -v b=$f1 -v n=$n 'BEGIN{printf "%.3f", (b-a)/n}')
    printf 'round %d %-10s req/s %9.1f p50 %7.3f ms p99 %7.3f ms  cpu/req user %6s us sys %6s us  cs/req %s minflt/req %s  errors %s\n' $r "${names[$i]}" "$(field rps "$s")" "$(field p50_ms "$s")" "$(field p99_ms "$s")" $cu $cs $cx $fl $e
    rps[$i]+="$(field rps "$s") "; p50[$i]+="$(field p50_ms "$s") "; p99[$i]+="$(field p99_ms "$s") "; us[$i]+="$cu "; sy[$i]+="$cs "; ctx[$i]+="$cx "; pf[$i]+="$fl "
  done
done
b=$(median <<<"${rps[0]}"); b99=$(median <<<"${p99[0]}")
for i in "${!names[@]}"; do
  m=$(median <<<"${rps[$i]}"); m99=$(median <<<"${p99[$i]}")
  printf 'median %-10s req/s %9.1f (%.3fx %s) p50 %7.3f p99 %7.3f ms (%.2fx)  cpu/req user %s + sys %s us  cs/req %s minflt/req %s\n' "${names[$i]}" "$m" "$(awk -v a=$m -v b=$b 'BEGIN{print a/b}')" "${names[0]}" "$(median <<<"${p50[$i]}")" "$m99" "$(awk -v a=$m99 -v b=$b99 'BEGIN{print a/b}')" "$(median <<<"${us[$i]}")" "$(median <<<"${sy[$i]}")" "$(median <<<"${ctx[$i]}")" "$(median <<<"${pf[$i]}")"
done
for i in "${!names[@]}"; do
  # context switches per thread over all rounds (voluntary / involuntary), tid:name
  printf 'threads %-10s %s\n' "${names[$i]}" "$(join <(sort <<<"${before[$i]}") <(threads "${pids[$i]}" | sort) 2>/dev/null |
    awk '{printf "%s %d/%d  ", $1, $4 - $2, $5 - $3}')"
done
echo "# loadavg at end $(cut -d' ' -f1-3 /proc/loadavg)"
