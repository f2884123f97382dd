#!/usr/bin/env bash
# New TLS connections per second and server CPU per full and per resumed handshake: the edge and
# the peer kit's TLS listeners (nginx-proxy, HAProxy, Envoy), interleaved rounds, medians.
#
# The client is `rampart-loadtest`'s `handshakes` (rustls; wrk cannot do this: it resumes
# sessions across reconnects, and one wrk core saturates before the servers do). Each connection:
# TCP connect, TLS handshake, one `GET / HTTP/1.1` (`Connection: close`) read to its end, the
# server's close. Modes: `full` (client resumption disabled), `resumed` (one shared client
# session store; the client fails the run when under 99 % of the handshakes resumed) and
# `keepalive` (one handshake per loop, then requests back to back: the per-request CPU, which is
# subtracted to give the handshake's own share).
#
# Server CPU = utime + stime from /proc/PID/stat of every process listening on the server's
# port (nginx: master and worker), over the client's measured window, per connection. It does
# not depend on the client keeping up; the client's own CPU is printed to show whether it did.
#
#   usage: benches/edge/handshakes.sh [--rounds 3] [--duration 4] [--conns 16] [--clients 1]
#            [--modes "full resumed keepalive"] [--tls12] [--suite RUSTLS_NAME|""] [--ca CA.pem]
#            [--name localhost]
#            NAME=127.0.0.1:PORT ...
#   start an edge for it (own session, CPU 0, the bench config with this kit's certificate and
#   upstream; prints its pid), or only write that config (prints its path):
#          benches/edge/handshakes.sh start-edge BIN TLS_PORT [DIR]
#          benches/edge/handshakes.sh edge-config TLS_PORT [DIR]
#
# Needs: the peers running (`PEERS_HOME`, `PEERS_PORT_BASE`: ../shared/peers/start.sh upstream
# nginx-proxy haproxy envoy), the client built (`cargo build --release -p rampart-loadtest --bin
# handshakes`, or HANDSHAKES_BIN), every server pinned to CPU 0 in its own session (the kit does
# that; `start-edge` too). The client runs on CPU ${BENCH_CLIENT_CPU:-1}. Run it through
# benches/quiet-run. docs/measurements/proxy.md "Session 15 (handshakes)" has the runs.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
peers=${PEERS_HOME:-/var/tmp/rampart-peers}
base=${PEERS_PORT_BASE:-38000}
[[ -f $peers/ports.env ]] && base=$(sed -n 's/^PEERS_PORT_BASE=//p' "$peers/ports.env" | head -1)
base=${base:-38000}

# The session-14 bench config (examples/bench/edge-bench.toml: WAF PL1 block, every protection on,
# one thread) with this kit's certificate and upstream, on PORT (+100 plain, +200 admin), in DIR.
edge_config() {
  local port=$1 dir=$2
  mkdir -p "$dir"
  sed -e "s#/var/tmp/rampart-peers/pki#$peers/pki#g" \
    -e "s#127.0.0.1:18443#127.0.0.1:$port#" -e "s#127.0.0.1:18080#127.0.0.1:$((port + 100))#" \
    -e "s#127.0.0.1:19911#127.0.0.1:$((port + 200))#" -e "s#127.0.0.1:38080#127.0.0.1:$((base + 80))#" \
    -e "s#/tmp/rampart-bench-access.log#$dir/access.log#" \
    "$root/examples/bench/edge-bench.toml" >"$dir/edge.toml"
  echo "$dir/edge.toml"
}
if [[ ${1:-} == edge-config ]]; then
  edge_config "$2" "${3:-/var/tmp/rampart-hs-edge-$2}"
  exit 0
fi
if [[ ${1:-} == start-edge ]]; then
  bin=$2 port=$3 dir=${4:-/var/tmp/rampart-hs-edge-$3}
  config=$(edge_config "$port" "$dir")
  rm -f "$dir/pid"
  setsid sh -c 'echo $$ >"$0"; exec taskset -c "${BENCH_SERVER_CPU:-0}" "$@"' "$dir/pid" \
    "$bin" run --config "$config" >"$dir/edge.log" 2>&1 </dev/null &
  for _ in $(seq 100); do
    ss -Htln "sport = :$port" | grep -q . && break
    sleep 0.1
  done
  ss -Htln "sport = :$port" | grep -q . || { echo "start-edge: nothing listens on $port; $dir/edge.log:" >&2; tail "$dir/edge.log" >&2; exit 1; }
  cat "$dir/pid"
  exit 0
fi

client=${HANDSHAKES_BIN:-$root/target/release/handshakes}
[[ -x $client ]] || { echo "$0: build the client: cargo build --release -p rampart-loadtest --bin handshakes" >&2; exit 2; }
rounds=3 dur=4 conns=16 clients=1 modes="full resumed keepalive" tls=() ca=$peers/pki/ca.crt name=localhost
# One suite offered, so every server negotiates the same (browsers offer AES-128-GCM first; the
# key schedule's hash, SHA-256 or SHA-384, is a large part of a handshake's cost).
suite=${HANDSHAKES_SUITE:-TLS13_AES_128_GCM_SHA256}
names=() addrs=()
while (($#)); do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --duration) dur=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    --tls12) tls=(--tls12); [[ -z ${HANDSHAKES_SUITE:-} ]] && suite=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256; shift ;;
    --suite) suite=$2; shift 2 ;;
    --ca) ca=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    *=127.0.0.1:*) names+=("${1%%=*}"); addrs+=("${1#*=}"); shift ;;
    *) echo "$0: bad argument $1" >&2; exit 2 ;;
  esac
