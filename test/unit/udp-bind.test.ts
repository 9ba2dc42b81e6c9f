/**
 * UdpBind on loopback (no root): batches over IPv4 and IPv6, Endpoint reuse, port 0 and
 * EADDRINUSE, loopback-only binds, flush control, refusals. test/system/udp-bind.test.ts has
 * the sticky source and fwmark in a namespace.
 */

import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import type { Endpoint } from '../../noise/types.js';
import { addonBuilt, sleep, waitUntil } from '../helpers/proc.js';
import { OpenBinds } from '../helpers/udp.js';

const binds = new OpenBinds();

afterAll(() => {
  binds.closeAll();
});

describe.skipIf(!addonBuilt)('UdpBind on loopback', () => {
  it('binds port 0 to a free port on both families; EADDRINUSE has a code', () => {
    const a = binds.open(0);
    expect(a.port).toBeGreaterThan(0);
    expect(a.families).toEqual({ v4: true, v6: true });
    let err: unknown;
    try {
      binds.open(a.port);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Error);
    expect((err as { code?: string }).code).toBe('EADDRINUSE');
    expect((err as Error).message).toMatch(new RegExp(`UDP port ${a.port}: .*in use`));
    a.close();
    const again = binds.open(a.port);
    expect(again.port).toBe(a.port);
    again.close();
  });

  for (const family of [4, 6] as const) {
    it(`sends and receives batches over IPv${family}, sources reused`, async () => {
      const a = binds.open(0);
      const b = binds.open(0);
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
      await waitUntil('the datagrams', () => got.length === N);
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
    const a = binds.open(0);
    const b = binds.open(0);
    const lens: number[] = [];
    b.start(
      (d) => lens.push(d.length),
      () => {},
    );
    a.send(new Uint8Array(65000), { address: '127.0.0.1', port: b.port, family: 4 });
    a.send(new Uint8Array(65000), { address: '::1', port: b.port, family: 6 });
    await waitUntil('the datagrams', () => lens.length === 2);
    expect(lens).toEqual([65000, 65000]);
    a.close();
    b.close();
  });

  it('loopback: true binds 127.0.0.1 and ::1 only', async () => {
    const a = binds.open(0, { loopback: true });
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
    const b = binds.open(0);
    const got: number[] = [];
    a.start(
      (d) => got.push(d[0]!),
      () => {},
    );
    b.send(new Uint8Array([9]), { address: '127.0.0.1', port: a.port, family: 4 });
    await waitUntil('the datagrams', () => got.length === 1);
    a.close();
    b.close();
  });

  it('with autoFlush off, holds sends until flush()', async () => {
    const a = binds.open(0, { autoFlush: false });
    const b = binds.open(0);
    const got: number[] = [];
    b.start(
      (d) => got.push(d[0]!),
      () => {},
    );
    a.send(new Uint8Array([7]), { address: '127.0.0.1', port: b.port, family: 4 });
    await sleep(100);
    expect(got).toEqual([]);
    expect(a.flush()).toBe(1);
    await waitUntil('the datagrams', () => got.length === 1);
    expect(got).toEqual([7]);
    a.close();
    b.close();
  });

  it('rejects bad endpoints and oversized datagrams at once', () => {
    const a = binds.open(0);
    expect(a.send(new Uint8Array(1), { address: 'nope', port: 1, family: 4 })).toBe(false);
    expect(a.send(new Uint8Array(1), { address: '::1', port: 1, family: 4 })).toBe(false);
    expect(a.send(new Uint8Array(1), { address: '127.0.0.1', port: 0, family: 4 })).toBe(false);
    expect(a.send(new Uint8Array(70000), { address: '127.0.0.1', port: 9, family: 4 })).toBe(false);
    expect(a.stats.sendErrors).toBe(4);
    a.close();
  });

  it('a receiver that closes mid-batch gets nothing more', async () => {
    const a = binds.open(0);
    const b = binds.open(0);
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
    await waitUntil('the datagrams', () => n > 0);
    await sleep(50);
    expect(n).toBe(1);
    a.close();
  });
});
