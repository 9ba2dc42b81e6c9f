#!/bin/bash
# npm run bench:tunnel [-- [OTHER] [ROUNDS] [SECONDS]]
# bin/wireguard-ts (side A) against OTHER (side B; default wireguard-go from PATH), measured
# alternately in one run by bench/compare.sh: medians and ratios of TCP, UDP, ping and RSS.
#   e.g. npm run bench:tunnel -- /path/to/wireguard-go-upstream 5 10
# Defaults: 3 rounds of 10 s. A first argument that is a number is ROUNDS (OTHER stays the default).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
other=wireguard-go
if [ $# -gt 0 ] && [[ ! $1 =~ ^[0-9]+$ ]]; then other=$1; shift; fi
rounds=${1:-3}
secs=${2:-10}

fail() { echo "bench:tunnel: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (network namespaces, TUN devices)"
for t in ip wg iperf3 ping node; do
  command -v "$t" >/dev/null || fail "'$t' is missing (apt-get install iproute2 wireguard-tools iperf3 iputils-ping nodejs)"
done
[ -f "$root/dist/src/cli/wireguard-ts.js" ] || fail "bin/wireguard-ts is not built (npm ci)"
if [[ $other == */* ]]; then
  [ -x "$other" ] || fail "$other is not an executable file"
  other=$(cd "$(dirname "$other")" && pwd)/$(basename "$other")
else
  command -v "$other" >/dev/null || fail "'$other' is not on PATH (apt-get install wireguard-go, or give a path)"
fi
exec "$root/bench/compare.sh" "$root/bin/wireguard-ts" "$other" "$rounds" "$secs"
