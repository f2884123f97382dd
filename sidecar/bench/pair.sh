#!/usr/bin/env bash
# A client sidecar -> server sidecar pair on loopback in front of the peer kit's upstream, for
# ../shared/peers/bench.sh side by side with the HAProxy (38511) and stunnel (38501) pairs.
#   usage: sidecar/bench/pair.sh start [tcp|http] | stop
#   start prints the plain-in URL of the pair (the client sidecar's outbound listener).
# Both sidecars are pinned to CPU ${BENCH_SERVER_CPU:-0}, like the peers. Certificates are made
# here with openssl (P-256 SVIDs: one URI SAN, CA:FALSE, keyUsage critical digitalSignature).
# The sidecars' logs go to $dir/log/, not beside the config files: the file watch is on the
# config files' directory, and a log appended there every 20 ms woke its thread 50 times a second
# (as in a pod, where stdout is a pipe and the config a ConfigMap directory, it does not here).
# Each sidecar starts in a session of its own (`setsid`), as the peer kit's daemons (HAProxy,
# stunnel) run and as sidecars in their own containers (cgroups) do: with the kernel's autogroups
# (sched_autogroup_enabled=1), two processes started from one session are one scheduling entity,
# and the two sidecars of a pair then preempted each other at most messages in some rounds and
# not in others (CPU per request 14-22 µs, bimodal; each in its own session 13.9-14.1 µs:
# docs/measurements/sidecar.md "Session 14 (TCP port)"). SIDECAR_SAME_SESSION=1: the old shape.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${SIDECAR_BIN:-$root/target/release/rampart-sidecar}
dir=${SIDECAR_BENCH_DIR:-/var/tmp/rampart-sidecar-bench}
base=${PEERS_PORT_BASE:-38000}
upstream=127.0.0.1:$((base + 80))
cpu=${BENCH_SERVER_CPU:-0}
mode=${2:-tcp}
# Ports: the server sidecar's inbound at base+OFFSET, the client's outbound listener at +1, so a
# second pair (e.g. a baseline binary, with its own SIDECAR_BENCH_DIR) can run beside the first.
offset=${SIDECAR_PAIR_OFFSET:-520}

stop() {
  for p in "$dir"/*.pid; do
    [[ -f $p ]] || continue
    pid=$(cat "$p")
    kill "$pid" 2>/dev/null || true
    # The sidecar drains before it exits: wait (bounded) so a new pair can take the ports.
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$p"
  done
}

leaf() { # name spiffe-id
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/$1.key" \
    -subj "/O=bench" -out "$dir/$1.csr" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=URI:%s\n' "$2" >"$dir/$1.ext"
  openssl x509 -req -in "$dir/$1.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$dir/$1.ext" -out "$dir/$1.pem" 2>/dev/null
  openssl pkcs8 -topk8 -nocrypt -in "$dir/$1.key" -out "$dir/$1.p8" && mv "$dir/$1.p8" "$dir/$1.key"
}

case ${1:-} in
stop) stop; exit 0 ;;
start) ;;
*) sed -n '2,6p' "$0"; exit 2 ;;
esac
stop
mkdir -p "$dir/log"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/ca.key" \
  -subj "/CN=bench root" -days 2 -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$dir/ca.pem" 2>/dev/null
leaf client spiffe://mesh.local/ns/bench/sa/client
leaf server spiffe://mesh.local/ns/bench/sa/server
cat >"$dir/directory.toml" <<EOT
[[service]]
name = "client"
identity = "spiffe://mesh.local/ns/bench/sa/client"
endpoints = [{ port = 1, address = "127.0.0.1:1" }]

[[service]]
name = "server"
identity = "spiffe://mesh.local/ns/bench/sa/server"
endpoints = [{ port = 8080, address = "127.0.0.1:$((base + offset))" }]
EOT
printf '[[outbound]]\nname = "deps"\n[[outbound.rule]]\nname = "to-server"\nservices = ["server"]\n' >"$dir/client-policy.toml"
printf '[[inbound]]\nname = "api"\nports = [8080]\n[[inbound.rule]]\nname = "client"\ncallers = ["spiffe://mesh.local/ns/bench/sa/client"]\n' >"$dir/server-policy.toml"
for side in client server; do
  {
    printf 'service = "%s"\ntrust_domain = "mesh.local"\npolicy = "%s-policy.toml"\ndirectory = "directory.toml"\n' "$side" "$side"
    printf 'identity = { cert = "%s.pem", key = "%s.key", bundle = "ca.pem" }\n' "$side" "$side"
    if [[ $side == client ]]; then
      printf '[[outbound.listener]]\nlisten = "127.0.0.1:%s"\nservice = "server"\nport = 8080\n' "$((base + offset + 1))"
    else
      printf '[[inbound.port]]\nport = 8080\nprotocol = "%s"\napp = "%s"\nlisten = "127.0.0.1:%s"\n' "$mode" "$upstream" "$((base + offset))"
    fi
  } >"$dir/$side.toml"
  if [[ -n ${SIDECAR_SAME_SESSION:-} ]]; then
    taskset -c "$cpu" "$bin" run --config "$dir/$side.toml" >"$dir/log/$side.log" 2>&1 &
  else
    # Not a process-group leader (a script's background job), so setsid does not fork: the pid
    # recorded is the sidecar's.
    taskset -c "$cpu" setsid "$bin" run --config "$dir/$side.toml" >"$dir/log/$side.log" 2>&1 &
  fi
  echo $! >"$dir/$side.pid"
done
for _ in $(seq 100); do
  grep -q '"rampart.sidecar.ready"' "$dir/log/client.log" 2>/dev/null && grep -q '"rampart.sidecar.ready"' "$dir/log/server.log" 2>/dev/null && break
  sleep 0.1
done
grep -q '"rampart.sidecar.ready"' "$dir/log/server.log" || { cat "$dir/log/server.log" "$dir/log/client.log" >&2; exit 1; }
if [[ -z ${SIDECAR_SAME_SESSION:-} ]]; then
  for side in client server; do
    pid=$(cat "$dir/$side.pid")
    # Under job control (`bash -m`) setsid would fork and the pid recorded would not be the
    # sidecar's: refuse rather than leave a sidecar that `stop` cannot find.
    [[ $(ps -o sid= -p "$pid" | tr -d ' ') == "$pid" ]] || {
      echo "pair.sh: the $side sidecar is not process $pid (setsid forked: job control?); run pair.sh as a script, and stop the process whose command line names $dir/$side.toml" >&2
      stop
      exit 1
    }
  done
fi
echo "http://127.0.0.1:$((base + offset + 1))/"
