#!/usr/bin/env bash
# The whole test suite: installs what the tests need, then runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
cargo test --workspace --all-targets --exclude rampart-dns --exclude rampart-egress "$@"
# The DNSSEC lab crates (and the edge's `audit dnssec` test, ignored in the workspace run) run
# on their own. Their lab (Knot behind a validating Unbound on
# loopback) sometimes gets no timely answer for the unsigned zone on a loaded machine, and the
# resolver then (correctly, failing closed) denies it: two runs of five at the end of session 4,
# root cause open (issue #13). A real defect fails all three attempts; each failure is printed.
for attempt in 1 2 3; do
  if cargo test -p rampart-dns -p rampart-egress --all-targets "$@" &&
    cargo test -p rampart-proxy --test audit_dnssec "$@" -- --include-ignored; then
    exit 0
  fi
  echo "scripts/test.sh: DNSSEC lab tests failed on attempt $attempt of 3" >&2
done
exit 1
