#!/usr/bin/env bash
# Where a server's CPU goes under new TLS connections, natively (callgrind's ring runs without
# ADX/BMI2 and counts `rep stos` per byte, so its crypto shares are not the machine's): samples
# PID's own CPU with `perf record` while the `handshakes` client (CPU 1) runs MODE for SECONDS,
# then sums the self samples by part (crypto by primitive, rustls, Pingora, ours, tokio, the
# allocator, the kernel). Run it through benches/quiet-run.
# usage: benches/edge/perf_handshakes.sh PID 127.0.0.1:PORT [full|resumed|keepalive] [SECONDS] [client args...]
#        benches/edge/perf_handshakes.sh --report PERF_DATA   (the table again)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
if [[ $1 == --report ]]; then data=$2; else
pid=$1 addr=$2 mode=${3:-full} secs=${4:-8}
shift $(($# < 4 ? $# : 4))
peers=${PEERS_HOME:-/var/tmp/rampart-peers}
client=${HANDSHAKES_BIN:-$root/target/release/handshakes}
data=${PERF_DATA:-/var/tmp/perf-handshakes-$pid-$mode.data}
perf record -q -F 1999 -p "$pid" -o "$data" -- sleep $((secs + 1)) 2>/dev/null &
rec=$!
line=$(taskset -c "${BENCH_CLIENT_CPU:-1}" "$client" --addr "$addr" --ca "${CA:-$peers/pki/ca.crt}" --mode "$mode" \
  --conns 16 --warmup 0.5 --duration "$secs" --server-pid "$pid" "$@")
wait $rec || true
echo "$line" | cut -c1-400
fi
perf report -i "$data" --no-children --sort sym --stdio 2>/dev/null | awk '
  /^ *[0-9.]+%/ {
    p = $1; sub(/%/, "", p); $1 = ""; s = $0
    if (s ~ /\[k\]/) part = "kernel"
    else if (s ~ /x25519|curve25519|[ _]fe4?_|[ _]ge_/) part = "crypto: X25519"
    else if (s ~ /p256|nistz256|ecdsa|ec::suite_b/) part = "crypto: ECDSA P-256"
    else if (s ~ /rsa|bn_mul|mont/) part = "crypto: RSA / bignum"
    else if (s ~ /sha256|sha512|sha1|digest|hmac|hkdf/) part = "crypto: SHA-2 / HMAC / HKDF"
    else if (s ~ /aes|gcm|ghash|chacha|poly1305|aead/) part = "crypto: AEAD"
    else if (s ~ /ring|ring_core/) part = "crypto: other ring"
    else if (s ~ /rustls/) part = "rustls"
    else if (s ~ /pingora/) part = "pingora"
    else if (s ~ /rampart/) part = "rampart (ours)"
    else if (s ~ /tokio/) part = "tokio"
    else if (s ~ / mi_|_mi_|mimalloc/) part = "allocator (mimalloc)"
    else if (s ~ /memcpy|memmove|memset|__libc|malloc|free/) part = "libc (mem*, malloc)"
    else { part = "other user"; if (p >= 0.2) other = other s " " p "%;" }
    sum[part] += p
  }
  END { for (k in sum) printf "%6.1f %%  %s\n", sum[k], k; if (other != "") printf "%6s    (other user above 0.2 %%:%s)\n", "", other }' | sort -rn
