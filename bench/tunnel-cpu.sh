#!/bin/bash
# CPU seconds per GB moved through a tunnel, for any wireguard-go-compatible daemon, in the
# topology of ../shared/bench/tunnel-bench.sh (UDP over loopback in ns0, TUNs in ns1/ns2).
# Usage: bench/tunnel-cpu.sh PROGRAM [SECONDS] [PERF_OUT_DIR]   (root; iperf3, wg, python3)
# Prints one line: "<program> tcp_mbps=N tcp_cpu_s_per_gb=N udp_mbps=N udp_cpu_s_per_gb=N"
# where CPU is user+system time of both daemons (/proc/PID/stat, all threads) during each
# iperf3 run, divided by the gigabytes iperf3 received. With PERF_OUT_DIR, the TCP run is also
# recorded with `perf record -g` on both daemons (node gets --perf-basic-prof), and the
# report's top symbols are written there.
set -e
program=$1; secs=${2:-10}; perfdir=${3:-}
tag=tc$$
run=/tmp/$tag-run; mkdir -p $run
. "$(dirname "$0")/pair.sh"
[ -n "$perfdir" ] && export NODE_OPTIONS="--perf-basic-prof"
cleanup() { set +e; pair_down; rm -rf $run; }
trap cleanup EXIT
pair_up
sleep 1
ip netns exec $ns1 ping -c 3 -i 0.1 -W 1 192.168.241.2 >/dev/null
pids=$(ip netns pids $ns0 | tr '\n' ' ')
ticks() { for p in $pids; do awk '{print $14+$15}' /proc/$p/stat; done | awk '{s+=$1} END {print s}'; }
hz=$(getconf CLK_TCK)
measure() { # $1 = tcp|udp; prints "mbps cpu_s_per_gb"
  ip netns exec $ns2 iperf3 -s -1 -B 192.168.241.2 >/dev/null 2>&1 &
  sleep 0.5
  local args=(-J -t "$secs" -c 192.168.241.2); [ "$1" = udp ] && args+=(-u -b 0 -l 1340)
  local t0 perfpid=""; t0=$(ticks)
  if [ -n "$perfdir" ] && [ "$1" = tcp ]; then
    mkdir -p "$perfdir"
    perf record -q -g -o "$perfdir/perf.data" -p "$(echo $pids | tr ' ' ',')" -- sleep "$secs" >/dev/null 2>&1 &
    perfpid=$!
  fi
  ip netns exec $ns1 iperf3 "${args[@]}" >$run/$1.json
  local t1; t1=$(ticks)
  [ -n "$perfpid" ] && wait $perfpid
  python3 - "$run/$1.json" "$t0" "$t1" "$hz" "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); t0, t1, hz = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
if sys.argv[5] == "tcp":
    s = d["end"]["sum_received"]; bits = s["bits_per_second"]; gb = s["bytes"] / 1e9
else:
    s = d["end"]["sum"]; bits = s["bits_per_second"] * (1 - s["lost_percent"] / 100); gb = s["bytes"] * (1 - s["lost_percent"] / 100) / 1e9
cpu = (t1 - t0) / hz
print(f"{round(bits / 1e6)} {cpu / gb:.2f}")
PY
}
read -r tcp tcpcpu < <(measure tcp)
read -r udp udpcpu < <(measure udp)
echo "$(basename ${program%% *}) tcp_mbps=$tcp tcp_cpu_s_per_gb=$tcpcpu udp_mbps=$udp udp_cpu_s_per_gb=$udpcpu"
if [ -n "$perfdir" ]; then
  perf report -i "$perfdir/perf.data" --no-children --sort dso,sym --stdio 2>/dev/null | grep -v '^#' | grep '%' | head -60 >"$perfdir/top.txt" || true
  perf report -i "$perfdir/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -v '^#' | grep '%' | head -20 >"$perfdir/dso.txt" || true
fi
