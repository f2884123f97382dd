#!/usr/bin/env python3
"""Per-request inclusive instructions (the largest of the rows callgrind splits a function into,
one per source file of the code inlined into it) of each function matching PATTERN (a regex), from the two
callgrind dumps of benches/edge/callgrind.sh: (Ir in the long run - Ir in the short run) /
(requests long - requests short), so connection set-up and handshakes cancel out.

usage: cg_parts.py LONG.out N_LONG SHORT.out N_SHORT PATTERN [MIN_PER_REQUEST]
"""
import re
import subprocess
import sys


def inclusive(path):
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", "--auto=no", path],
        check=True, capture_output=True, text=True).stdout
    costs = {}
    for line in text.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+(?:\([\d.]+%\)\s+)?(\S.*?)(?:\s+\[[^\]]*\])?$", line)
        # callgrind splits a function into a row per source file of the code inlined into it;
        # the rows overlap (the function's own row counts the calls made from inlined code), so
        # the largest row is the function's inclusive cost.
        if m and ":" in m.group(2) and "=>" not in line:
            fn = m.group(2).split(":", 1)[1]
            costs[fn] = max(costs.get(fn, 0), int(m.group(1).replace(",", "")))
    return costs


def main():
    long_file, n_long, short_file, n_short, pattern = sys.argv[1:6]
    floor = float(sys.argv[6]) if len(sys.argv) > 6 else 50
    per = int(n_long) - int(n_short)
    a, b = inclusive(long_file), inclusive(short_file)
    rows = []
    for fn in set(a) | set(b):
        if re.search(pattern, fn):
            cost = (a.get(fn, 0) - b.get(fn, 0)) / per
            if cost >= floor:
                rows.append((cost, fn))
    for cost, fn in sorted(rows, reverse=True):
        print(f"{cost:10.0f}  {fn[:160]}")


if __name__ == "__main__":
    main()
