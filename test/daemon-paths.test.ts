/**
 * Outer-path behaviour the kernel module gives and users rely on: sticky source address on a
 * multi-homed host (with fallback when the address goes away), and NAT traversal kept alive by
 * persistent keepalive.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Pair } from './helpers/tunnel.js';
import { Namespaces, WG_TS, nsRun, run, skipReason, sleep, uniqueTag } from './helpers/netns.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const skip = skipReason('wg', 'ping');
const skipNat = skip ?? (skipReason('nft') ? 'needs nft (apt-get install nftables)' : null);

describe.skipIf(skip)(`sticky source address${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let pair: Pair | null = null;
  afterEach(async () => {
    await pair?.cleanup();
  });

  it('answers from the address the peer sent to, and falls back when that address is removed', async () => {
    pair = new Pair();
    await pair.setup({ aKnowsB: false });
    // ns0 becomes multi-homed: b reaches a at 192.168.250.2, while 192.168.250.1 is the other address.
    await run('ip', ['-n', pair.ns0, 'addr', 'add', '192.168.250.1/32', 'dev', 'lo']);
    await run('ip', ['-n', pair.ns0, 'addr', 'add', '192.168.250.2/32', 'dev', 'lo']);
    await pair.wg('set', pair.b.ifname, 'peer', pair.a.pub, 'endpoint', `192.168.250.2:${pair.a.port}`);
    expect(await pair.ping(pair.b, pair.a.v4)).toBe(true);
    expect(await pair.ping(pair.a, pair.b.v4)).toBe(true);
    // Had a answered from the routing table's choice, b would have roamed away from .2.
    const ep = async (ifname: string) => (await pair!.wg('show', ifname, 'endpoints')).stdout.trim().split('\t')[1];
    expect(await ep(pair.b.ifname)).toBe(`192.168.250.2:${pair.a.port}`);
    // Remove the address a was answering from: a's next packet must still leave (from the
    // routing table's choice), b roams to it, and traffic goes on.
    await run('ip', ['-n', pair.ns0, 'addr', 'del', '192.168.250.2/32', 'dev', 'lo']);
    expect(await pair.ping(pair.a, pair.b.v4)).toBe(true);
    expect(await ep(pair.b.ifname)).not.toBe(`192.168.250.2:${pair.a.port}`);
    expect(await pair.ping(pair.b, pair.a.v4)).toBe(true);
  });
});

/**
 * a (public, 192.168.251.1) <-veth-> router (NAT, short UDP conntrack timeout) <-veth-> b (private).
 * b knows a's endpoint; a learns b's NATed address. Without keepalives the mapping expires and a
 * cannot reach b; with persistent-keepalive it stays.
 */
