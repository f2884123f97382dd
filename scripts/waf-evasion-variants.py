#!/usr/bin/env python3
"""Evasion variants of the PayloadsAllTheThings values, to check that detection does not rest
on one spelling: for each transform, the same random sample (seed 7, 400 values per family)
is written twice, as sent (`base-NAME.jsonl`) and transformed (`NAME.jsonl`), in the value
corpus format `rampart-waf-lab eval` reads. Usage:

    scripts/waf-evasion-variants.py ../shared/waf-corpus/payloadsallthethings.jsonl OUTDIR
    for t in rcase dbl uenc tabs nl cmt; do
        target/release/rampart-waf-lab eval --corpus OUTDIR/base-$t.jsonl OUTDIR/$t.jsonl
    done
"""
import json
import os
import random
import sys
import urllib.parse as up

src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
items = [json.loads(line) for line in open(src)]
families = ["sqli", "xss", "cmdi", "lfi", "path-traversal"]


def rcase(s):  # random letter case
    return "".join(c.upper() if random.random() < 0.5 else c.lower() for c in s)


def dbl(s):  # URL-encoded twice more (the placement encodes it once again)
    return up.quote(up.quote(s, safe=""), safe="")


def uenc(s):  # most ASCII punctuation as IIS %uXXXX
    return "".join(
        "%%u%04x" % ord(c) if (not c.isalnum() and ord(c) < 128 and random.random() < 0.7) else c
        for c in s
    )


transforms = {
    "rcase": rcase,
    "dbl": dbl,
    "uenc": uenc,
    "tabs": lambda s: s.replace(" ", "\t"),
    "nl": lambda s: s.replace(" ", "\n"),
    "cmt": lambda s: s.replace(" ", "/**/"),  # SQL only
}
random.seed(7)
for name, f in transforms.items():
    with open(f"{out}/{name}.jsonl", "w") as t, open(f"{out}/base-{name}.jsonl", "w") as b:
        for fam in families:
            if name == "cmt" and fam != "sqli":
                continue
            pool = [i for i in items if i["attack_type"] == fam]
            for it in random.sample(pool, min(400, len(pool))):
                for fh, tag, v in ((t, name, f(it["value"])), (b, "base-" + name, it["value"])):
                    fh.write(json.dumps({"source": tag, "label": "attack", "attack_type": fam, "value": v}) + "\n")
