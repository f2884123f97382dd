#!/usr/bin/env bash
# Builds rampart-proxy and runs the built-in demo on loopback (see README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
exec cargo run --release -p rampart-proxy --bin rampart-proxy-demo -- "$@"
