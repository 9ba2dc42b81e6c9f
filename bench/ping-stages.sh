#!/bin/bash
# Where a ping's round trip goes, stage by stage: the tunnel-bench topology (UDP sockets in ns0
# on loopback, TUNs in ns1 and ns2), tcpdump on all three, COUNT pings INTERVAL apart.
# Usage: sudo bench/ping-stages.sh PROGRAM [COUNT] [INTERVAL]
# Prints medians (µs) of: d1 encrypt (tun1 -> lo), d2 decrypt (lo -> tun2), kernel echo (tun2),
# d2 encrypt (tun2 -> lo), d1 decrypt (lo -> tun1), and the whole round trip at tun1; the first
# ping (it carries the handshake) is shown apart. tcpdump's own wake-ups load the 2 cores, so
# compare programs in the same run only.
# Optional, over the pings after a first (handshake) one: PERF_STAT=1 (CPU time and context
# switches of both daemons), PERF_RECORD=FILE (perf record -g; node gets --perf-basic-prof),
# PERF_TRACE=FILE (perf trace: every system call, timed). KEEP=DIR keeps captures and logs.
set -e
program=$1; count=${2:-100}; interval=${3:-0.05}
tag=ps$$
run=$(mktemp -d)
. "$(dirname "$0")/pair.sh"
cleanup() { set +e; pair_down; rm -rf "$run"; }
trap cleanup EXIT
[ -n "$PERF_RECORD" ] && export NODE_OPTIONS="--perf-basic-prof"
pair_up
cap() { ip netns exec "$1" tcpdump -i "$2" -n -tt --time-stamp-precision=nano -U -w "$run/$3.pcap" "$4" 2>"$run/$3.err" & }
cap $ns1 $if1 t1 icmp; cap $ns2 $if2 t2 icmp; cap $ns0 lo lo udp
for i in $(seq 100); do [ "$(cat "$run"/*.err | grep -c '^listening')" = 3 ] && break; sleep 0.05; done
sleep 1
if [ -n "$PERF_STAT$PERF_RECORD$PERF_TRACE" ]; then  # CPU of both daemons over the pings, the handshake left out
  ip netns exec $ns1 ping -c 1 -W 1 192.168.241.2 >/dev/null
  if [ -n "$PERF_TRACE" ]; then perf trace -o "$PERF_TRACE" -p "$daemons" >/dev/null 2>&1 &
  elif [ -n "$PERF_RECORD" ]; then perf record -q -g -o "$PERF_RECORD" -p "$daemons" >/dev/null 2>&1 &
  else perf stat -e task-clock,context-switches -p "$daemons" -o "$run/perf.txt" & fi
  sleep 0.2
fi
ip netns exec $ns1 ping -c "$count" -i "$interval" -W 1 192.168.241.2 >"$run/ping.txt"
[ -n "$PERF_STAT" ] && { pkill -INT -f "perf stat.*$run"; sleep 0.3; grep -E 'task-clock|switches' "$run/perf.txt"; }
[ -n "$PERF_RECORD" ] && { pkill -INT -f "perf record.*$PERF_RECORD"; sleep 1; }
[ -n "$PERF_TRACE" ] && { pkill -INT -f "perf trace.*$PERF_TRACE"; sleep 1; }
sleep 1.2  # tcpdump hands packets over in blocks, at the latest after a timeout
pkill -INT -f "tcpdump.*$run" || true; sleep 0.5
for f in t1 t2 lo; do tcpdump -r "$run/$f.pcap" -n -tt --time-stamp-precision=nano 2>/dev/null >"$run/$f.txt"; done
python3 - "$run" "$(basename "${program%% *}")" <<'PY'
import sys, re, statistics
run, name = sys.argv[1], sys.argv[2]
def icmp(f):
    req, rep = {}, {}
    for l in open(f"{run}/{f}.txt"):
        m = re.match(r"(\d+\.\d+) IP .*ICMP echo (request|reply), id \d+, seq (\d+)", l)
        if m: (req if m[2] == "request" else rep)[int(m[3])] = float(m[1])
    return req, rep
r1, p1 = icmp("t1"); r2, p2 = icmp("t2")
fwd, back = [], []
for l in open(f"{run}/lo.txt"):
    m = re.match(r"(\d+\.\d+) IP 127\.0\.0\.1\.(\d+) > 127\.0\.0\.1\.(\d+): UDP, length (\d+)", l)
    if m and m[4] not in ("148", "92", "64"):  # handshake messages and cookie replies
        (fwd if m[2] == "10000" else back).append(float(m[1]))
def after(lst, t):
    return next((x for x in lst if x >= t), None)
stages = {k: [] for k in ("d1 encrypt", "d2 decrypt", "kernel echo", "d2 encrypt", "d1 decrypt", "round trip")}
first = None
for s in sorted(r1):
    if s not in p1 or s not in r2 or s not in p2: continue
    a, d = after(fwd, r1[s]), after(back, p2[s])
    if a is None or d is None: continue
    v = [a - r1[s], r2[s] - a, p2[s] - r2[s], d - p2[s], p1[s] - d, p1[s] - r1[s]]
    if first is None: first = v; continue
    for k, x in zip(stages, v): stages[k].append(x * 1e6)
print(f"{name}: {len(stages['round trip'])} pings after the first; medians in µs (first ping in brackets)")
for i, (k, xs) in enumerate(stages.items()):
    print(f"  {k:12s} {statistics.median(xs):8.1f}   [{first[i]*1e6:8.1f}]")
PY
tail -1 "$run/ping.txt"
[ -n "$KEEP" ] && cp -r "$run" "$KEEP"

