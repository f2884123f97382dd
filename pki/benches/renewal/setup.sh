#!/bin/bash
# setup.sh BIN DIR: a throwaway CA for the renewal benchmarks (unencrypted keys, no rate limit).
set -e
BIN=$1; D=$2
rm -rf "$D"; mkdir -p "$D"; cd "$D"
"$BIN" init --trust-domain example.org --dir ca --insecure-unencrypted-keys >/dev/null
cat > pki.toml <<EOT
listen = "127.0.0.1:0"
ca_dir = "ca"
insecure_unencrypted_keys = true
[rate_limit]
per_minute = 10000000
burst = 1000000
[limits]
max_connections_per_ip = 1024
EOT
