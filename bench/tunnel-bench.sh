#!/bin/bash
# One tunnel measurement of a wireguard-go-compatible userspace daemon (PROGRAM IFNAME creates
# the device and its UAPI socket, as wireguard-go does).
# Usage: bench/tunnel-bench.sh PROGRAM [SECONDS] [PROGRAM2]
#   PROGRAM may be a command with arguments ("node --foo bin/wireguard-ts"); PROGRAM2, when
#   given, runs the second daemon (an interop pair), else PROGRAM runs both.
# The topology of wireguard-go's tests/netns.sh: both daemons start in ns0, where their UDP
# sockets stay (endpoints on 127.0.0.1), and their devices move into ns1 and ns2.
# Measures, in this order: the average of 20 pings 50 ms apart, TCP for SECONDS (iperf3),
# the resident memory of both daemons after the TCP run, UDP for SECONDS (iperf3, 1340-byte
# datagrams, unlimited rate, counted after loss).
# Prints one line: "<name> tcp_mbps=<N> udp_mbps=<N> ping_ms=<avg> rss_mb=<N>".
# Needs root, iproute2, wireguard-tools (wg), iperf3, iputils-ping, node.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: tunnel-bench.sh PROGRAM [SECONDS] [PROGRAM2]" >&2; exit 1; }
program=$1
secs=${2:-10}
program2=${3:-$program}
case $secs in '' | *[!0-9]* | 0) echo "tunnel-bench: SECONDS must be a whole number > 0, not '$secs'" >&2; exit 1 ;; esac

tag=wtb$$                           # namespaces and interfaces unique to this run
ns0=$tag-0 ns1=$tag-1 ns2=$tag-2
if1=${tag}a if2=${tag}b             # UAPI sockets share /var/run/wireguard: unique names
logs=$(mktemp -d)

cleanup() {
  set +e
  for ns in "$ns0" "$ns1" "$ns2"; do for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null; done; done
  sleep 0.3
  for ns in "$ns0" "$ns1" "$ns2"; do for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done; done
  for ns in "$ns0" "$ns1" "$ns2"; do ip netns del "$ns" 2>/dev/null; done
  rm -f "/var/run/wireguard/$if1.sock" "/var/run/wireguard/$if2.sock"
  rm -rf "$logs"
}
trap cleanup EXIT

die() { echo "tunnel-bench: $*" >&2; exit 1; }
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
# A JSON field of iperf3's report on stdin, as Mbit/s (UDP: what arrived).
mbps() { node -e '
  let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
    const e = JSON.parse(s).end;
    const bps = process.argv[1] === "udp" ? e.sum.bits_per_second * (1 - e.sum.lost_percent / 100) : e.sum_received.bits_per_second;
    console.log(Math.round(bps / 1e6));
  });' "$1"; }

for ns in "$ns0" "$ns1" "$ns2"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done

# shellcheck disable=SC2086 # a program may carry arguments
in_ns "$ns0" $program "$if1" >"$logs/a.log" 2>&1 || die "'$program $if1' failed: $(head -c 300 "$logs/a.log")"
# shellcheck disable=SC2086
in_ns "$ns0" $program2 "$if2" >"$logs/b.log" 2>&1 || die "'$program2 $if2' failed: $(head -c 300 "$logs/b.log")"
for _ in $(seq 100); do
  ip -n "$ns0" link show "$if1" >/dev/null 2>&1 && ip -n "$ns0" link show "$if2" >/dev/null 2>&1 && break
  sleep 0.05
done
ip -n "$ns0" link show "$if2" >/dev/null 2>&1 || die "the daemons did not create $if1 and $if2"
ip -n "$ns0" link set "$if1" netns "$ns1"
ip -n "$ns0" link set "$if2" netns "$ns2"

k1=$(wg genkey) k2=$(wg genkey)
p1=$(wg pubkey <<<"$k1") p2=$(wg pubkey <<<"$k2")
in_ns "$ns0" wg set "$if1" private-key <(echo "$k1") listen-port 10000 peer "$p2" allowed-ips 192.168.241.2/32 endpoint 127.0.0.1:20000
in_ns "$ns0" wg set "$if2" private-key <(echo "$k2") listen-port 20000 peer "$p1" allowed-ips 192.168.241.1/32 endpoint 127.0.0.1:10000
ip -n "$ns1" addr add 192.168.241.1/24 dev "$if1"
ip -n "$ns2" addr add 192.168.241.2/24 dev "$if2"
ip -n "$ns1" link set "$if1" up
ip -n "$ns2" link set "$if2" up
sleep 1

ping_ms=$(in_ns "$ns1" ping -c 20 -i 0.05 -W 1 192.168.241.2 | awk -F/ '/^rtt/ {print $5}')

in_ns "$ns2" iperf3 -s -1 -B 192.168.241.2 >/dev/null 2>&1 &
sleep 0.5
tcp=$(in_ns "$ns1" iperf3 -J -t "$secs" -c 192.168.241.2 | mbps tcp)
wait
rss=$(for pid in $(ip netns pids "$ns0"); do awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null; done | awk '{ kb += $1 } END { print int(kb / 1024) }')

in_ns "$ns2" iperf3 -s -1 -B 192.168.241.2 >/dev/null 2>&1 &
sleep 0.5
udp=$(in_ns "$ns1" iperf3 -J -u -b 0 -l 1340 -t "$secs" -c 192.168.241.2 | mbps udp)
wait

name=$(basename "${program%% *}")
[ "$program2" != "$program" ] && name="$name+$(basename "${program2%% *}")"
echo "$name tcp_mbps=$tcp udp_mbps=$udp ping_ms=${ping_ms:-nan} rss_mb=$rss"
