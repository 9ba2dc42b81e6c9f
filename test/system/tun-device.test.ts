/**
 * TUN devices for real: needs root and /dev/net/tun. Every namespace here is anonymous (held
 * by an `unshare --net sleep` process), so nothing shows up in `ip netns list`, and killing
 * the holder destroys the namespace.
 */

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ipChecksum } from '../../noise/packets.js';
import * as ipx from '../../tun/ip.js';
import { Tun } from '../../tun/tun.js';
import { AnonNetns, type Holder } from '../helpers/anon-netns.js';
import { isRoot, sleep } from '../helpers/proc.js';
import { leftoverTemps } from '../helpers/tun.js';

const canRun = isRoot && existsSync('/dev/net/tun');
const why = canRun ? '' : ' (skipped: needs root and /dev/net/tun)';

const netns = new AnonNetns();
const tuns: Tun[] = [];
const newNetns = (): Promise<Holder> => netns.create();
const killHolder = (h: Holder): Promise<void> => h.kill();

function uniq(prefix: string): string {
  return (prefix + process.pid.toString(36) + randomBytes(2).toString('hex')).slice(0, 15);
}

/** Runs a command inside the namespace of `pid`; resolves with its exit code and output. */
function runIn(pid: number, cmd: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(ipx.nsenterBinary(), [`--net=/proc/${pid}/ns/net`, '--', ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => resolve({ code, out }));
  });
}

/** An IPv4 ICMP echo reply for echo request `p`, or null if `p` is not one. */
function echoReply(p: Uint8Array): Uint8Array | null {
  if (p.length < 28 || p[0]! >> 4 !== 4 || p[9] !== 1) return null;
  const ihl = (p[0]! & 15) * 4;
  if (p[ihl] !== 8) return null;
  const r = new Uint8Array(p);
  r.set(p.subarray(16, 20), 12);
  r.set(p.subarray(12, 16), 16);
  r[8] = 64;
  r[10] = r[11] = 0;
  const hc = ipChecksum(r, 0, ihl);
  r[10] = hc >> 8;
  r[11] = hc & 255;
  r[ihl] = 0;
  r[ihl + 2] = r[ihl + 3] = 0;
  const c = ipChecksum(r, ihl, r.length);
  r[ihl + 2] = c >> 8;
  r[ihl + 3] = c & 255;
  return r;
}

function ipv4(p: Uint8Array, off: number): string {
  return `${p[off]}.${p[off + 1]}.${p[off + 2]}.${p[off + 3]}`;
}

afterAll(async () => {
  for (const t of tuns) t.close();
  await netns.killAll();
});

describe.skipIf(!canRun)('Tun in a namespace' + why, () => {
  let ns: Holder;
  let tun: Tun;
  const name = 'wgtun0';
  beforeAll(async () => {
    ns = await newNetns();
    tun = Tun.create(name, { netnsPid: ns.pid });
    tuns.push(tun);
    ipx.addrAdd(name, '10.77.0.1/24', { netnsPid: ns.pid });
    ipx.linkSetUp(name, { netnsPid: ns.pid });
  });

  it('is created under its final name in the target namespace only, MTU 1420, no temporary left', () => {
    expect(tun.name).toBe(name);
    expect(ipx.linkExists(name, { netnsPid: ns.pid })).toBe(true);
    expect(existsSync(`/sys/class/net/${name}`)).toBe(false);
    expect(ipx.getMtu(name, { netnsPid: ns.pid })).toBe(1420);
    expect(leftoverTemps()).toEqual([]);
  });

  it('reads the ICMP echo of a ping into it, and the written reply makes the ping succeed', async () => {
    const seen: { src: string; dst: string; len: number }[] = [];
    let batches = 0;
    tun.start(
      (pkt) => {
        const r = echoReply(pkt);
        if (r) {
          seen.push({ src: ipv4(pkt, 12), dst: ipv4(pkt, 16), len: pkt.length });
          expect(tun.write(r)).toBe(true);
        }
      },
      () => batches++,
    );
    try {
      const ping = await runIn(ns.pid, ['/usr/bin/ping', '-n', '-c', '2', '-i', '0.2', '-W', '2', '10.77.0.2']);
      expect(ping.out).toMatch(/2 received/);
      expect(ping.code).toBe(0);
      expect(seen.length).toBe(2);
      expect(seen[0]).toEqual({ src: '10.77.0.1', dst: '10.77.0.2', len: 84 });
      expect(batches).toBeGreaterThan(0);
      expect(tun.stats.txPackets).toBe(2);
      expect(tun.stats.rxPackets).toBeGreaterThanOrEqual(2);
    } finally {
      tun.stop();
    }
  });

  it('carries 34736-byte MTU packets (MTU changed later with ip link set mtu)', async () => {
    tun.setMtu(34736);
    expect(ipx.getMtu(name, { netnsPid: ns.pid })).toBe(34736);
    const lens: number[] = [];
    tun.start(
      (pkt) => {
        const r = echoReply(pkt);
        if (r) {
          lens.push(pkt.length);
          tun.write(r);
        }
      },
      () => {},
    );
    try {
      // 34708 bytes of ICMP payload + 8 + 20 = 34736: one packet of exactly the MTU.
      const ping = await runIn(ns.pid, ['/usr/bin/ping', '-n', '-c', '1', '-W', '2', '-M', 'do', '-s', '34708', '10.77.0.2']);
      expect(lens).toEqual([34736]);
      expect(ping.code).toBe(0);
    } finally {
      tun.stop();
    }
  });

  it('refuses a name that already exists in the target namespace, leaving nothing behind', () => {
    expect(() => Tun.create(name, { netnsPid: ns.pid })).toThrow(/already exists/);
    expect(() => Tun.create('lo', { netnsPid: ns.pid })).toThrow(/already exists/);
    expect(leftoverTemps()).toEqual([]);
  });
});

