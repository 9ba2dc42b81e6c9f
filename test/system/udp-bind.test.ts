/**
 * UdpBind: loopback batches (IPv4, IPv6), Endpoint reuse, port 0 / EADDRINUSE, fwmark, and the
 * sticky source (PKTINFO in and out, fallback when the address is gone) in a namespace of our
 * own with two addresses per family. Needs root for the namespace parts.
 */

import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatIp, parseIp } from '../../noise/iptext.js';
import type { Endpoint } from '../../noise/types.js';
import * as ipx from '../../tun/ip.js';
import { UdpBind } from '../../tun/udp.js';
import { AnonNetns } from '../helpers/anon-netns.js';

const addonBuilt = existsSync(new URL('../../build/Release/wgts.node', import.meta.url));
const isRoot = process.getuid?.() === 0;
const binds: UdpBind[] = [];

function open(port: number, opts?: Parameters<typeof UdpBind.open>[1]): UdpBind {
  const b = UdpBind.open(port, opts);
  binds.push(b);
  return b;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await sleep(5);
  }
}

const netns = new AnonNetns();
const newNetns = async (): Promise<number> => (await netns.create()).pid;

afterAll(async () => {
  for (const b of binds) b.close();
  await netns.killAll();
});

describe('address codecs', () => {
  it('formats IPv6 as RFC 5952', () => {
    const f = (s: string): string => formatIp(6, parseIp(s)!.bytes);
    expect(f('2001:0db8:0000:0000:0000:0000:0000:0001')).toBe('2001:db8::1');
    expect(f('::')).toBe('::');
    expect(f('::1')).toBe('::1');
    expect(f('fe80::')).toBe('fe80::');
    expect(f('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(f('2001:db8:0:1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1');
    expect(f('::ffff:192.0.2.1')).toBe('::ffff:192.0.2.1');
    expect(f('1:2:3:4:5:6:7:8')).toBe('1:2:3:4:5:6:7:8');
  });

  it('parses and rejects', () => {
    expect(parseIp('192.0.2.255')).toEqual({ family: 4, bytes: Uint8Array.from([192, 0, 2, 255]) });
    for (const bad of ['', '1.2.3', '1.2.3.256', '01.2.3.4', '1::2::3', '12345::', '1:2:3:4:5:6:7:8:9', 'fe80::1%eth0', '[::1]', 'x']) {
      expect(parseIp(bad)).toBeNull();
    }
  });
});

describe.skipIf(!addonBuilt)('UdpBind on loopback', () => {
  it('binds port 0 to a free port on both families; EADDRINUSE has a code', () => {
    const a = open(0);
    expect(a.port).toBeGreaterThan(0);
    expect(a.families).toEqual({ v4: true, v6: true });
    let err: unknown;
    try {
      open(a.port);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Error);
    expect((err as { code?: string }).code).toBe('EADDRINUSE');
    expect((err as Error).message).toMatch(new RegExp(`UDP port ${a.port}: .*in use`));
    a.close();
    const again = open(a.port);
    expect(again.port).toBe(a.port);
    again.close();
  });

  for (const family of [4, 6] as const) {
    it(`sends and receives batches over IPv${family}, sources reused`, async () => {
      const a = open(0);
      const b = open(0);
      const loop = family === 4 ? '127.0.0.1' : '::1';
      const got: { data: Uint8Array; from: Endpoint }[] = [];
      let batches = 0;
      b.start(
        (data, from) => got.push({ data: data.slice(), from }),
        () => batches++,
      );
      const to: Endpoint = { address: loop, port: b.port, family };
      const N = 300;
      for (let i = 0; i < N; i++) {
        const d = new Uint8Array(1 + ((i * 37) % 1500));
        d.fill(i & 255);
        d[0] = i >> 8;
        expect(a.send(d, to)).toBe(true);
      }
      a.flush();
      await until(() => got.length === N);
      for (let i = 0; i < N; i++) {
        const d = got[i]!.data;
        expect(d.length).toBe(1 + ((i * 37) % 1500));
        expect(d[0]).toBe(i >> 8);
        if (d.length > 1) expect(d[d.length - 1]).toBe(i & 255);
      }
      const first = got[0]!.from;
      expect(first).toMatchObject({ address: loop, port: a.port, family, localAddress: loop });
      expect(first.ifindex).toBe(1); // lo
      expect(got.every((g) => g.from === first)).toBe(true); // one Endpoint object for one source
      expect(batches).toBeLessThan(N); // delivered in batches, not one call per datagram
      expect(a.stats.txDatagrams).toBe(N);
      expect(b.stats.rxDatagrams).toBe(N);
      a.close();
      b.close();
    });
  }

  it('sends without flush() at the end of the task, and carries a 65000-byte datagram', async () => {
    const a = open(0);
    const b = open(0);
    const lens: number[] = [];
    b.start(
      (d) => lens.push(d.length),
      () => {},
    );
    a.send(new Uint8Array(65000), { address: '127.0.0.1', port: b.port, family: 4 });
    a.send(new Uint8Array(65000), { address: '::1', port: b.port, family: 6 });
    await until(() => lens.length === 2);
    expect(lens).toEqual([65000, 65000]);
    a.close();
    b.close();
  });

  it('loopback: true binds 127.0.0.1 and ::1 only', async () => {
    const a = open(0, { loopback: true });
    const hexPort = a.port.toString(16).toUpperCase().padStart(4, '0');
    const v4 = readFileSync('/proc/net/udp', 'utf8')
      .split('\n')
      .filter((l) => l.includes(`:${hexPort} `));
    expect(v4.map((l) => l.trim().split(/\s+/)[1])).toEqual([`0100007F:${hexPort}`]);
    if (a.families.v6) {
      const v6 = readFileSync('/proc/net/udp6', 'utf8')
        .split('\n')
        .filter((l) => l.includes(`:${hexPort} `));
      expect(v6.map((l) => l.trim().split(/\s+/)[1])).toEqual([`00000000000000000000000001000000:${hexPort}`]);
    }
    const b = open(0);
    const got: number[] = [];
    a.start(
      (d) => got.push(d[0]!),
      () => {},
    );
    b.send(new Uint8Array([9]), { address: '127.0.0.1', port: a.port, family: 4 });
    await until(() => got.length === 1);
    a.close();
    b.close();
  });

  it('with autoFlush off, holds sends until flush()', async () => {
    const a = open(0, { autoFlush: false });
    const b = open(0);
    const got: number[] = [];
    b.start(
      (d) => got.push(d[0]!),
      () => {},
    );
    a.send(new Uint8Array([7]), { address: '127.0.0.1', port: b.port, family: 4 });
    await sleep(100);
    expect(got).toEqual([]);
    expect(a.flush()).toBe(1);
    await until(() => got.length === 1);
    expect(got).toEqual([7]);
    a.close();
    b.close();
  });

  it('rejects bad endpoints and oversized datagrams at once', () => {
    const a = open(0);
    expect(a.send(new Uint8Array(1), { address: 'nope', port: 1, family: 4 })).toBe(false);
    expect(a.send(new Uint8Array(1), { address: '::1', port: 1, family: 4 })).toBe(false);
    expect(a.send(new Uint8Array(1), { address: '127.0.0.1', port: 0, family: 4 })).toBe(false);
    expect(a.send(new Uint8Array(70000), { address: '127.0.0.1', port: 9, family: 4 })).toBe(false);
    expect(a.stats.sendErrors).toBe(4);
    a.close();
  });

  it('a receiver that closes mid-batch gets nothing more', async () => {
    const a = open(0);
    const b = open(0);
    let n = 0;
    b.start(
      () => {
        n++;
        b.close();
      },
      () => {},
    );
    for (let i = 0; i < 10; i++) a.send(new Uint8Array([i]), { address: '127.0.0.1', port: b.port, family: 4 });
    a.flush();
    await until(() => n > 0);
    await sleep(50);
    expect(n).toBe(1);
    a.close();
  });
});

describe.skipIf(!addonBuilt || !isRoot)('UdpBind sticky source and fwmark (own namespace)' + (isRoot ? '' : ' (skipped: needs root)'), () => {
  let pid = 0;
  let ifindex = 0;
  beforeAll(async () => {
    pid = await newNetns();
    const o = { netnsPid: pid };
    // A veth pair gives the namespace a non-loopback link to hold two addresses per family.
    ipx.vethAdd('st0', 'st1', o);
    ipx.linkSetUp('st0', o);
    ipx.linkSetUp('st1', o);
    for (const a of ['192.0.2.1/24', '192.0.2.2/24']) ipx.addrAdd('st0', a, o);
    for (const a of ['fd00:77::1/64', 'fd00:77::2/64']) ipx.addrAdd('st0', a, { ...o, nodad: true });
    ifindex = ipx.linkIndex('st0', o);
  });

  for (const [family, a1, a2, cidr2] of [
    [4, '192.0.2.1', '192.0.2.2', '192.0.2.2/24'],
    [6, 'fd00:77::1', 'fd00:77::2', 'fd00:77::2/64'],
  ] as const) {
    it(`IPv${family}: reports the local address, replies from it, falls back when it is removed`, async () => {
      const A = open(0, { netnsPid: pid });
      const B = open(0, { netnsPid: pid });
      const rxA: Endpoint[] = [];
      const rxB: Endpoint[] = [];
      const sticky: Endpoint[] = [];
      A.start(
        (_d, f) => rxA.push(f),
        () => {},
      );
      B.start(
        (_d, f) => rxB.push(f),
        () => {},
      );
      B.onStickyFailure((ep) => sticky.push(ep));

      // A -> B at the second address: B learns localAddress a2.
      A.send(new Uint8Array([1]), { address: a2, port: B.port, family });
      A.flush();
      await until(() => rxB.length === 1);
      expect(rxB[0]).toMatchObject({ port: A.port, family, localAddress: a2, ifindex });

      // B replies to A's first address with the sticky source a2: it leaves from a2.
      const ep: Endpoint = { address: a1, port: A.port, family, localAddress: a2, ifindex };
      B.send(new Uint8Array([2]), ep);
      B.flush();
      await until(() => rxA.length === 1);
      expect(rxA[0]).toMatchObject({ address: a2, port: B.port, localAddress: a1 });

      // Without a sticky source the routing table picks a1 (the primary address).
      B.send(new Uint8Array([3]), { address: a1, port: A.port, family });
      B.flush();
      await until(() => rxA.length === 2);
      expect(rxA[1]!.address).toBe(a1);

      // a2 removed: the kernel refuses it (ENETUNREACH / EINVAL); sent anyway, failure reported.
      ipx.addrDel('st0', cidr2, { netnsPid: pid });
      try {
        B.send(new Uint8Array([4]), ep);
        expect(B.flush()).toBe(1);
        expect(sticky).toEqual([ep]);
        expect(sticky[0]).toBe(ep);
        expect(B.stats.stickyFailures).toBe(1);
        expect(B.stats.sendErrors).toBe(0);
        await until(() => rxA.length === 3);
        expect(rxA[2]!.address).toBe(a1);
      } finally {
        ipx.addrAdd('st0', cidr2, { netnsPid: pid, nodad: true });
      }
      A.close();
      B.close();
    });
  }

  it('IPv6 link-local: the scope comes from ifindex, both ways across the veth', async () => {
    const o = { netnsPid: pid };
    ipx.addrAdd('st0', 'fe80::a1/64', { ...o, nodad: true });
    ipx.addrAdd('st1', 'fe80::a2/64', { ...o, nodad: true });
    const i0 = ipx.linkIndex('st0', o);
    const i1 = ipx.linkIndex('st1', o);
    const A = open(0, o);
    const B = open(0, o);
    const rxA: Endpoint[] = [];
    const rxB: Endpoint[] = [];
    A.start(
      (_d, f) => rxA.push(f),
      () => {},
    );
    B.start(
      (_d, f) => rxB.push(f),
      () => {},
    );
    // Out of st0, over the veth, in on st1.
    A.send(new Uint8Array([1]), { address: 'fe80::a2', port: B.port, family: 6, ifindex: i0 });
    expect(A.flush()).toBe(1);
    await until(() => rxB.length === 1);
    expect(rxB[0]).toEqual({ address: 'fe80::a1', port: A.port, family: 6, localAddress: 'fe80::a2', ifindex: i1 });
    // The reply goes back with the learnt scope and sticky source.
    B.send(new Uint8Array([2]), rxB[0]!);
    expect(B.flush()).toBe(1);
    await until(() => rxA.length === 1);
    expect(rxA[0]).toEqual({ address: 'fe80::a2', port: B.port, family: 6, localAddress: 'fe80::a1', ifindex: i0 });
    A.close();
    B.close();
  });

  it('fwmark: a rule for the mark steers sends; setFwmark changes it', async () => {
    const o = { netnsPid: pid };
    // Marked packets hit an `unreachable` rule placed before the local table (our namespace).
    ipx.ip(['rule', 'add', 'pref', '100', 'lookup', 'local'], o);
    ipx.ip(['rule', 'del', 'pref', '0', 'lookup', 'local'], o);
    ipx.ip(['rule', 'add', 'pref', '10', 'fwmark', '0x5a', 'unreachable'], o);
    const A = open(0, { netnsPid: pid, fwmark: 0x5a });
    const B = open(0, { netnsPid: pid });
    const got: number[] = [];
    B.start(
      (d) => got.push(d[0]!),
      () => {},
    );
    const to: Endpoint = { address: '192.0.2.1', port: B.port, family: 4 };
    A.send(new Uint8Array([1]), to);
    expect(A.flush()).toBe(0);
    expect(A.stats.sendErrors).toBe(1);
    A.setFwmark(0);
    A.send(new Uint8Array([2]), to);
    expect(A.flush()).toBe(1);
    A.setFwmark(0x5a);
    A.send(new Uint8Array([3]), to);
    expect(A.flush()).toBe(0);
    await until(() => got.length === 1);
    await sleep(20);
    expect(got).toEqual([2]);
    A.close();
    B.close();
  });
});
