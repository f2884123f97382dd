#!/usr/bin/env bash
# New mTLS connections per second and server CPU per full handshake: our server sidecar (TCP
# port), the peer kit's HAProxy mTLS inbound listener and, when it runs, Envoy's mTLS TCP
# listener (its pair's inbound side), interleaved, several rounds.
#   usage: sidecar/bench/handshakes.sh [rounds] [seconds] [conns]
# Needs: the peer kit's haproxy peer running (PEERS_HOME, PEERS_PORT_BASE), our pair started with
# `sidecar/bench/pair.sh start tcp` (its SIDECAR_BENCH_DIR and SIDECAR_PAIR_OFFSET, default 520,
# given here too), and the bench client built:
#   cargo build --release -p rampart-sidecar --example handshakes   (target/release/examples/handshakes)
# The client runs on CPU ${BENCH_CLIENT_CPU:-1}; the servers are pinned to the other core.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
rounds=${1:-3} secs=${2:-10} conns=${3:-16}
base=${PEERS_PORT_BASE:-38000}
peers=${PEERS_HOME:-/var/tmp/rampart-peers}
dir=${SIDECAR_BENCH_DIR:-/var/tmp/rampart-sidecar-bench}
cpu=${BENCH_CLIENT_CPU:-1}
client=${HANDSHAKES_BIN:-$root/target/release/examples/handshakes}
[[ -x $client ]] || { echo "handshakes.sh: build the client first (see the header)" >&2; exit 2; }
ours_pid=$(cat "$dir/server.pid")
ours_port=$((base + ${SIDECAR_PAIR_OFFSET:-520}))
haproxy_port=$((base + 510))
haproxy_pid=$(ss -Htlnp "sport = :$haproxy_port" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 || true)
[[ -n $haproxy_pid ]] || { echo "handshakes.sh: nothing listens on $haproxy_port (start the haproxy peer)" >&2; exit 2; }
envoy_port=$((base + 512))
envoy_pid=$(ss -Htlnp "sport = :$envoy_port" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 || true)
sides=(ours haproxy)
[[ -n $envoy_pid ]] && sides+=(envoy)

ours() {
  timeout $((secs + 40)) taskset -c "$cpu" "$client" "127.0.0.1:$ours_port" --ca "$dir/ca.pem" \
    --cert "$dir/client.pem" --key "$dir/client.key" --spiffe mesh.local \
    --conns "$conns" --seconds "$secs" --server-pid "$ours_pid"
}
haproxy() {
  timeout $((secs + 40)) taskset -c "$cpu" "$client" "127.0.0.1:$haproxy_port" --ca "$peers/pki/ca.crt" \
    --cert "$peers/pki/client.crt" --key "$peers/pki/client.key" --name localhost \
    --conns "$conns" --seconds "$secs" --server-pid "$haproxy_pid"
}
envoy() {
  timeout $((secs + 40)) taskset -c "$cpu" "$client" "127.0.0.1:$envoy_port" --ca "$peers/pki/ca.crt" \
    --cert "$peers/pki/client.crt" --key "$peers/pki/client.key" --name localhost \
    --conns "$conns" --seconds "$secs" --server-pid "$envoy_pid"
}
field() { sed -n "s/.* $1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "# $conns concurrent clients on CPU $cpu, ${secs}s × $rounds rounds interleaved; loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A rate cpu_us
for ((r = 1; r <= rounds; r++)); do
  for side in "${sides[@]}"; do
    line=$($side | grep '^HANDSHAKES')
    echo "round $r $side: ${line#HANDSHAKES }"
    rate[$side]+="$(field per_second "$line") "
    cpu_us[$side]+="$(field server_cpu_per_connection_us "$line") "
  done
done
echo "# loadavg at end $(cut -d' ' -f1-3 /proc/loadavg)"
for side in "${sides[@]}"; do
  printf 'median %-8s connections/s %7.0f  server CPU per connection %6.0f µs\n' "$side" \
    "$(median <<<"${rate[$side]}")" "$(median <<<"${cpu_us[$side]}")"
done
awk -v a="$(median <<<"${cpu_us[ours]}")" -v b="$(median <<<"${cpu_us[haproxy]}")" \
  -v c="$(median <<<"${rate[ours]}")" -v d="$(median <<<"${rate[haproxy]}")" 'BEGIN {
  printf "ratio ours/haproxy: connections/s %.3f   server CPU per connection %.3f (< 1 favours ours)\n", c / d, a / b }'
if [[ -n $envoy_pid ]]; then
  awk -v a="$(median <<<"${cpu_us[ours]}")" -v b="$(median <<<"${cpu_us[envoy]}")" 'BEGIN {
    printf "ratio ours/envoy: server CPU per connection %.3f (< 1 favours ours)\n", a / b }'
fi
