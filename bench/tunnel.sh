#!/bin/bash
# npm run bench:tunnel [-- ROUNDS SECONDS]
# Side-by-side tunnel benchmark: bin/wireguard-ts against wireguard-go, measured alternately
# in the same run (../shared/bench/compare.sh), printing medians and ratios (TCP, UDP, ping, RSS).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${WG_TS_SHARED:-$root/../shared}
[ "$(id -u)" = 0 ] || { echo "bench:tunnel: needs root (network namespaces, TUN devices)" >&2; exit 1; }
[ -x "$shared/bench/compare.sh" ] || { echo "bench:tunnel: $shared/bench/compare.sh not found (set WG_TS_SHARED)" >&2; exit 1; }
for t in wireguard-go wg iperf3 ping python3; do
  command -v "$t" >/dev/null || { echo "bench:tunnel: '$t' is missing (apt-get install wireguard-go wireguard-tools iperf3 iputils-ping python3)" >&2; exit 1; }
done
exec "$shared/bench/compare.sh" "$root/bin/wireguard-ts" wireguard-go "${1:-3}" "${2:-10}"
