#!/usr/bin/env bash
# Syscalls and context switches per request of running processes, counted by perf's syscall
# tracepoints (no strace slow-down), while wrk drives a target.
#   usage: sidecar/bench/syscalls.sh URL SECONDS CONNS PID...
#   e.g.   sidecar/bench/syscalls.sh http://127.0.0.1:42541/ 4 50 CLIENT_PID SERVER_PID
# Prints, per process, each counted syscall per request (zeros left out), reads that returned
# EAGAIN (recvfrom/read ret == -11), and context switches. wrk runs on CPU
# ${BENCH_CLIENT_CPU:-1}, bounded by `timeout`.
set -euo pipefail
url=${1:?url} secs=${2:?seconds} conns=${3:?connections}
shift 3
(($# >= 1)) || { sed -n '2,8p' "$0"; exit 2; }
((secs >= 1 && secs <= 60)) || { echo "syscalls.sh: seconds 1..60" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
calls=(epoll_wait epoll_pwait epoll_ctl recvfrom read readv recvmsg writev write sendto sendmsg futex sched_yield)
ev=$(printf 'syscalls:sys_enter_%s,' "${calls[@]}")raw_syscalls:sys_enter,context-switches
perfs=()
for p in "$@"; do
  perf stat -x, -e "$ev" -e syscalls:sys_exit_recvfrom --filter 'ret == -11' \
    -e syscalls:sys_exit_read --filter 'ret == -11' -p "$p" -o "$out/$p" &
  perfs+=($!)
done
sleep 0.3
n=$(timeout $((secs + 30)) taskset -c "${BENCH_CLIENT_CPU:-1}" wrk -t1 -c"$conns" -d"${secs}s" "$url" |
  awk '/requests in/ { print $1 }')
sleep 0.2
kill -INT "${perfs[@]}"
wait "${perfs[@]}" 2>/dev/null || true
echo "requests $n (wrk -t1 -c$conns -d${secs}s $url)"
for p in "$@"; do
  echo "== pid $p ($(cat "/proc/$p/comm" 2>/dev/null || echo gone))"
  awk -F, -v n="$n" '$1 ~ /^[0-9]/ && $1 > 0 {
    ev = $3; sub(/^syscalls:sys_enter_/, "", ev); sub(/^raw_syscalls:sys_enter/, "all syscalls", ev)
    if (ev ~ /sys_exit_/) { sub(/^syscalls:sys_exit_/, "", ev); ev = ev " returning EAGAIN" }
    printf "  %-28s %7.3f per request\n", ev, $1 / n }' "$out/$p"
done
