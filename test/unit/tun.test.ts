/**
 * The TUN layer without a device (no root): the packet pair that stands in for a TUN, names,
 * and the refusals that come before anything is opened.
 */

import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Tun, tempName } from '../../tun/tun.js';
import { addonBuilt, sleep } from '../helpers/proc.js';
import { leftoverTemps } from '../helpers/tun.js';

describe('Tun names', () => {
  it('temporary names are 15 bytes and unique', () => {
    const a = tempName();
    expect(a).toHaveLength(15);
    expect(a).not.toBe(tempName());
  });
});

describe.skipIf(!addonBuilt)('Tun refusals (no device, no root)', () => {
  it('refuses an invalid pid or name with a clear error', () => {
    expect(() => Tun.create('wgbad0', { netnsPid: 0x3ffffff0 })).toThrow(/no process with pid/);
    expect(() => Tun.create('name-longer-than-15')).toThrow(/invalid interface name/);
    expect(leftoverTemps()).toEqual([]);
  });
});

describe.skipIf(!addonBuilt)('Tun.packetPair (no device, no root)', () => {
  it('carries packets both ways through the same read and write code, and closes its fds', async () => {
    const fds = readdirSync('/proc/self/fd').length;
    const [a, b] = Tun.packetPair();
    const atA: number[] = [];
    const atB: number[] = [];
    let batches = 0;
    a.start(
      (p) => atA.push(p.length),
      () => batches++,
    );
    b.start(
      (p) => atB.push(p.length),
      () => batches++,
    );
    for (const n of [20, 1420, 9000]) expect(a.write(new Uint8Array(n))).toBe(true);
    expect(b.write(new Uint8Array(60))).toBe(true);
    const end = Date.now() + 2000;
    while ((atB.length < 3 || atA.length < 1) && Date.now() < end) await sleep(5);
    expect(atB).toEqual([20, 1420, 9000]);
    expect(atA).toEqual([60]);
    expect(batches).toBeGreaterThanOrEqual(2);
    expect(a.stats.txPackets).toBe(3);
    expect(b.stats.rxPackets).toBe(3);
    a.close();
    b.close();
    expect(readdirSync('/proc/self/fd').length).toBe(fds);
  });
});

describe.skipIf(!addonBuilt)('Tun.readNow (no device, no root)', () => {
  it('delivers what the fd holds within the call, one batch, and nothing when it holds nothing', () => {
    const [a, b] = Tun.packetPair();
    const seen: number[] = [];
    let ends = 0;
    b.start(
      (p) => seen.push(p.length),
      () => ends++,
    );
    try {
      b.readNow();
      expect([seen, ends]).toEqual([[], 0]);
      for (const n of [28, 1420]) expect(a.write(new Uint8Array(n))).toBe(true);
      b.readNow();
      // Synchronously: no event-loop turn has passed since the writes.
      expect(seen).toEqual([28, 1420]);
      expect(ends).toBe(1);
      b.readNow();
      expect(ends).toBe(1);
    } finally {
      a.close();
      b.close();
    }
    b.readNow(); // closed: nothing, no error
  });

  it('lets an exception of the reader propagate to its caller, and keeps reading afterwards', async () => {
    const [a, b] = Tun.packetPair();
    const seen: number[] = [];
    b.start(
      (p) => {
        if (p.length === 13) throw new Error('reader failed');
        seen.push(p.length);
      },
      () => {},
    );
    try {
      a.write(new Uint8Array(13));
      expect(() => b.readNow()).toThrow('reader failed');
      a.write(new Uint8Array(40));
      const end = Date.now() + 2000;
      while (seen.length === 0 && Date.now() < end) await sleep(5);
      expect(seen).toEqual([40]);
    } finally {
      a.close();
      b.close();
    }
  });
});
