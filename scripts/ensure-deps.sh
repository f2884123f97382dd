#!/usr/bin/env bash
# Installs the system packages the build and the tests need, or prints the exact
# install line when it cannot (not root, or no apt-get).
#   cmake              pingora-core builds zlib-ng with it
#   redis-server       fleet-wide rate-limit integration tests start a real one
#   prometheus         promtool validates deploy/prometheus/*.yml
#   knot unbound ldnsutils  rampart-dns/egress tests serve signed, bogus and unsigned zones (Knot behind Unbound)
#   openssl            the CA's CSR tests make RSA, EC and Ed25519 requests with it
#   python3-cryptography  the CA's strict-DER test parses every certificate kind with pyca/cryptography
#   iptables           the sidecar's network-namespace tests install its redirect rules
set -euo pipefail
need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v knotd >/dev/null 2>&1 || [ -x /usr/sbin/knotd ] || need+=(knot)
command -v unbound >/dev/null 2>&1 || [ -x /usr/sbin/unbound ] || need+=(unbound)
command -v ldns-signzone >/dev/null 2>&1 || need+=(ldnsutils)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] || need+=(iptables)
python3 -c 'import cryptography' >/dev/null 2>&1 || need+=(python3-cryptography)
[ ${#need[@]} -eq 0 ] && exit 0
line="apt-get update && apt-get install -y --no-install-recommends ${need[*]}"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing: ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
  # Debian starts packaged services on install; the tests start their own.
  systemctl disable --now redis-server >/dev/null 2>&1 || service redis-server stop >/dev/null 2>&1 || true
else
  echo "missing system packages: ${need[*]}" >&2
  echo "run as root:  $line" >&2
  exit 1
fi
