#!/usr/bin/env python3
"""Writes the committed WAF corpus sample (waf-lab/corpus-sample/) from the full corpora.

    scripts/waf-corpus-sample.py ../shared/waf-corpus waf-lab/corpus-sample

Stratified, deterministic (seed 14): every stratum keeps the same share of its items, with a
floor so that small families stay measurable, chosen by `random.Random(f"{SEED}:{stratum}")`
(Python's string seeding is stable across versions) and written in the corpus order:

- payloadsallthethings.jsonl: stratum = (attack type, source file); 1 in 12, at least 8;
- httpparams.jsonl: stratum = (label, attack type); 1 in 12, at least 60;
- user_agents.jsonl: stratum = source; 1 in 6;
- legit-dev.jsonl.gz: stratum = site (last part of `source`); 1 in 40, at least 3;
- crs-regression/: stratum = rule test file; 1 test in 4, at least 1, the file's own text kept
  byte for byte (header, comments, the chosen `tests:` items).

The licences of the sources are copied beside the sample. Rerunning the script on the same
corpora writes the same bytes (gzip with mtime 0).
"""
import gzip
import json
import math
import os
import random
import re
import shutil
import sys

SEED = 14


def pick(stratum, n, share, floor):
    k = min(n, max(math.ceil(n / share), floor))
    return set(random.Random(f"{SEED}:{stratum}").sample(range(n), k))


# html5sec's vectors (waf-lab/src/cli/corpus.rs `VECTOR_HEAD`, `Vectors`): a vector spans the
# lines from one opening `<div id="` to its terminator, and the lab joins them into one item as
# a client sends it, so the sample keeps or drops a vector whole.
VECTOR_FILES = ("MarioXSSVectors.txt",)
VECTOR_HEAD = '<div id="'
VECTOR_END = "-->]]>]</div>"


def sample_lines(lines, key, share, floor):
    """`lines` are the corpus split at b"\\n" only (JSON strings may hold U+2028 and the like).
    Items are lines, except that the lines of one html5sec vector are one item."""
    strata = {}
    open_vector = {}  # stratum -> the vector still open in it (a list of line indexes)
    prev = None
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        d = json.loads(line)
        stratum = key(d)
        value = d.get("value") or ""
        vector_file = d.get("source", "").rsplit("/", 1)[-1] in VECTOR_FILES
        head = vector_file and value.startswith(VECTOR_HEAD)
        vector = open_vector.pop(stratum, None)
        if vector is not None and not head and prev == (stratum, i - 1):
            vector.append(i)
        else:
            vector = [i] if head else None
            strata.setdefault(stratum, []).append(vector or [i])
        if vector is not None and VECTOR_END not in value:
            open_vector[stratum] = vector
        prev = (stratum, i)
    keep = set()
    for stratum, units in sorted(strata.items(), key=lambda kv: json.dumps(kv[0])):
        for j in pick(json.dumps(stratum), len(units), share, floor):
            keep.update(units[j])
    return [line for i, line in enumerate(lines) if i in keep]


def crs_file(text, stratum):
    lines = text.splitlines(keepends=True)
    try:
        start = next(i for i, l in enumerate(lines) if l.rstrip() == "tests:") + 1
    except StopIteration:
        return text
    heads = [i for i in range(start, len(lines)) if re.match(r"  -( |$)", lines[i])]
    if not heads:
        return text
    blocks = [lines[a:b] for a, b in zip(heads, heads[1:] + [len(lines)])]
    chosen = pick(stratum, len(blocks), 4, 1)
    return "".join(lines[:heads[0]] + [l for j, b in enumerate(blocks) if j in chosen for l in b])


def main(src, out):
    os.makedirs(out, exist_ok=True)
    plans = [
        ("payloadsallthethings.jsonl", lambda d: (d["attack_type"], d["source"]), 12, 8),
        ("httpparams.jsonl", lambda d: (d["label"], d["attack_type"]), 12, 60),
        ("user_agents.jsonl", lambda d: d["source"], 6, 0),
    ]
    for name, key, share, floor in plans:
        with open(os.path.join(src, name), "rb") as f:
            lines = f.read().split(b"\n")
        kept = sample_lines(lines, key, share, floor)
        with open(os.path.join(out, name), "wb") as f:
            f.write(b"".join(line + b"\n" for line in kept))
        print(f"{name}: {len(kept)} of {sum(1 for l in lines if l.strip())}")

    with gzip.open(os.path.join(src, "legit-dev.jsonl.gz"), "rb") as f:
        lines = f.read().split(b"\n")
    kept = sample_lines(lines, lambda d: d["source"].rsplit("/", 1)[-1], 40, 3)
    with open(os.path.join(out, "legit-dev.jsonl.gz"), "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
            f.write(b"".join(line + b"\n" for line in kept))
    print(f"legit-dev.jsonl.gz: {len(kept)} of {sum(1 for l in lines if l.strip())}")

    crs_src, crs_out = os.path.join(src, "crs-regression"), os.path.join(out, "crs-regression")
    shutil.rmtree(crs_out, ignore_errors=True)
    files = 0
    for d in sorted(os.listdir(crs_src)):
        if not os.path.isdir(os.path.join(crs_src, d)):
            continue
        for name in sorted(os.listdir(os.path.join(crs_src, d))):
            if not name.endswith(".yaml"):
                continue
            with open(os.path.join(crs_src, d, name), encoding="utf-8") as f:
                text = crs_file(f.read(), f"{d}/{name}")
            os.makedirs(os.path.join(crs_out, d), exist_ok=True)
            with open(os.path.join(crs_out, d, name), "w", encoding="utf-8") as f:
                f.write(text)
            files += 1
    print(f"crs-regression: {files} files")

    os.makedirs(os.path.join(out, "licenses"), exist_ok=True)
    for name in sorted(os.listdir(os.path.join(src, "licenses"))):
        shutil.copyfile(os.path.join(src, "licenses", name), os.path.join(out, "licenses", name))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
