# Sourced by bench/ping-stages.sh and bench/tunnel-cpu.sh: the topology of
# ../shared/bench/tunnel-bench.sh (wireguard-go's tests/netns.sh) for two daemons of $program.
# Needs tag, program and run set, and the caller's cleanup trap (it kills what runs in the
# namespaces and deletes them). Sets ns0 ns1 ns2 (the daemons' UDP sockets on loopback in ns0,
# their TUNs moved into ns1 and ns2, 192.168.241.1 and .2), if1 if2, and daemons (their pids,
# comma-separated). NODE_OPTIONS, if set, goes to the daemons only.
ns0=$tag-0; ns1=$tag-1; ns2=$tag-2; if1=${tag}a; if2=${tag}b

pair_up() {
  local n i k1 k2 p1 p2
  for n in $ns0 $ns1 $ns2; do ip netns add $n; ip -n $n link set up dev lo; done
  WG_HIDE_KEYS=never ip netns exec $ns0 $program $if1 >"$run/d1.log" 2>&1
  WG_HIDE_KEYS=never ip netns exec $ns0 $program $if2 >"$run/d2.log" 2>&1
  unset NODE_OPTIONS
  for i in $(seq 50); do ip -n $ns0 link show $if2 >/dev/null 2>&1 && break; sleep 0.1; done
  daemons=$(ip netns pids $ns0 | paste -sd,)
  ip -n $ns0 link set $if1 netns $ns1; ip -n $ns0 link set $if2 netns $ns2
  k1=$(wg genkey); k2=$(wg genkey); p1=$(wg pubkey <<<"$k1"); p2=$(wg pubkey <<<"$k2")
  ip -n $ns1 addr add 192.168.241.1/24 dev $if1; ip -n $ns2 addr add 192.168.241.2/24 dev $if2
  ip netns exec $ns0 wg set $if1 private-key <(echo "$k1") listen-port 10000 peer "$p2" allowed-ips 192.168.241.2/32 endpoint 127.0.0.1:20000
  ip netns exec $ns0 wg set $if2 private-key <(echo "$k2") listen-port 20000 peer "$p1" allowed-ips 192.168.241.1/32 endpoint 127.0.0.1:10000
  ip -n $ns1 link set up dev $if1; ip -n $ns2 link set up dev $if2
}

# Kills what runs in the three namespaces and deletes them (with the TUNs in them).
pair_down() {
  local n p
  for n in $ns0 $ns1 $ns2; do for p in $(ip netns pids $n 2>/dev/null); do kill $p 2>/dev/null; done; done
  sleep 0.3
  ip -n $ns1 link del $if1 2>/dev/null; ip -n $ns2 link del $if2 2>/dev/null
  ip netns del $ns1 2>/dev/null; ip netns del $ns2 2>/dev/null; ip netns del $ns0 2>/dev/null
}
