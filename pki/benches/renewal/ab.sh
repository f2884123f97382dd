#!/bin/bash
# ab.sh ROUNDS SECS NAME=BIN ... : server CPU per renewal of each `rampart-pki` build, the builds
# alternating within each round, one CA per build (WORK, default /tmp/rampart-pki-bench), the same
# client for all (LOAD, default target/release/examples/renew_load). Then the floor, same run.
# e.g. ab.sh 5 8 main=/tmp/pki-main new=target/release/rampart-pki
R=$1; S=$2; shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${WORK:-/tmp/rampart-pki-bench}; LOAD=${LOAD:-target/release/examples/renew_load}
for v in "$@"; do [ -d "$WORK/d-${v%%=*}" ] || "$HERE/setup.sh" "${v#*=}" "$WORK/d-${v%%=*}"; done
for r in $(seq 1 "$R"); do
  for v in "$@"; do
    line=$("$HERE/run.sh" "${v#*=}" "$LOAD" "$WORK/d-${v%%=*}" "$S" | grep renewals)
    echo "$r ${v%%=*} load $(cut -d' ' -f1 /proc/loadavg) $line"
  done
done
"$(dirname "$LOAD")/crypto_floor" 2 | tail -1
openssl speed -seconds 2 ecdsap256 ecdhx25519 2>/dev/null | tail -4
