#!/usr/bin/env bash
# The HAProxy mTLS pair in HTTP mode (haproxy-mtls-http.cfg.in), beside the peer kit's TCP-mode
# pair, for compare.sh/latency.sh: the like-for-like comparator of our HTTP port.
#   usage: sidecar/bench/haproxy-http.sh start | stop | pid
#   start prints the plain-in URL (the client end); pid prints HAProxy's process id.
# Uses the peer kit's state (PEERS_HOME, default /var/tmp/rampart-peers: its test PKI and its
# upstream at PEERS_PORT_BASE+80, which must be running: ../shared/peers/start.sh upstream).
# Ports: PEERS_PORT_BASE + ${HAPROXY_HTTP_OFFSET:-516} (server end, mTLS) and + offset + 1 (client
# end, plain in). HAProxy runs as the kit's does: `-D` (a daemon: forked, a session of its own),
# one thread, pinned to CPU ${BENCH_SERVER_CPU:-0}. State in ${HAPROXY_HTTP_DIR:-$PEERS_HOME/haproxy-http};
# HAPROXY_HTTP_UPSTREAM=PORT: another upstream (e.g. an app that echoes the headers it gets).
# HAPROXY_HTTP_CLIENT_MODE=tcp|http: the client end relays bytes (tcp, the default: as our client
# sidecar does) or parses HTTP too (http: both ends, session 15's first shape).
# The ports are not among the kit's reserved ports: with a base in the ephemeral range a client
# socket may hold one, and HAProxy then fails to start (the script says so).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
home=${PEERS_HOME:-/var/tmp/rampart-peers}
base=${PEERS_PORT_BASE:-38000}
offset=${HAPROXY_HTTP_OFFSET:-516}
dir=${HAPROXY_HTTP_DIR:-$home/haproxy-http}
cpu=${BENCH_SERVER_CPU:-0}
client_mode=${HAPROXY_HTTP_CLIENT_MODE:-tcp}
[[ $client_mode == tcp || $client_mode == http ]] || { echo "haproxy-http.sh: HAPROXY_HTTP_CLIENT_MODE is tcp or http" >&2; exit 2; }
in=$((base + offset)) out=$((base + offset + 1)) upstream=${HAPROXY_HTTP_UPSTREAM:-$((base + 80))}

stop() {
  [[ -f $dir/haproxy.pid ]] || return 0
  local pid
  pid=$(cat "$dir/haproxy.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$dir/haproxy.pid"
}

case ${1:-} in
stop) stop; exit 0 ;;
pid) cat "$dir/haproxy.pid"; exit 0 ;;
start) ;;
*) sed -n '2,5p' "$0"; exit 2 ;;
esac
[[ -s $home/pki/server.pem && -s $home/pki/client.pem ]] || { echo "haproxy-http.sh: no test PKI in $home/pki (start the kit's upstream first)" >&2; exit 1; }
stop
mkdir -p "$dir"
hard=$(ulimit -Hn); [[ $hard == unlimited ]] && hard=65536; ((hard > 65536)) && hard=65536
maxconn=$(((hard - 200) / 2)); ((maxconn > 8000)) && maxconn=8000
sed -e "s|{{IN}}|$in|g" -e "s|{{OUT}}|$out|g" -e "s|{{UPSTREAM}}|$upstream|g" \
  -e "s|{{PKI}}|$home/pki|g" -e "s|{{MAXCONN}}|$maxconn|g" -e "s|{{CLIENT_MODE}}|$client_mode|g" "$here/haproxy-mtls-http.cfg.in" >"$dir/haproxy.cfg"
haproxy -c -q -f "$dir/haproxy.cfg" || { echo "haproxy-http.sh: haproxy -c rejected $dir/haproxy.cfg" >&2; exit 1; }
ulimit -Sn "$hard" 2>/dev/null || true
taskset -c "$cpu" haproxy -f "$dir/haproxy.cfg" -D -p "$dir/haproxy.pid" >>"$dir/haproxy.log" 2>&1
for _ in $(seq 100); do
  ss -Htln "sport = :$out" | grep -q . && ss -Htln "sport = :$in" | grep -q . && break
  sleep 0.1
done
ss -Htln "sport = :$out" | grep -q . || { echo "haproxy-http.sh: port $out did not open" >&2; cat "$dir/haproxy.log" >&2; exit 1; }
echo "http://127.0.0.1:$out/"