done
((${#names[@]})) || { echo "$0: name at least one server NAME=127.0.0.1:PORT" >&2; exit 2; }
cpu=${BENCH_CLIENT_CPU:-1}

# Every process listening on the port, and a warning when one is not pinned to one CPU.
pids_of() {
  local p
  p=$(ss -Htlnp "sport = :${1##*:}" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u | tr '\n' ' ')
  [[ -n $p ]] || { echo "$0: nothing listens on $1" >&2; exit 2; }
  for q in $p; do
    [[ $(taskset -pc "$q" 2>/dev/null | sed 's/.*: //') == "${BENCH_SERVER_CPU:-0}" ]] ||
      echo "# warning: pid $q ($1) is not pinned to CPU ${BENCH_SERVER_CPU:-0}" >&2
  done
  echo "$p"
}
field() { sed -n "s/.* $1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

declare -A pids rate cpu_us ccpu frac
for i in "${!names[@]}"; do pids[$i]=$(pids_of "${addrs[$i]}"); done
echo "# handshakes: $conns loops on CPU $cpu, clients $clients, ${dur}s (+1s warm-up) x $rounds interleaved rounds, modes: $modes ${tls[*]:-(TLS 1.3)}, suite offered: ${suite:-rustls default list}; loadavg at start $(cut -d' ' -f1-3 /proc/loadavg)"
for i in "${!names[@]}"; do echo "# ${names[$i]} ${addrs[$i]} pids ${pids[$i]}"; done
failed=0
for ((r = 1; r <= rounds; r++)); do
  for mode in $modes; do
    for i in "${!names[@]}"; do
      pidargs=()
      for q in ${pids[$i]}; do pidargs+=(--server-pid "$q"); done
      rc=0
      line=$(timeout $((dur + 40)) taskset -c "$cpu" "$client" --addr "${addrs[$i]}" --ca "$ca" --name "$name" \
        --mode "$mode" --conns "$conns" --clients "$clients" --duration "$dur" --warmup 1 "${tls[@]}" \
        ${suite:+--suite "$suite"} \
        "${pidargs[@]}" 2>/tmp/handshakes.$$.err) || rc=$?
      if [[ $line != HANDSHAKES* ]]; then
        echo "round $r $mode ${names[$i]}: FAILED (exit $rc): $(tr '\n' ' ' </tmp/handshakes.$$.err) $line"
        failed=1
        continue
      fi
      # A run that did not pass its mode's check (e.g. under 99 % resumed) still reports its
      # figures, marked.
      ((rc == 0)) || { echo "round $r $mode ${names[$i]}: FAILED CHECK (exit $rc): $(tr '\n' ' ' </tmp/handshakes.$$.err)"; failed=1; }
      k="$i $mode"
      echo "round $r $mode ${names[$i]}: ${line#HANDSHAKES }"
      rate[$k]+="$(field per_second "$line") "
      cpu_us[$k]+="$(field server_cpu_per_conn_us "$line") "
      ccpu[$k]+="$(awk -v c="$(field client_cpu_s "$line")" -v s="$(field seconds "$line")" 'BEGIN{printf "%.2f", c/s}') "
      frac[$k]+="$(field resumed_fraction "$line") "
    done
  done
done
rm -f /tmp/handshakes.$$.err
echo "# loadavg at end $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-14s %-9s %12s %18s %14s %10s %12s\n' server mode "per second" "server CPU us/conn" "- keepalive" resumed "client busy"
for i in "${!names[@]}"; do
  ka=$(median <<<"${cpu_us[$i keepalive]:-}")
  for mode in $modes; do
    k="$i $mode"
    c=$(median <<<"${cpu_us[$k]:-}")
    net=$(awk -v c="$c" -v k="$ka" -v m="$mode" 'BEGIN{ if (m == "keepalive" || k == "nan") print "-"; else printf "%.1f", c - k }')
    printf '%-14s %-9s %12.0f %18.1f %14s %10s %12s\n' "${names[$i]}" "$mode" "$(median <<<"${rate[$k]:-}")" "$c" "$net" \
      "$(median <<<"${frac[$k]:-}")" "$(median <<<"${ccpu[$k]:-}")"
  done
done
# Ratios against the first server named (CPU per connection, < 1 = less CPU than it).
for mode in $modes; do
  b=$(median <<<"${cpu_us[0 $mode]:-}")
  for i in "${!names[@]}"; do
    ((i == 0)) && continue
    awk -v a="$(median <<<"${cpu_us[$i $mode]:-}")" -v b="$b" -v n="${names[$i]}" -v f="${names[0]}" -v m="$mode" \
      'BEGIN{ if (b > 0) printf "ratio %-9s %s / %s server CPU per connection %.3f\n", m, n, f, a / b }'
  done
done
exit $failed
