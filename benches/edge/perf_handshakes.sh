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
  # The part of a symbol: by its crate path (the first `crate::` of the name, a generic
  # `<crate::…` included), never by a substring (`String`, `Ordering` are not ring); C symbols
  # by their own prefixes (ring_core_*, the static curve25519 fe*/ge* helpers of ring, mimalloc, libc).
  function prim(t) {
    if (t ~ /x25519|curve25519|^fe4?_|^ge_/) return "crypto: X25519"
    if (t ~ /p256|nistz256|ecdsa|suite_b/) return "crypto: ECDSA P-256"
    if (t ~ /sha256|sha512|digest|hmac|hkdf/) return "crypto: SHA-2 / HMAC / HKDF"
    if (t ~ /aes|gcm|ghash|chacha|poly1305|aead/) return "crypto: AEAD"
    if (t ~ /(^|_)rsa|bn_mul|bn_sqr/) return "crypto: RSA / bignum"
    return "crypto: other ring"
  }
  /^ *[0-9.]+%/ {
    p = $1; sub(/%/, "", p)
    kernel = ($2 == "[k]")
    s = $0; sub(/^ *[0-9.]+% +\[[a-z.]\] +/, "", s)
    crate = ""
    if (match(s, /^<?&?(mut )?(dyn )?[A-Za-z_][A-Za-z0-9_]*::/)) {
      crate = substr(s, 1, RLENGTH); sub(/::$/, "", crate); sub(/^<?&?(mut )?(dyn )?/, "", crate)
    }
    if (kernel) part = "kernel"
    else if (crate == "ring") part = prim(s)
    else if (s ~ /^(ring_core_[0-9_]+__|_?_?ecp_nistz256|fe4?_|ge_|x25519_)/) part = prim(s)
    else if (crate == "rustls" || crate == "tokio_rustls") part = "rustls"
    else if (crate ~ /^pingora/) part = "pingora"
    else if (crate ~ /^rampart/) part = "rampart (ours)"
    else if (crate == "tokio") part = "tokio"
    else if (crate == "core" || crate == "alloc" || crate == "std") part = "Rust std (generic code)"
    else if (s ~ /^_?_?mi_|^mi_|mimalloc/) part = "allocator (mimalloc)"
    else if (s ~ /^_?_?(mem(cpy|move|set|cmp)|libc|GI_)/ || s ~ /^(malloc|free|__libc)/) part = "libc (mem*, malloc)"
    else if (crate != "") part = "other crates"
    else { part = "other user"; if (p >= 0.2) other = other " " s " " p "%;" }
    sum[part] += p
  }
  END { for (k in sum) printf "%6.1f %%  %s\n", sum[k], k; if (other != "") printf "%6s    (other user above 0.2 %%:%s)\n", "", other }' | sort -rn
