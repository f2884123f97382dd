#!/usr/bin/env bash
# TCP segments per request on every loopback leg of a pair, from the kernel's own per-socket
# counters (`ss -ti`: segs_out, data_segs_out): which legs send pure ACKs (delayed-ACK and
# quick-ACK behaviour) and how many data segments a request and its response take.
#   usage: sidecar/bench/segments.sh URL SECONDS CONNS PORT...
#   e.g.   sidecar/bench/segments.sh http://127.0.0.1:43531/ 4 50 43531 43530 43080
# PORTs are the listening ports of the hops (client side's plain listener, server side's mTLS
# listener, the upstream). While `wrk -t1 -cCONNS` runs (CPU ${BENCH_CLIENT_CPU:-1}, bounded by
# `timeout`), two snapshots of every established socket with one end on a PORT are taken one
# second apart from the start and one second before the end; per socket the difference is
# summed by leg (the listener's port) and side (the listener's end, "srv", or the dialling
# end, "cli"). Per request = ÷ the data segments the load client's sockets sent in between
# (one per request with wrk's small GETs).
set -euo pipefail
if (($# < 4)); then sed -n '2,13p' "$0"; exit 2; fi
url=$1 secs=$2 conns=$3
[[ $url == http://127.0.0.1:* ]] || { echo "segments.sh: loopback URLs only" >&2; exit 2; }
[[ $conns =~ ^[0-9]+$ ]] && ((conns >= 1 && conns <= 1000)) || { echo "segments.sh: conns 1..1000" >&2; exit 2; }
shift 3
filter=$(printf 'sport = :%s or dport = :%s or ' "$@")
filter="( ${filter% or } )"
if ((secs < 3 || secs > 60)); then echo "segments.sh: seconds 3..60" >&2; exit 2; fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
snap() { ss -Htin state established "$filter" | paste - - >"$out/$1"; }
timeout $((secs + 30)) taskset -c "${BENCH_CLIENT_CPU:-1}" wrk -t1 -c"$conns" -d"${secs}s" "$url" >"$out/wrk" &
w=$!
sleep 1
snap a
sleep $((secs - 2))
snap b
wait "$w"
first=$1
awk -v ports="$*" -v first="$first" '
  BEGIN { n = split(ports, p, " "); for (i = 1; i <= n; i++) isport[p[i]] = 1 }
  function num(line, key,   m) { if (match(line, key ":[0-9]+")) { return substr(line, RSTART + length(key) + 1, RLENGTH - length(key) - 1) + 0 } return 0 }
  {
    split($3, l, ":"); split($4, r, ":"); lp = l[length(l)]; rp = r[length(r)]
    if (lp in isport) { leg = lp; side = "srv" } else if (rp in isport) { leg = rp; side = "cli" } else next
    key = $3 " " $4
    segs = num($0, "segs_out"); data = num($0, "data_segs_out")
    if (FILENAME ~ /a$/) { s0[key] = segs; d0[key] = data; next }
    if (!(key in s0)) next
    ds = segs - s0[key]; dd = data - d0[key]
    S[leg " " side] += ds; D[leg " " side] += dd
    if (leg == first && side == "cli") reqs += dd
  }
  END {
    if (reqs == 0) { print "no requests seen on the first leg"; exit 1 }
    printf "requests (data segments the load client sent on :%s) %d\n", first, reqs
    printf "%-14s %14s %14s\n", "leg side", "data segs/req", "pure ACKs/req"
    for (i = 1; i <= n; i++) for (j = 0; j < 2; j++) {
      k = p[i] " " (j ? "srv" : "cli")
      if (k in S) printf ":%-13s %14.3f %14.3f\n", k, D[k] / reqs, (S[k] - D[k]) / reqs
    }
  }' "$out/a" "$out/b"
grep -E "Requests/sec" "$out/wrk" || true
