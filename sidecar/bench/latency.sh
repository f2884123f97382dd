#!/usr/bin/env bash
# Added latency at one keep-alive connection, several rounds of sidecar/examples/latency.rs (the
# targets alternate request by request), then per target the median over rounds of its added p50
# (over the first target, the direct upstream), of its CPU per request, its added p99 (over the
# first target's p99 in the same round), and the p50's ratio to the
# --against target (default: the second one).
#   usage: sidecar/bench/latency.sh [--rounds R] [--seconds S] [--against NAME] NAME=ADDR[=PID,…] ...
#   e.g.   sidecar/bench/latency.sh --rounds 3 direct=127.0.0.1:42080 haproxy=127.0.0.1:42511=PID \
#            ours-tcp=127.0.0.1:42521=$(cat /var/tmp/sc/client.pid),$(cat /var/tmp/sc/server.pid)
# The client runs on CPU ${BENCH_CLIENT_CPU:-1} (the servers pinned to the other core); its binary
# is ${LATENCY_BIN:-target/release/examples/latency}
#   (cargo build --release -p rampart-sidecar --example latency). Prints the load average.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${LATENCY_BIN:-$root/target/release/examples/latency}
[[ -x $bin ]] || { echo "latency.sh: build the client first (see the header)" >&2; exit 2; }
rounds=3 secs=10 against="" targets=()
while (($#)); do
  case $1 in
    --rounds) rounds=$2; shift ;;
    --seconds) secs=$2; shift ;;
    --against) against=$2; shift ;;
    *=*) targets+=("$1") ;;
    *) sed -n '2,11p' "$0"; exit 2 ;;
  esac
  shift
done
((rounds >= 1 && rounds <= 15)) || { echo "latency.sh: --rounds 1..15" >&2; exit 2; }
((${#targets[@]} >= 2)) || { echo "latency.sh: at least the direct target and one more" >&2; exit 2; }
[[ -n $against ]] || { against=${targets[1]%%=*}; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for ((r = 1; r <= rounds; r++)); do
  echo "# round $r/$rounds, load $(cut -d' ' -f1-3 /proc/loadavg)"
  timeout $((secs + 60)) taskset -c "${BENCH_CLIENT_CPU:-1}" "$bin" --seconds "$secs" "${targets[@]}" | tee -a "$out"
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v against="$against" '
  /^LATENCY/ {
    delete f
    for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    n = f["name"]; if (!(n in seen)) { seen[n] = 1; order[++k] = n }
    added[n] = added[n] " " f["added_p50_us"]; cpu[n] = cpu[n] " " f["cpu_per_request_us"]
    # p99 over the first target p99 in the same round (its LATENCY line comes first)
    if (n == order[1]) first_p99 = f["p99_us"]
    added99[n] = added99[n] " " (f["p99_us"] - first_p99)
  }
  function median(list,   a, m, i, j, t) {
    m = split(list, a, " "); if (m == 0 || a[1] == "") return ""
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
  }
  END {
    base = median(added[against])
    printf "%-14s %14s %12s %18s %14s\n", "target", "added_p50_us", "÷ " against, "cpu_per_request_us", "added_p99_us"
    for (i = 1; i <= k; i++) {
      n = order[i]; a = median(added[n]); c = median(cpu[n])
      printf "%-14s %14s %12s %18s %14s\n", n, a, (base > 0 ? sprintf("%.2f", a / base) : "-"), c, median(added99[n])
    }
  }' "$out"
