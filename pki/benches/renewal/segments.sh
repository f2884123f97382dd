#!/bin/bash
# segments.sh NAME BIN SECS (as root): the service and renew_load in a network namespace of their
# own, so only this run's traffic is on its loopback; prints TCP segments per renewal (InSegs and
# OutSegs of /proc/net/snmp, both ends, the 16 bootstraps included). The CA is WORK/d-NAME (ab.sh).
N=$1; BIN=$2; S=${3:-4}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${WORK:-/tmp/rampart-pki-bench}; LOAD=$(realpath "${LOAD:-target/release/examples/renew_load}")
[ -d "$WORK/d-$N" ] || "$HERE/setup.sh" "$BIN" "$WORK/d-$N"
unshare -n bash -c '
ip link set lo up
segs() { awk "/^Tcp:/ && ++n==2 {print \$11, \$12}" /proc/net/snmp; }
b=$(segs)
out=$("$0" "$1" "$2" "$3" "$4" | grep renewals)
a=$(segs)
echo "$out"
echo "$b $a $(echo "$out" | awk "{print \$2}")" | awk "{printf \"segments per renewal: in %.2f out %.2f\n\", (\$3-\$1)/\$5, (\$4-\$2)/\$5}"
' "$HERE/run.sh" "$BIN" "$LOAD" "$WORK/d-$N" "$S"