describe.skipIf(skipNat)(`NAT traversal with persistent keepalive${skipNat ? ` (skipped: ${skipNat})` : ''}`, () => {
  const nss = new Namespaces(uniqueTag());
  const tmp = mkdtempSync(join(tmpdir(), 'wgts-nat-'));
  afterEach(async () => {
    await nss.cleanup();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('keeps the NAT mapping alive so the public side can reach the private side', async () => {
    const t = nss.tag;
    const pubNs = await nss.add('pub');
    const router = await nss.add('rt');
    const privNs = await nss.add('prv');
    const ctA = await nss.add('ca');
    const ctB = await nss.add('cb');
    await run('ip', ['link', 'add', `n${t}a`, 'netns', pubNs, 'type', 'veth', 'peer', 'name', `n${t}r`, 'netns', router]);
    await run('ip', ['link', 'add', `n${t}b`, 'netns', privNs, 'type', 'veth', 'peer', 'name', `n${t}s`, 'netns', router]);
    const cmds: Array<[string, string[]]> = [
      [pubNs, ['addr', 'add', '192.168.251.1/24', 'dev', `n${t}a`]],
      [pubNs, ['link', 'set', `n${t}a`, 'up']],
      [router, ['addr', 'add', '192.168.251.254/24', 'dev', `n${t}r`]],
      [router, ['addr', 'add', '192.168.252.254/24', 'dev', `n${t}s`]],
      [router, ['link', 'set', `n${t}r`, 'up']],
      [router, ['link', 'set', `n${t}s`, 'up']],
      [privNs, ['addr', 'add', '192.168.252.2/24', 'dev', `n${t}b`]],
      [privNs, ['link', 'set', `n${t}b`, 'up']],
      [privNs, ['route', 'add', 'default', 'via', '192.168.252.254']],
    ];
    for (const [ns, args] of cmds) await run('ip', ['-n', ns, ...args]);
    await nsRun(router, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    await nsRun(router, 'sysctl', ['-qw', 'net.netfilter.nf_conntrack_udp_timeout=3']);
    await nsRun(router, 'sysctl', ['-qw', 'net.netfilter.nf_conntrack_udp_timeout_stream=3']);
    const rules = join(tmp, 'nat.nft');
    // Masquerade with a random source port, so an expired mapping is not re-created identically.
    writeFileSync(rules, `table ip nat {\n chain post { type nat hook postrouting priority 100; oifname "n${t}r" masquerade random; }\n}\n`);
    await nsRun(router, 'nft', ['-f', rules]);

    const keys: Record<string, { priv: string; pub: string }> = {};
    for (const s of ['a', 'b']) {
      const priv = join(tmp, `${s}.key`);
      const k = (await run('wg', ['genkey'])).stdout;
      writeFileSync(priv, k, { mode: 0o600 });
      keys[s] = { priv, pub: (await run('wg', ['pubkey'], { input: k })).stdout.trim() };
    }
    const ifa = `xa${t}`;
    const ifb = `xb${t}`;
    await nsRun(pubNs, WG_TS, [ifa]);
    await nsRun(privNs, WG_TS, [ifb]);
    await run('ip', ['-n', pubNs, 'link', 'set', ifa, 'netns', ctA]);
    await run('ip', ['-n', privNs, 'link', 'set', ifb, 'netns', ctB]);
    await nsRun(pubNs, 'wg', ['set', ifa, 'private-key', keys.a!.priv, 'listen-port', '51820', 'peer', keys.b!.pub, 'allowed-ips', '192.168.244.2/32']);
    await nsRun(privNs, 'wg', ['set', ifb, 'private-key', keys.b!.priv, 'listen-port', '51821', 'peer', keys.a!.pub, 'allowed-ips', '192.168.244.1/32', 'endpoint', '192.168.251.1:51820']);
    for (const [ns, ifn, addr] of [
      [ctA, ifa, '192.168.244.1/24'],
      [ctB, ifb, '192.168.244.2/24'],
    ] as const) {
      await run('ip', ['-n', ns, 'addr', 'add', addr, 'dev', ifn]);
      await run('ip', ['-n', ns, 'link', 'set', ifn, 'up']);
    }
    const ping = async (ns: string, to: string) =>
      nsRun(ns, 'ping', ['-c', '2', '-i', '0.3', '-W', '1', to], { timeout: 10_000 }).then(
        () => true,
        () => false,
      );
    // b (behind NAT) initiates; a learns b's NATed endpoint.
    expect(await ping(ctB, '192.168.244.1')).toBe(true);
    // Idle past the conntrack timeout: a can no longer reach b.
    await sleep(5000);
    expect(await ping(ctA, '192.168.244.2')).toBe(false);
    // With persistent keepalive on b, the mapping is refreshed and a keeps reaching b.
    await nsRun(privNs, 'wg', ['set', ifb, 'peer', keys.a!.pub, 'persistent-keepalive', '1']);
    await sleep(1500);
    await sleep(5000);
    expect(await ping(ctA, '192.168.244.2')).toBe(true);
  }, 60_000);
});
