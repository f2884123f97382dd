#!/usr/bin/env bash
# waf-lab/eval-run.sh LAB OUTDIR — the four commands of docs/waf-measurement.md "Commands" on the full corpora
# (C: RAMPART_WAF_CORPUS, default ../shared/waf-corpus); compare two builds with diff -r of their OUTDIRs
set -euo pipefail
L=$1; O=$2; C=${RAMPART_WAF_CORPUS:-$(cd "$(dirname "$0")/.." && pwd)/../shared/waf-corpus}
mkdir -p "$O"
$L eval --corpus $C/payloadsallthethings.jsonl $C/httpparams.jsonl $C/user_agents.jsonl $C/legit-dev.jsonl.gz $C/crs-regression > "$O/all.txt"
$L eval --leave-out source --corpus $C/payloadsallthethings.jsonl $C/httpparams.jsonl $C/crs-regression > "$O/loo-source.txt"
$L eval --leave-out corpus --corpus $C/payloadsallthethings.jsonl $C/httpparams.jsonl $C/crs-regression > "$O/loo-corpus.txt"
$L eval --corpus $C/legit-dev.jsonl.gz --show-fp 50 > "$O/fp.txt"
echo "eval outputs in $O"
