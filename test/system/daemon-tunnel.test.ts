/**
 * The daemon end to end: two daemons in namespaces (UDP on loopback in ns0, TUNs in ns1/ns2),
 * driven by Debian's unmodified wg. Then one side replaced by wireguard-go.
 */

import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nsPids, nsRun, skipReason } from '../helpers/netns.js';
import { pidAlive, run, runOk, sleep, waitUntil } from '../helpers/proc.js';
import { iperf, Pair, programFor } from '../helpers/tunnel.js';

const skip = skipReason('wg', 'ping', 'iperf3');
const skipGo = skip ?? (skipReason('wireguard-go') ? 'needs wireguard-go (apt-get install wireguard-go)' : null);

async function endpointOf(pair: Pair, ifname: string): Promise<string> {
  const { stdout } = await pair.wg('show', ifname, 'endpoints');
  return stdout.trim().split('\t')[1] ?? '';
}

describe.skipIf(skip)(`wireguard-ts <-> wireguard-ts${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const pair = new Pair();
  beforeAll(async () => {
    await pair.setup({ aKnowsB: false });
  });
  afterAll(async () => {
    await pair.cleanup();
  });

  it('pings over IPv4 and IPv6 inside the tunnel, with only one side knowing an endpoint', async () => {
    // a has no endpoint for b: b must initiate, and a learns b's endpoint (roaming).
    expect(await pair.ping(pair.b, pair.a.v4)).toBe(true);
    expect(await endpointOf(pair, pair.a.ifname)).toBe(`127.0.0.1:${pair.b.port}`);
    expect(await pair.ping(pair.a, pair.b.v4)).toBe(true);
    expect(await pair.ping(pair.a, pair.b.v6)).toBe(true);
    expect(await pair.ping(pair.b, pair.a.v6)).toBe(true);
  });

  it('carries TCP and UDP (iperf3)', async () => {
    expect(await iperf(pair, pair.a, pair.b, { seconds: 2 })).toBeGreaterThan(1);
    expect(await iperf(pair, pair.a, pair.b, { seconds: 2, udp: true })).toBeGreaterThan(1);
    expect(await iperf(pair, pair.b, pair.a, { seconds: 2, v6: true })).toBeGreaterThan(1);
  });

  it('reports what `wg show` users rely on', async () => {
    const dump = (await pair.wg('show', pair.a.ifname, 'dump')).stdout.trim().split('\n');
    const [iface, peer] = dump.map((l) => l.split('\t'));
    expect(iface![2]).toBe(String(pair.a.port));
    expect(peer![0]).toBe(pair.b.pub);
    expect(peer![3]).toBe(`${pair.b.v4}/32,${pair.b.v6}/128`);
    expect(Number(peer![4])).toBeGreaterThan(Date.now() / 1000 - 120); // latest handshake
    expect(Number(peer![5])).toBeGreaterThan(0); // rx
    expect(Number(peer![6])).toBeGreaterThan(0); // tx
    const transfer = (await pair.wg('show', pair.a.ifname, 'transfer')).stdout;
    expect(transfer).toContain(pair.b.pub);
    const hs = (await pair.wg('show', pair.a.ifname, 'latest-handshakes')).stdout;
    expect(hs).toContain(pair.b.pub);
    // Interface counters count what passes.
    const stats = (await runOk('ip', ['-n', pair.a.ns, '-s', '-j', 'link', 'show', pair.a.ifname])).stdout;
    const s = JSON.parse(stats)[0].stats64;
    expect(s.rx.packets).toBeGreaterThan(0);
    expect(s.tx.packets).toBeGreaterThan(0);
  });

  it('round-trips `wg showconf` through `wg setconf`, `wg addconf` and `wg syncconf`', async () => {
    const conf = (await pair.wg('showconf', pair.a.ifname)).stdout;
    expect(conf).toContain('[Interface]');
    expect(conf).toContain(`ListenPort = ${pair.a.port}`);
    const file = join(pair.tmp, 'a.conf');
    writeFileSync(file, conf, { mode: 0o600 });
    await pair.wg('setconf', pair.a.ifname, file);
    expect((await pair.wg('showconf', pair.a.ifname)).stdout).toBe(conf);
    await pair.wg('syncconf', pair.a.ifname, file);
    expect((await pair.wg('showconf', pair.a.ifname)).stdout).toBe(conf);
    const extra = join(pair.tmp, 'extra.conf');
    writeFileSync(extra, `[Peer]\nPublicKey = ${pair.b.pub}\nAllowedIPs = 10.99.0.0/16\n`, { mode: 0o600 });
    await pair.wg('addconf', pair.a.ifname, extra);
    expect((await pair.wg('show', pair.a.ifname, 'allowed-ips')).stdout).toContain('10.99.0.0/16');
    await pair.wg('syncconf', pair.a.ifname, file);
    expect((await pair.wg('showconf', pair.a.ifname)).stdout).toBe(conf);
    expect(await pair.ping(pair.a, pair.b.v4)).toBe(true);
  });

  it('drops packets whose inner source is not allowed for their peer, and takes a more specific prefix over', async () => {
    await runOk('ip', ['-n', pair.b.ns, 'addr', 'add', '192.168.242.2/32', 'dev', pair.b.ifname]);
    await runOk('ip', ['-n', pair.a.ns, 'route', 'add', '192.168.242.2/32', 'dev', pair.a.ifname]);
    // b routes to a: but a does not allow 192.168.242.2 from b, so the echo requests die at a.
    expect(await pair.ping(pair.b, pair.a.v4, ['-I', '192.168.242.2'])).toBe(false);
    await pair.wg('set', pair.a.ifname, 'peer', pair.b.pub, 'allowed-ips', `${pair.b.v4}/32,${pair.b.v6}/128,192.168.242.2/32`);
    expect(await pair.ping(pair.b, pair.a.v4, ['-I', '192.168.242.2'])).toBe(true);
  });

  it('follows a roaming peer to its new port', async () => {
    const newPort = pair.b.port + 1;
    await pair.wg('set', pair.b.ifname, 'listen-port', String(newPort));
    expect(await pair.ping(pair.b, pair.a.v4)).toBe(true);
    expect(await endpointOf(pair, pair.a.ifname)).toBe(`127.0.0.1:${newPort}`);
    pair.b.port = newPort;
  });

  it('sends persistent keepalives', async () => {
    await pair.wg('set', pair.b.ifname, 'peer', pair.a.pub, 'persistent-keepalive', '1');
    const rx = async () => Number((await pair.wg('show', pair.a.ifname, 'transfer')).stdout.trim().split('\t')[1]);
    const before = await rx();
    await sleep(2500);
    expect(await rx()).toBeGreaterThanOrEqual(before + 2 * 32);
    await pair.wg('set', pair.b.ifname, 'peer', pair.a.pub, 'persistent-keepalive', 'off');
  });

  it('carries big packets with a big MTU, and pads to the new MTU', async () => {
    for (const s of [pair.a, pair.b]) await runOk('ip', ['-n', s.ns, 'link', 'set', s.ifname, 'mtu', '9000']);
    expect(await pair.ping(pair.a, pair.b.v4, ['-s', '8900', '-M', 'do'])).toBe(true);
    // The daemon reads the MTU again within 4 s. A 1500-byte packet is then padded to 1504
    // (it was not padded at all under the old 1420), so each echo request adds 32 + 1504 bytes.
    await sleep(4300);
    const tx = async () => Number((await pair.wg('show', pair.a.ifname, 'transfer')).stdout.trim().split('\t')[2]);
    const before = await tx();
    expect(await pair.ping(pair.a, pair.b.v4, ['-s', '1472', '-M', 'do'])).toBe(true);
    expect((await tx()) - before).toBe(3 * (32 + 1504)); // ping sends three
    expect(await iperf(pair, pair.a, pair.b, { seconds: 2 })).toBeGreaterThan(1);
  });

  it('takes 100,000 allowed IPs with `wg setconf` and lists them back', async () => {
    const lines = ['[Interface]', `ListenPort = ${pair.a.port}`, '[Peer]', `PublicKey = ${pair.b.pub}`];
    const ips: string[] = [`${pair.b.v4}/32`];
    for (let i = 0; i < 100_000; i++) ips.push(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`);
    lines.push(`AllowedIPs = ${ips.join(', ')}`);
    const file = join(pair.tmp, 'big.conf');
    writeFileSync(file, lines.join('\n') + '\n', { mode: 0o600 });
    await pair.wg('setconf', pair.a.ifname, file);
    await pair.wg('set', pair.a.ifname, 'private-key', pair.a.privFile);
    const listed = (await pair.wg('show', pair.a.ifname, 'allowed-ips')).stdout.trim().split('\t')[1]!.split(' ');
    expect(listed.length).toBe(100_001);
    expect(new Set(listed)).toEqual(new Set(ips));
  }, 120_000);

  it('exits and removes its socket when its device is deleted', async () => {
    const sock = `/var/run/wireguard/${pair.a.ifname}.sock`;
    expect(existsSync(sock)).toBe(true);
    const pids = nsPids(pair.ns0);
    await runOk('ip', ['-n', pair.a.ns, 'link', 'del', pair.a.ifname]);
    await waitUntil('socket removal', () => !existsSync(sock), 3000);
    await waitUntil('one daemon to exit', () => pids.filter(pidAlive).length === pids.length - 1, 3000);
  });
});

