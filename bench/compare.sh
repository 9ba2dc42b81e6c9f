#!/bin/bash
# Side by side: two daemons measured alternately (A B A B ...) in one run on one machine, so
# that their ratio holds while the machine's speed drifts between runs.
# Usage: bench/compare.sh PROGRAM_A PROGRAM_B [ROUNDS] [SECONDS]
#   e.g. bench/compare.sh "$PWD/bin/wireguard-ts" wireguard-go 3 10
# Results are grouped by position (A is the first program, B the second), never by file name,
# so a program compared with another build of itself stays apart. Prints each measurement
# (bench/tunnel-bench.sh), then per figure the medians of A and B and the ratio A/B.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 2 ] || { echo "usage: compare.sh PROGRAM_A PROGRAM_B [ROUNDS] [SECONDS]" >&2; exit 1; }
a=$1
b=$2
rounds=${3:-3}
secs=${4:-10}
for n in "$rounds" "$secs"; do
  case $n in '' | *[!0-9]* | 0) echo "compare: ROUNDS and SECONDS must be whole numbers > 0, not '$n'" >&2; exit 1 ;; esac
done

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for r in $(seq "$rounds"); do
  for side in A B; do
    if [ "$side" = A ]; then p=$a; else p=$b; fi
    line=$("$here/tunnel-bench.sh" "$p" "$secs" | tail -n 1)
    echo "round $r $side: $line"
    echo "$side $line" >>"$results"
  done
done

node - "$results" "$(basename "${a%% *}")" "$(basename "${b%% *}")" <<'JS'
const [file, nameA, nameB] = process.argv.slice(2);
const rows = require('fs').readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' '));
const median = (xs) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const values = (side, key) =>
  rows
    .filter((r) => r[0] === side)
    .flatMap((r) => r.slice(2).filter((kv) => kv.startsWith(`${key}=`)).map((kv) => Number(kv.slice(key.length + 1))))
    .filter((v) => Number.isFinite(v));
for (const key of ['tcp_mbps', 'udp_mbps', 'ping_ms', 'rss_mb']) {
  const ma = median(values('A', key));
  const mb = median(values('B', key));
  console.log(`median ${key}: A(${nameA})=${ma} B(${nameB})=${mb} ratio A/B=${(ma / mb).toFixed(2)}`);
}
JS
