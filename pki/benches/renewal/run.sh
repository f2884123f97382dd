#!/bin/bash
# run.sh BIN LOAD DIR SECS: starts `BIN serve` on the CA in DIR, runs the renew_load client LOAD
# (16 identities, 8 concurrent, SECS seconds) against it, stops the service; prints renew_load's line.
BIN=$1; LOAD=$2; D=$3; SECS=${4:-8}
cd "$D" || exit 1
rm -f serve.out; "$BIN" serve --config pki.toml > serve.out 2> serve.err &
PID=$!
for _ in $(seq 1 100); do grep -q ready serve.out 2>/dev/null && break; sleep 0.1; done
ADDR=$(sed -n 's/^ready https:\/\///p' serve.out | awk '{print $1}')
timeout 120 "$LOAD" "$ADDR" "$D/ca" "$PID" 16 8 "$SECS"
kill -TERM $PID; wait $PID
