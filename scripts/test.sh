#!/usr/bin/env bash
# The whole test suite: installs what the tests need, then runs every test in the workspace
# (the DNSSEC lab tests start their own Knot + Unbound on loopback; the network-namespace tests
# run when root and say SKIP otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
python3 scripts/check-cycles-test.py  # the import-cycle checker on its fixture crates (<1 s)
scripts/check-cycles                 # no import cycle between modules in any workspace crate (a few s)
cargo test --workspace --all-targets "$@"
