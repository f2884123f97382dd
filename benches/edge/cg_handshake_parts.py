#!/usr/bin/env python3
"""Inclusive instructions per connection of the functions matching PATTERN (a regex) in the
full-handshake and resumed-handshake dumps of benches/edge/callgrind_handshakes.sh: Ir of the
function in the full run / full connections, and in the resumed run / resumed connections (that
run's one full connection is left in; it is < 0.1 % at 1,000 connections). Largest first, rows
under MIN per connection (default 1 % of the largest) left out.

usage: cg_handshake_parts.py FULL.out N_FULL RESUMED.out N_RESUMED N_RESUMED_FULL [PATTERN] [MIN]
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cg_parts import inclusive  # noqa: E402

DEFAULT = (r"^(ring::|ring_core|rustls::|tokio_rustls::|pingora_|rampart_|tokio::|mi_|__libc|"
           r"_start|std::|core::)")


def main():
    full_file, n_full, res_file, n_res = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    pattern = sys.argv[6] if len(sys.argv) > 6 and sys.argv[6] else DEFAULT
    a, b = inclusive(full_file), inclusive(res_file)
    rows = [(a.get(fn, 0) / n_full, b.get(fn, 0) / max(n_res, 1), fn)
            for fn in set(a) | set(b) if re.search(pattern, fn)]
    top = max((r[0] for r in rows), default=0)
    floor = float(sys.argv[7]) if len(sys.argv) > 7 else top / 100
    print(f"{'full Ir/conn':>13} {'resumed':>10}  function (inclusive)")
    for f, r, fn in sorted(rows, reverse=True):
        if max(f, r) >= floor:
            print(f"{f:13.0f} {r:10.0f}  {fn[:150]}")


if __name__ == "__main__":
    main()