describe.skipIf(skip)(`outer transport over IPv6${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const pair = new Pair();
  beforeAll(async () => {
    await pair.setup({ outer: 6, psk: true });
  });
  afterAll(async () => {
    await pair.cleanup();
  });
  it('pings and carries TCP and UDP with endpoints on [::1] and a preshared key', async () => {
    expect(await pair.ping(pair.a, pair.b.v4)).toBe(true);
    expect((await pair.wg('show', pair.b.ifname, 'endpoints')).stdout).toContain(`[::1]:${pair.a.port}`);
    expect(await iperf(pair, pair.b, pair.a, { seconds: 2 })).toBeGreaterThan(1);
    expect(await iperf(pair, pair.a, pair.b, { seconds: 2, udp: true, v6: true })).toBeGreaterThan(1);
  });
});

describe.skipIf(skip)(`daemon life cycle${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('refuses a second daemon for a live name, and exits on SIGTERM removing its socket', async () => {
    const pair = new Pair();
    try {
      pair.ns0 = await pair.nss.add('0');
      const ifname = `wl${pair.nss.tag}`;
      await nsRun(pair.ns0, pair.program('ts'), [ifname]);
      const sock = `/var/run/wireguard/${ifname}.sock`;
      expect(existsSync(sock)).toBe(true);
      let err = '';
      try {
        await nsRun(pair.ns0, pair.program('ts'), [ifname]);
      } catch (e) {
        err = (e as { stderr: string }).stderr;
      }
      expect(err.trim().split('\n')).toHaveLength(1);
      expect(err).toMatch(/wireguard-ts: .*/);
      const [pid] = nsPids(pair.ns0);
      process.kill(pid!, 'SIGTERM');
      await waitUntil('daemon exit', () => !pidAlive(pid!), 3000);
      expect(existsSync(sock)).toBe(false);
      await expect(runOk('ip', ['-n', pair.ns0, 'link', 'show', ifname])).rejects.toThrow();
    } finally {
      await pair.cleanup();
    }
  });

  it('rejects bad usage with one line and exit 1', async () => {
    for (const args of [[], ['a', 'b'], ['--bogus', 'x'], ['this-name-is-way-too-long']]) {
      const r = await run(programFor('ts'), args);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});

describe.skipIf(skipGo)(`interop with wireguard-go${skipGo ? ` (skipped: ${skipGo})` : ''}`, () => {
  for (const [a, b] of [
    ['ts', 'go'],
    ['go', 'ts'],
  ] as const) {
    it(`${a} initiates to ${b}: ping both ways and TCP`, async () => {
      const pair = new Pair();
      try {
        await pair.setup({ a, b, aKnowsB: true });
        expect(await pair.ping(pair.a, pair.b.v4)).toBe(true);
        expect(await pair.ping(pair.b, pair.a.v6)).toBe(true);
        expect(await iperf(pair, pair.a, pair.b, { seconds: 2 })).toBeGreaterThan(1);
      } finally {
        await pair.cleanup();
      }
    });
  }
});

describe.skipIf(skip ?? (skipReason('wg-quick') ? 'needs wg-quick' : null))('wg-quick', () => {
  it('brings an interface up and down with WG_QUICK_USERSPACE_IMPLEMENTATION', async () => {
    const pair = new Pair();
    try {
      await pair.setup({});
      // Replace side a by a wg-quick managed interface in ns0 itself (wg-quick acts in its own namespace).
      const ifname = `wq${pair.nss.tag}`;
      const priv = (await runOk('wg', ['genkey'])).stdout.trim();
      const pub = (await runOk('wg', ['pubkey'], { input: priv })).stdout.trim();
      const conf = join(pair.tmp, `${ifname}.conf`);
      writeFileSync(
        conf,
        `[Interface]\nPrivateKey = ${priv}\nAddress = 192.168.243.1/24\nListenPort = 41000\n\n[Peer]\nPublicKey = ${pair.b.pub}\nAllowedIPs = 192.168.243.2/32\nEndpoint = 127.0.0.1:${pair.b.port}\n`,
        { mode: 0o600 },
      );
      await pair.wg('set', pair.b.ifname, 'peer', pub, 'allowed-ips', '192.168.243.1/32', 'endpoint', '127.0.0.1:41000');
      await runOk('ip', ['-n', pair.b.ns, 'addr', 'add', '192.168.243.2/24', 'dev', pair.b.ifname]);
      const env = { ...process.env, WG_QUICK_USERSPACE_IMPLEMENTATION: pair.program('ts'), WG_HIDE_KEYS: 'never' };
      await nsRun(pair.ns0, 'wg-quick', ['up', conf], { env });
      expect((await nsRun(pair.ns0, 'wg', ['show', ifname, 'listen-port'])).stdout.trim()).toBe('41000');
      await nsRun(pair.ns0, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', '192.168.243.2'], { timeoutMs: 15_000 });
      await nsRun(pair.ns0, 'wg-quick', ['down', conf], { env });
      await waitUntil('socket removal', () => !existsSync(`/var/run/wireguard/${ifname}.sock`), 3000);
    } finally {
      await pair.cleanup();
    }
  });
});