describe.skipIf(!canRun)('Tun in the current namespace' + why, () => {
  it('creates, refuses a duplicate, and close() deletes the device', () => {
    const name = uniq('wgh');
    const t = Tun.create(name, { mtu: 1500 });
    tuns.push(t);
    try {
      expect(existsSync(`/sys/class/net/${name}`)).toBe(true);
      expect(ipx.getMtu(name)).toBe(1500);
      expect(() => Tun.create(name)).toThrow(/already exists/);
    } finally {
      t.close();
    }
    expect(existsSync(`/sys/class/net/${name}`)).toBe(false);
    expect(t.write(new Uint8Array(20))).toBe(false);
  });
});

describe.skipIf(!canRun)('Tun moved while in use' + why, () => {
  it('keeps reading and writing after a move to another namespace, and follows the rename', async () => {
    const ns = await newNetns();
    const name = uniq('wgm');
    const t = Tun.create(name);
    tuns.push(t);
    let echoes = 0;
    t.start(
      (pkt) => {
        const r = echoReply(pkt);
        if (r && t.write(r)) echoes++;
      },
      () => {},
    );
    try {
      ipx.moveLink(name, ns.pid, 'moved0');
      expect(existsSync(`/sys/class/net/${name}`)).toBe(false);
      ipx.addrAdd('moved0', '10.78.0.1/24', { netnsPid: ns.pid });
      ipx.linkSetUp('moved0', { netnsPid: ns.pid });
      const ping = await runIn(ns.pid, ['/usr/bin/ping', '-n', '-c', '1', '-W', '2', '10.78.0.2']);
      expect(ping.code).toBe(0);
      expect(echoes).toBe(1);
      await sleep(1300); // the TUNGETIFF probe runs every second
      expect(t.name).toBe('moved0');
      expect(t.removed).toBeNull();
    } finally {
      t.close();
      await killHolder(ns);
    }
  });
});

describe.skipIf(!canRun)('Tun removal detection' + why, () => {
  async function removedWithin(t: Tun, ms: number, remove: () => Promise<void> | void): Promise<{ reason: string; elapsed: number }> {
    const got = new Promise<{ reason: string; elapsed: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not reported within ${ms} ms`)), ms);
      t.onRemoved((reason) => {
        clearTimeout(timer);
        resolve({ reason, elapsed: Date.now() - t0 });
      });
    });
    const t0 = Date.now();
    await remove();
    return got;
  }

  it('reports `ip link del` promptly, while reading', async () => {
    const ns = await newNetns();
    const t = Tun.create('wgdel0', { netnsPid: ns.pid });
    tuns.push(t);
    t.start(
      () => {},
      () => {},
    );
    const r = await removedWithin(t, 1000, () => ipx.linkDel('wgdel0', { netnsPid: ns.pid }));
    if (process.env.WGTS_VERBOSE) console.log(JSON.stringify(r));
    expect(r.reason).toMatch(/removed/);
    expect(t.removed).toBe(r.reason);
    expect(t.write(new Uint8Array(28))).toBe(false);
    t.close();
    await killHolder(ns);
  });

  it('reports `ip link del` promptly without reading (the TUNGETIFF probe)', async () => {
    const ns = await newNetns();
    const t = Tun.create('wgdel1', { netnsPid: ns.pid });
    tuns.push(t);
    const r = await removedWithin(t, 1000, () => ipx.linkDel('wgdel1', { netnsPid: ns.pid }));
    if (process.env.WGTS_VERBOSE) console.log(JSON.stringify(r));
    expect(r.reason).toMatch(/TUNGETIFF: EBADFD/);
    t.close();
    await killHolder(ns);
  });

  it('reports the destruction of its namespace promptly', async () => {
    const ns = await newNetns();
    const t = Tun.create('wgdel2', { netnsPid: ns.pid });
    tuns.push(t);
    t.start(
      () => {},
      () => {},
    );
    const r = await removedWithin(t, 1500, () => killHolder(ns));
    if (process.env.WGTS_VERBOSE) console.log(JSON.stringify(r));
    expect(r.reason).toMatch(/removed/);
    // A callback registered afterwards is told at once.
    const late = await new Promise<string>((resolve) => t.onRemoved(resolve));
    expect(late).toBe(r.reason);
    t.close();
  });
});
