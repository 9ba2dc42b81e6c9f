/**
 * Outer-path behaviour the kernel module gives and users rely on: sticky source address on a
 * multi-homed host (with fallback when the address goes away), and NAT traversal kept alive by
 * persistent keepalive. Each daemon's UDP lives in its own "host" namespace; its device is
 * moved into a "container" namespace.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Namespaces, nsRun, skipReason, uniqueTag } from '../helpers/netns.js';
import { runOk, sleep, WG_TS } from '../helpers/proc.js';
import { startDaemonIn, wgKeypair } from '../helpers/tunnel.js';

const skip = skipReason('wg', 'ping');
const skipNat = skip ?? (skipReason('nft') ? 'needs nft (apt-get install nftables)' : null);

/** Namespaces and a private temporary directory per test, torn down after each, pass or fail. */
function lab(name: string): { nss: Namespaces; tmp: () => string } {
  const nss = new Namespaces(uniqueTag());
  let dir = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), `wgts-${name}-`));
  });
  afterEach(async () => {
    await nss.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  return { nss, tmp: () => dir };
}

/**
 * Two "host" namespaces joined by a veth pair (`la` in hostA, `lb` in hostB), a daemon started
 * in each (`ifa`, `ifb`) with its device moved into a "container" namespace of its own.
 */
async function linkedHosts(nss: Namespaces, prefix: string) {
  const t = nss.tag;
  const [hostA, hostB, ctA, ctB] = [await nss.add('ha'), await nss.add('hb'), await nss.add('ca'), await nss.add('cb')];
  const [la, lb, ifa, ifb] = [`${prefix}${t}a`, `${prefix}${t}b`, `${prefix}a${t}`, `${prefix}b${t}`];
  await runOk('ip', ['link', 'add', la, 'netns', hostA, 'type', 'veth', 'peer', 'name', lb, 'netns', hostB]);
  await startDaemon(hostA, ifa, ctA);
  await startDaemon(hostB, ifb, ctB);
  return { hostA, hostB, ctA, ctB, la, lb, ifa, ifb };
}

async function keys(tmp: string) {
  return { a: await wgKeypair(tmp, 'a.key'), b: await wgKeypair(tmp, 'b.key') };
}

/** Start bin/wireguard-ts in `ns` (its UDP stays there) and move its device into `target`. */
const startDaemon = (ns: string, ifname: string, target: string) => startDaemonIn(ns, WG_TS, ifname, target);

/** `wg set IFNAME private-key KEY listen-port PORT peer PUB allowed-ips ALLOWED [endpoint ENDPOINT]` in `ns`. */
async function wgPeer(ns: string, ifname: string, privFile: string, port: number, peer: string, allowed: string, endpoint?: string): Promise<void> {
  const ep = endpoint === undefined ? [] : ['endpoint', endpoint];
  await nsRun(ns, 'wg', ['set', ifname, 'private-key', privFile, 'listen-port', String(port), 'peer', peer, 'allowed-ips', allowed, ...ep]);
}

async function addressUp(ns: string, ifname: string, cidr: string): Promise<void> {
  await runOk('ip', ['-n', ns, 'addr', 'add', cidr, 'dev', ifname]);
  await runOk('ip', ['-n', ns, 'link', 'set', ifname, 'up']);
}

async function ping(ns: string, to: string): Promise<boolean> {
  return nsRun(ns, 'ping', ['-c', '2', '-i', '0.3', '-W', '1', to], { timeoutMs: 10_000 }).then(
    () => true,
    () => false,
  );
}

async function ipAll(cmds: ReadonlyArray<readonly [string, readonly string[]]>): Promise<void> {
  for (const [ns, args] of cmds) await runOk('ip', ['-n', ns, ...args]);
}

/**
 * a's UDP lives in a multi-homed namespace (192.168.250.1 and .2 on one veth); b's in another
 * namespace on the same link, and b reaches a at .2 (not a's primary address).
 */
describe.skipIf(skip)(`sticky source address${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const { nss, tmp } = lab('sticky');

  it('answers from the address the peer sent to, and falls back when that address is removed', async () => {
    const { hostA, hostB, ctA, ctB, la, lb, ifa, ifb } = await linkedHosts(nss, 's');
    await ipAll([
      [hostA, ['addr', 'add', '192.168.250.1/24', 'dev', la]],
      [hostA, ['addr', 'add', '192.168.250.2/24', 'dev', la]],
      [hostA, ['link', 'set', la, 'up']],
      [hostB, ['addr', 'add', '192.168.250.10/24', 'dev', lb]],
      [hostB, ['link', 'set', lb, 'up']],
    ]);
    const k = await keys(tmp());
    await wgPeer(hostA, ifa, k.a.privFile, 51820, k.b.pub, '192.168.245.2/32');
    await wgPeer(hostB, ifb, k.b.privFile, 51821, k.a.pub, '192.168.245.1/32', '192.168.250.2:51820');
    await addressUp(ctA, ifa, '192.168.245.1/24');
    await addressUp(ctB, ifb, '192.168.245.2/24');
    const endpointAtB = async () => (await nsRun(hostB, 'wg', ['show', ifb, 'endpoints'])).stdout.trim().split('\t')[1];

    expect(await ping(ctB, '192.168.245.1')).toBe(true);
    expect(await ping(ctA, '192.168.245.2')).toBe(true);
    // Had a answered from the routing table's choice (.1, the primary address), b would have roamed to it.
    expect(await endpointAtB()).toBe('192.168.250.2:51820');

    // Remove the address a answers from: a's next packet must still leave (from the routing
    // table's choice), b roams to it, and traffic goes on both ways.
    await runOk('ip', ['-n', hostA, 'addr', 'del', '192.168.250.2/24', 'dev', la]);
    expect(await ping(ctA, '192.168.245.2')).toBe(true);
    expect(await endpointAtB()).toBe('192.168.250.1:51820');
    expect(await ping(ctB, '192.168.245.1')).toBe(true);
  }, 60_000);
});

/**
 * The sticky source follows route changes, with no send failing: a has two links to b
 * (192.168.250.0/24 and 192.168.251.0/24) and answers from the address b sent to, until a better
 * route to b appears through the other link (then from that link's address), or a route with
 * another preferred source (then from that one). b roams to each.
 */
describe.skipIf(skip)(`sticky source address on route changes${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const { nss, tmp } = lab('sroute');

  it("leaves from the new route's source as soon as the route changes", async () => {
    const { hostA, hostB, ctA, ctB, la, lb, ifa, ifb } = await linkedHosts(nss, 'r');
    const [la2, lb2] = [`${la}2`, `${lb}2`];
    await runOk('ip', ['link', 'add', la2, 'netns', hostA, 'type', 'veth', 'peer', 'name', lb2, 'netns', hostB]);
    await ipAll([
      [hostA, ['addr', 'add', '192.168.250.2/24', 'dev', la]],
      [hostA, ['addr', 'add', '192.168.250.3/24', 'dev', la]],
      [hostA, ['addr', 'add', '192.168.251.2/24', 'dev', la2]],
      [hostA, ['link', 'set', la, 'up']],
      [hostA, ['link', 'set', la2, 'up']],
      [hostB, ['addr', 'add', '192.168.250.10/24', 'dev', lb]],
      [hostB, ['addr', 'add', '192.168.251.10/24', 'dev', lb2]],
      [hostB, ['link', 'set', lb, 'up']],
      [hostB, ['link', 'set', lb2, 'up']],
    ]);
    // b takes a's packets for 192.168.250.10 on its other link too (weak host, no reverse-path filter).
    for (const ns of [hostA, hostB]) for (const k of ['all', 'default']) await nsRun(ns, 'sysctl', ['-qw', `net.ipv4.conf.${k}.rp_filter=0`]);
    await nsRun(hostB, 'sysctl', ['-qw', `net.ipv4.conf.${lb2}.rp_filter=0`]);
    const k = await keys(tmp());
    await nsRun(hostA, 'wg', ['set', ifa, 'private-key', k.a.privFile, 'listen-port', '51820', 'peer', k.b.pub, 'allowed-ips', '192.168.247.2/32']);
    await nsRun(hostB, 'wg', [
      'set',
      ifb,
      'private-key',
      k.b.privFile,
      'listen-port',
      '51821',
      'peer',
      k.a.pub,
      'allowed-ips',
      '192.168.247.1/32',
      'endpoint',
      '192.168.250.2:51820',
    ]);
    await addressUp(ctA, ifa, '192.168.247.1/24');
    await addressUp(ctB, ifb, '192.168.247.2/24');
    const endpointAtB = async () => (await nsRun(hostB, 'wg', ['show', ifb, 'endpoints'])).stdout.trim().split('\t')[1];

    expect(await ping(ctB, '192.168.247.1')).toBe(true);
    expect(await ping(ctA, '192.168.247.2')).toBe(true);
    expect(await endpointAtB()).toBe('192.168.250.2:51820');

    // A better route to b through the other link: a's source 192.168.250.2 would still work
    // there (nothing fails), but its replies now leave from the new route's 192.168.251.2.
    await runOk('ip', ['-n', hostA, 'route', 'add', '192.168.250.10/32', 'via', '192.168.251.10', 'dev', la2]);
    await sleep(300);
    expect(await ping(ctA, '192.168.247.2')).toBe(true);
    expect(await endpointAtB()).toBe('192.168.251.2:51820');
    expect(await ping(ctB, '192.168.247.1')).toBe(true);

    // Back to the first link, then a route there with another preferred source.
    await runOk('ip', ['-n', hostA, 'route', 'del', '192.168.250.10/32']);
    await sleep(300);
    expect(await ping(ctA, '192.168.247.2')).toBe(true);
    expect(await endpointAtB()).toBe('192.168.250.2:51820');
    await runOk('ip', ['-n', hostA, 'route', 'add', '192.168.250.10/32', 'dev', la, 'src', '192.168.250.3']);
    await sleep(300);
    expect(await ping(ctA, '192.168.247.2')).toBe(true);
    expect(await endpointAtB()).toBe('192.168.250.3:51820');
    expect(await ping(ctB, '192.168.247.1')).toBe(true);
  }, 60_000);
});

/**
 * Two hosts that share only a link, reached by IPv6 link-local address: the endpoint needs its
 * zone ("[fe80::b%veth]:port"), as `wg` passes it. b has no endpoint and learns a's, zone and all.
 */
describe.skipIf(skip)(`link-local IPv6 endpoints${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const { nss, tmp } = lab('ll');

  it('carries traffic over fe80:: endpoints with zones, set by name and shown back by name', async () => {
    const { hostA, hostB, ctA, ctB, la, lb, ifa, ifb } = await linkedHosts(nss, 'l');
    await ipAll([
      [hostA, ['addr', 'add', 'fe80::a/64', 'dev', la, 'nodad']],
      [hostA, ['link', 'set', la, 'up']],
      [hostB, ['addr', 'add', 'fe80::b/64', 'dev', lb, 'nodad']],
      [hostB, ['link', 'set', lb, 'up']],
    ]);
    const k = await keys(tmp());
    await wgPeer(hostA, ifa, k.a.privFile, 51820, k.b.pub, '192.168.246.2/32', `[fe80::b%${la}]:51821`);
    await wgPeer(hostB, ifb, k.b.privFile, 51821, k.a.pub, '192.168.246.1/32');
    await addressUp(ctA, ifa, '192.168.246.1/24');
    await addressUp(ctB, ifb, '192.168.246.2/24');
    const endpoint = async (ns: string, ifname: string) => (await nsRun(ns, 'wg', ['show', ifname, 'endpoints'])).stdout.trim().split('\t')[1];
    expect(await endpoint(hostA, ifa)).toBe(`[fe80::b%${la}]:51821`);
    expect(await ping(ctA, '192.168.246.2')).toBe(true);
    expect(await endpoint(hostB, ifb)).toBe(`[fe80::a%${lb}]:51820`);
    expect(await ping(ctB, '192.168.246.1')).toBe(true);
    // showconf/setconf round trip keeps the zone.
    const conf = (await nsRun(hostA, 'wg', ['showconf', ifa])).stdout;
    expect(conf).toContain(`Endpoint = [fe80::b%${la}]:51821`);
  }, 60_000);
});

/**
 * a (public, 192.168.251.1) <-veth-> router (NAT, short UDP conntrack timeout) <-veth-> b (private).
 * b knows a's endpoint; a learns b's NATed address. Without keepalives the mapping expires and a
 * cannot reach b; with persistent-keepalive it stays.
 */
describe.skipIf(skipNat)(`NAT traversal with persistent keepalive${skipNat ? ` (skipped: ${skipNat})` : ''}`, () => {
  const { nss, tmp } = lab('nat');

  it('keeps the NAT mapping alive so the public side can reach the private side', async () => {
    const t = nss.tag;
    const pubNs = await nss.add('pub');
    const router = await nss.add('rt');
    const privNs = await nss.add('prv');
    const ctA = await nss.add('ca');
    const ctB = await nss.add('cb');
    await runOk('ip', ['link', 'add', `n${t}a`, 'netns', pubNs, 'type', 'veth', 'peer', 'name', `n${t}r`, 'netns', router]);
    await runOk('ip', ['link', 'add', `n${t}b`, 'netns', privNs, 'type', 'veth', 'peer', 'name', `n${t}s`, 'netns', router]);
    await ipAll([
      [pubNs, ['addr', 'add', '192.168.251.1/24', 'dev', `n${t}a`]],
      [pubNs, ['link', 'set', `n${t}a`, 'up']],
      [router, ['addr', 'add', '192.168.251.254/24', 'dev', `n${t}r`]],
      [router, ['addr', 'add', '192.168.252.254/24', 'dev', `n${t}s`]],
      [router, ['link', 'set', `n${t}r`, 'up']],
      [router, ['link', 'set', `n${t}s`, 'up']],
      [privNs, ['addr', 'add', '192.168.252.2/24', 'dev', `n${t}b`]],
      [privNs, ['link', 'set', `n${t}b`, 'up']],
      [privNs, ['route', 'add', 'default', 'via', '192.168.252.254']],
    ]);
    await nsRun(router, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    await nsRun(router, 'sysctl', ['-qw', 'net.netfilter.nf_conntrack_udp_timeout=3']);
    await nsRun(router, 'sysctl', ['-qw', 'net.netfilter.nf_conntrack_udp_timeout_stream=3']);
    const rules = join(tmp(), 'nat.nft');
    // Masquerade with a random source port, so an expired mapping is not re-created identically.
    writeFileSync(rules, `table ip nat {\n chain post { type nat hook postrouting priority 100; oifname "n${t}r" masquerade random; }\n}\n`);
    await nsRun(router, 'nft', ['-f', rules]);

    const k = await keys(tmp());
    const ifa = `xa${t}`;
    const ifb = `xb${t}`;
    await startDaemon(pubNs, ifa, ctA);
    await startDaemon(privNs, ifb, ctB);
    await wgPeer(pubNs, ifa, k.a.privFile, 51820, k.b.pub, '192.168.244.2/32');
    await wgPeer(privNs, ifb, k.b.privFile, 51821, k.a.pub, '192.168.244.1/32', '192.168.251.1:51820');
    await addressUp(ctA, ifa, '192.168.244.1/24');
    await addressUp(ctB, ifb, '192.168.244.2/24');

    // b (behind NAT) initiates; a learns b's NATed endpoint.
    expect(await ping(ctB, '192.168.244.1')).toBe(true);
    // Idle past the conntrack timeout: a can no longer reach b.
    await sleep(5000);
    expect(await ping(ctA, '192.168.244.2')).toBe(false);
    // With persistent keepalive on b, the mapping is refreshed and a keeps reaching b.
    await nsRun(privNs, 'wg', ['set', ifb, 'peer', k.a.pub, 'persistent-keepalive', '1']);
    await sleep(6500);
    expect(await ping(ctA, '192.168.244.2')).toBe(true);
  }, 60_000);
});
