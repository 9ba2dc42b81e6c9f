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
tag=tc$$; ns0=$tag-0; ns1=$tag-1; ns2=$tag-2
if1=${tag}a; if2=${tag}b
run=/tmp/$tag-run; mkdir -p $run
export WG_HIDE_KEYS=never
[ -n "$perfdir" ] && export NODE_OPTIONS="--perf-basic-prof"
cleanup() { set +e; for n in $ns0 $ns1 $ns2; do for p in $(ip netns pids $n 2>/dev/null); do kill $p 2>/dev/null; done; done; sleep 0.3; ip -n $ns1 link del $if1 2>/dev/null; ip -n $ns2 link del $if2 2>/dev/null; ip netns del $ns1; ip netns del $ns2; ip netns del $ns0; rm -rf $run; }
trap cleanup EXIT
ip netns add $ns0; ip netns add $ns1; ip netns add $ns2
for n in $ns0 $ns1 $ns2; do ip -n $n link set up dev lo; done
ip netns exec $ns0 $program $if1 >$run/d1.log 2>&1
ip netns exec $ns0 $program $if2 >$run/d2.log 2>&1
unset NODE_OPTIONS
for i in $(seq 50); do ip -n $ns0 link show $if2 >/dev/null 2>&1 && break; sleep 0.1; done
ip -n $ns0 link set $if1 netns $ns1; ip -n $ns0 link set $if2 netns $ns2
k1=$(wg genkey); k2=$(wg genkey); p1=$(wg pubkey <<<"$k1"); p2=$(wg pubkey <<<"$k2")
ip -n $ns1 addr add 192.168.241.1/24 dev $if1; ip -n $ns2 addr add 192.168.241.2/24 dev $if2
ip netns exec $ns0 wg set $if1 private-key <(echo "$k1") listen-port 10000 peer "$p2" allowed-ips 192.168.241.2/32 endpoint 127.0.0.1:20000
ip netns exec $ns0 wg set $if2 private-key <(echo "$k2") listen-port 20000 peer "$p1" allowed-ips 192.168.241.1/32 endpoint 127.0.0.1:10000
ip -n $ns1 link set up dev $if1; ip -n $ns2 link set up dev $if2
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
