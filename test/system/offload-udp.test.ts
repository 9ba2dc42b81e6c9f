/**
 * UDP GSO and GRO in UdpBind over loopback: runs of equal-size datagrams leave in one send and
 * arrive as one GRO buffer, split back into exactly the datagrams sent, in order, with the
 * shorter last one and the endpoint changes that end a run; switched off per bind; and the
 * fallback when the kernel refuses segmentation with EIO (an IPsec policy on the route, in a
 * namespace of our own): the datagrams still arrive and GSO is off for that socket.
 */

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import type { Endpoint } from '../../noise/types.js';
import { endpointOf } from '../../noise/types.js';
import * as ipx from '../../tun/ip.js';
import { UdpBind } from '../../tun/udp.js';
import { AnonNetns } from '../helpers/anon-netns.js';

const isRoot = process.getuid?.() === 0;
const addonBuilt = existsSync(new URL('../../build/Release/wgts.node', import.meta.url));
const binds: UdpBind[] = [];
const netns = new AnonNetns();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterAll(async () => {
  for (const b of binds) b.close();
  await netns.killAll();
});

function open(opts?: Parameters<typeof UdpBind.open>[1]): UdpBind {
  const b = UdpBind.open(0, { loopback: true, ...opts });
  binds.push(b);
  return b;
}

function datagram(i: number, size: number): Uint8Array {
  const d = new Uint8Array(size);
  for (let k = 0; k < size; k++) d[k] = (i * 31 + k) & 0xff;
  return d;
}

async function collect(rx: UdpBind, want: number): Promise<Uint8Array[]> {
  const got: Uint8Array[] = [];
  rx.start(
    (d) => got.push(d.slice()),
    () => undefined,
  );
  const end = Date.now() + 3000;
  while (got.length < want && Date.now() < end) await sleep(5);
  await sleep(20);
  rx.stop();
  return got;
}

describe.skipIf(!addonBuilt)('UDP GSO and GRO over loopback', () => {
  for (const family of [4, 6] as const) {
    it(`sends runs in one message and receives them split exactly (IPv${family})`, async () => {
      const tx = open();
      const rx = open();
      if (family === 6 && !rx.families.v6) return;
      expect(tx.offload[family === 4 ? 'gso4' : 'gso6']).toBe(true);
      expect(rx.offload.gro).toBe(true);
      const to: Endpoint = endpointOf(family === 4 ? '127.0.0.1' : '::1', rx.port, family);
      const sent: Uint8Array[] = [];
      // 40 of 1200 bytes, a shorter one (ends the run), 30 more of 1200, then 5 of 900.
      for (let i = 0; i < 40; i++) sent.push(datagram(i, 1200));
      sent.push(datagram(40, 333));
      for (let i = 41; i < 71; i++) sent.push(datagram(i, 1200));
      for (let i = 71; i < 76; i++) sent.push(datagram(i, 900));
      const rxp = collect(rx, sent.length);
      for (const d of sent) expect(tx.send(d, to)).toBe(true);
      expect(tx.flush()).toBe(sent.length);
      expect(tx.stats.txGsoSends).toBe(3);
      expect(tx.stats.txGsoDatagrams).toBe(sent.length);
      const got = await rxp;
      expect(got.map((d) => Buffer.from(d).toString('hex'))).toEqual(sent.map((d) => Buffer.from(d).toString('hex')));
      expect(rx.stats.rxGroBuffers).toBeGreaterThan(0);
      expect(rx.stats.rxDatagrams).toBe(sent.length);
    });
  }

  it('starts a new message for another endpoint, and sends one by one with the offloads off', async () => {
    const tx = open({ offload: false });
    const rx1 = open({ offload: { udpGro: false } });
    const rx2 = open();
    expect(tx.offload).toEqual({ gso4: false, gso6: false, gro: false });
    expect(rx1.offload.gro).toBe(false);
    const a = endpointOf('127.0.0.1', rx1.port, 4);
    const b = endpointOf('127.0.0.1', rx2.port, 4);
    const p1 = collect(rx1, 20);
    const p2 = collect(rx2, 10);
    for (let i = 0; i < 20; i++) tx.send(datagram(i, 500), a);
    for (let i = 0; i < 10; i++) tx.send(datagram(i, 500), b);
    expect(tx.flush()).toBe(30);
    expect(tx.stats.txGsoSends).toBe(0);
    expect((await p1).length).toBe(20);
    expect((await p2).length).toBe(10);
    expect(rx1.stats.rxGroBuffers).toBe(0);

    const gso = open({ offload: { udpGro: false } });
    const p3 = collect(rx1, 20);
    for (let i = 0; i < 10; i++) gso.send(datagram(i, 500), a);
    for (let i = 0; i < 10; i++) gso.send(datagram(i, 500), b);
    expect(gso.flush()).toBe(20);
    expect(gso.stats.txGsoSends).toBe(2);
    expect((await p3).length).toBe(10);
  });
});

function runIn(pid: number, cmd: string[]): Promise<number | null> {
  return new Promise((resolve) => {
    const p = spawn(ipx.nsenterBinary(), [`--net=/proc/${pid}/ns/net`, '--', ...cmd], { stdio: 'ignore' });
    p.on('exit', (code) => resolve(code));
  });
}

describe.skipIf(!isRoot || !addonBuilt)(`UDP GSO refused by the kernel${isRoot ? '' : ' (skipped: needs root)'}`, () => {
  it('falls back to one datagram per send when segmentation fails with EIO, and stays off', async (ctx) => {
    const h = await netns.create();
    // ESP with the null cipher on 127.0.0.1 <-> 127.0.0.1: the route gets an xfrm dst, on which
    // the kernel refuses UDP GSO (EIO); single datagrams still go, through the null ESP.
    const ip = ipx.ipBinary();
    for (const cmd of [
      [ip, 'xfrm', 'state', 'add', 'src', '127.0.0.1', 'dst', '127.0.0.1', 'proto', 'esp', 'spi', '0x100', 'mode', 'transport', 'enc', 'ecb(cipher_null)', ''],
      [ip, 'xfrm', 'policy', 'add', 'src', '127.0.0.1', 'dst', '127.0.0.1', 'proto', 'udp', 'dir', 'out', 'tmpl', 'proto', 'esp', 'mode', 'transport'],
    ]) {
      const code = await runIn(h.pid, cmd);
      if (code !== 0) ctx.skip(); // a kernel without xfrm/ESP: no route that refuses GSO
    }
    const tx = UdpBind.open(0, { netnsPid: h.pid, loopback: true });
    const rx = UdpBind.open(0, { netnsPid: h.pid, loopback: true, offload: { udpGro: false } });
    binds.push(tx, rx);
    expect(tx.offload.gso4).toBe(true);
    const to = endpointOf('127.0.0.1', rx.port, 4);
    const p = collect(rx, 30);
    for (let i = 0; i < 20; i++) tx.send(datagram(i, 700), to);
    expect(tx.flush()).toBe(20);
    expect(tx.offload.gso4).toBe(false);
    expect(tx.stats.txGsoSends).toBe(0);
    for (let i = 20; i < 30; i++) tx.send(datagram(i, 700), to);
    expect(tx.flush()).toBe(10);
    const got = await p;
    expect(got.length).toBe(30);
    expect(got.map((d) => d[0])).toEqual(Array.from({ length: 30 }, (_, i) => (i * 31) & 0xff));
  });
});
