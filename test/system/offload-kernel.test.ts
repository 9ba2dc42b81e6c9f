/**
 * The offloads against the kernel itself (root, /dev/net/tun; anonymous namespaces):
 * - Segmentation: a super-packet written with its virtio header into TUN A is forwarded by the
 *   kernel to TUN B, which has no offloads, so the kernel segments it in software: what B
 *   reads must be exactly what csrc/gso.c makes of the same super-packet (TTL/hop limit one
 *   less, as forwarded).
 * - Coalescing: what csrc/gro.c makes of a run of segments, written into A, must come out of
 *   B (segmented by the kernel) as exactly those segments.
 * - A real TCP transfer between two namespaces whose TUNs are joined by this process (read
 *   from one, queued and flushed into the other), with offloads on (the kernel hands TSO
 *   super-packets, the writes are coalesced) and off: the same byte stream arrives, and every
 *   packet the data path saw was a valid, MTU-sized IP packet.
 */

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRO_TCP, GRO_UDP, native } from '../../tun/addon.js';
import * as ipx from '../../tun/ip.js';
import { Tun } from '../../tun/tun.js';
import { AnonNetns, type Holder } from '../helpers/anon-netns.js';
import { ACK, checksumsValid, hex, l4Offset, PSH, payload, sum16, superPacket, type TcpFields, tcpPacket, udpPacket } from '../helpers/offload-packets.js';

const canRun = process.getuid?.() === 0 && existsSync('/dev/net/tun');
const why = canRun ? '' : ' (skipped: needs root and /dev/net/tun)';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function runIn(pid: number, cmd: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(ipx.nsenterBinary(), [`--net=/proc/${pid}/ns/net`, '--', ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => resolve({ code, out }));
  });
}

/** `p` as the kernel forwards it: TTL / hop limit one less (and the IPv4 header checksum). */
function forwarded(p: Uint8Array): Uint8Array {
  const q = p.slice();
  if (q[0]! >> 4 === 6) {
    q[7]!--;
    return q;
  }
  q[8]!--;
  const ihl = (q[0]! & 15) * 4;
  q[10] = q[11] = 0;
  const c = ~sum16(q, 0, ihl) & 0xffff;
  q[10] = c >> 8;
  q[11] = c & 0xff;
  return q;
}

function ourSegments(input: Uint8Array): Uint8Array[] {
  const out = new Uint8Array(1 << 20);
  const meta = new Int32Array(4096);
  const copy = input.slice();
  const r = native().gsoSplit(copy, out, meta);
  if (r === 0) return [copy.subarray(10)];
  expect(r).toBeGreaterThan(0);
  return Array.from({ length: r }, (_, i) => out.slice(meta[2 * i]!, meta[2 * i]! + meta[2 * i + 1]!));
}

describe.skipIf(!canRun)(`offloads against the kernel${why}`, () => {
  const netns = new AnonNetns();
  let ns: Holder;
  let a: Tun;
  let b: Tun;
  const fromB: Uint8Array[] = [];
  const A = `oka${process.pid % 10000}`;
  const B = `okb${process.pid % 10000}`;

  beforeAll(async () => {
    ns = await netns.create();
    const o = { netnsPid: ns.pid };
    // A: virtio headers, no offload asked (we only write to it); B: no offloads at all.
    a = Tun.create(A, { ...o, mtu: 9000, offload: { tso: false, uso: false, tunGro: true } });
    b = Tun.create(B, { ...o, mtu: 9000, offload: false });
    expect(a.offload.vnet).toBe(true);
    expect(b.offload.vnet).toBe(false);
    for (const [t, v4, v6] of [
      [A, '10.1.0.1/24', 'fd01::1/64'],
      [B, '10.2.0.1/24', 'fd02::1/64'],
    ] as const) {
      ipx.addrAdd(t, v4, o);
      ipx.addrAdd(t, v6, { ...o, nodad: true });
      ipx.linkSetUp(t, o);
    }
    for (const k of ['net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1', 'net.ipv4.conf.all.rp_filter=0']) {
      expect((await runIn(ns.pid, ['/usr/sbin/sysctl', '-q', '-w', k])).code).toBe(0);
    }
    a.start(
      () => undefined,
      () => undefined,
    );
    b.start(
      (p) => fromB.push(p.slice()),
      () => undefined,
    );
    await sleep(300); // router solicitations and the like go out when the links come up
  });

  afterAll(async () => {
    a?.close();
    b?.close();
    await netns.killAll();
  });

  /** Writes raw virtio header + packet inputs into A; returns what B read (forwarded TCP/UDP only). */
  async function throughKernel(inputs: Uint8Array[], expected: number): Promise<Uint8Array[]> {
    fromB.length = 0;
    for (const input of inputs) expect(native().fdWrite(a.fd, input)).toBe(input.length);
    const end = Date.now() + 3000;
    const mine = () => fromB.filter((p) => (p[0]! >> 4 === 4 ? p[9] !== 1 && p[15] === 2 && p[12] === 10 : p[6] !== 58 && p[23] === 2 && p[8] === 0xfd));
    while (mine().length < expected && Date.now() < end) await sleep(10);
    await sleep(30);
    return mine();
  }

  const v4 = (f: Partial<TcpFields>): TcpFields => ({ seq: 1, ...f, src: 2, dst: 2 }); // 10.0.0.x is rewritten below
  /** Addresses of this lab: 10.1.0.2 -> 10.2.0.2, fd01::2 -> fd02::2. */
  function lab(p: Uint8Array): Uint8Array {
    const q = p.slice();
    if (q[0]! >> 4 === 6) {
      q[9] = 0x01;
      q[23] = 0x02;
      q[25] = 0x02;
    } else {
      q[13] = 1;
      q[17] = 2;
    }
    // Re-checksum after the address change.
    const { l4, proto } = l4Offset(q);
    if (q[0]! >> 4 === 4) {
      q[10] = q[11] = 0;
      const c = ~sum16(q, 0, l4) & 0xffff;
      q[10] = c >> 8;
      q[11] = c & 0xff;
    }
    const at = l4 + (proto === 6 ? 16 : 6);
    q[at] = q[at + 1] = 0;
    const v6 = q[0]! >> 4 === 6;
    const len = q.length - l4;
    const ps = sum16(new Uint8Array([0, proto, len >> 8, len & 0xff]), 0, 4, v6 ? sum16(q, 8, 40) : sum16(q, 12, 20));
    let c = ~sum16(q, l4, q.length, ps) & 0xffff;
    if (c === 0 && proto === 17) c = 0xffff;
    q[at] = c >> 8;
    q[at + 1] = c & 0xff;
    return q;
  }

  const cases: [string, () => Uint8Array, number][] = [
    ['TCP/IPv4 with a last short segment', () => lab(tcpPacket(v4({ seq: 100, id: 0xfff0 }), payload(20_000))), 1448],
    [
      'TCP/IPv4 with timestamps, PSH and FIN',
      () => lab(tcpPacket(v4({ seq: 0xfffff000, flags: ACK | PSH | 1, options: new Uint8Array([1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 7]) }), payload(30_000))),
      1000,
    ],
    ['TCP/IPv4 whose payload is a multiple of the MSS', () => lab(tcpPacket(v4({ seq: 5 }), payload(1448 * 8))), 1448],
    ['TCP/IPv6', () => lab(tcpPacket({ v6: true, seq: 9, flowLabel: 0xabcde }, payload(60_000))), 1428],
    ['TCP/IPv6 with a hop-by-hop header', () => lab(tcpPacket({ v6: true, seq: 9, hopByHop: 1 }, payload(9000))), 1400],
    ['TCP/IPv4 with a gso_size near the MTU', () => lab(tcpPacket(v4({ seq: 1 }), payload(40_000))), 8900],
    ['UDP/IPv4 (USO)', () => lab(udpPacket({ src: 2, dst: 2, id: 3 }, payload(1340 * 20 + 7))), 1340],
    ['UDP/IPv6 (USO)', () => lab(udpPacket({ v6: true, id: 3 }, payload(1200 * 30))), 1200],
  ];
  for (const [name, make, mss] of cases) {
    it(`segments ${name} exactly as the kernel does`, async () => {
      const input = superPacket(make(), mss);
      const ours = ourSegments(input).map(forwarded);
      const kernel = await throughKernel([input], ours.length);
      expect(kernel.length).toBe(ours.length);
      expect(kernel.map(hex)).toEqual(ours.map(hex));
      for (const k of kernel) expect(checksumsValid(k)).toBe(true);
    });
  }

  it('coalesces runs that the kernel segments back into exactly the same packets', async () => {
    const segs: Uint8Array[] = [];
    for (let i = 0; i < 40; i++) segs.push(lab(tcpPacket(v4({ seq: 1000 + i * 1400, id: 10 + i, flags: i === 39 ? ACK | PSH : ACK }), payload(1400, i))));
    for (let i = 0; i < 30; i++) segs.push(lab(tcpPacket({ v6: true, seq: 5 + i * 1200 }, payload(i === 29 ? 77 : 1200, i))));
    for (let i = 0; i < 25; i++) segs.push(lab(udpPacket({ src: 2, dst: 2, id: 300 + i }, payload(1340, i))));
    const area = new Uint8Array(1 << 20);
    const meta = new Int32Array(segs.length * 2);
    let off = 0;
    segs.forEach((p, i) => {
      area.set(p, off);
      meta[2 * i] = off;
      meta[2 * i + 1] = p.length;
      off += (p.length + 15) & ~15;
    });
    const out = new Uint8Array(1 << 21);
    const ometa = new Int32Array(segs.length * 3);
    const n = native().groCoalesce(area, meta, segs.length, GRO_TCP | (a.offload.udpGro ? GRO_UDP : 0), out, ometa);
    expect(n).toBeLessThan(segs.length / 10);
    const inputs = Array.from({ length: n }, (_, i) => out.slice(ometa[3 * i]!, ometa[3 * i]! + ometa[3 * i + 1]!));
    const kernel = await throughKernel(inputs, segs.length);
    expect(kernel.map(hex)).toEqual(segs.map(forwarded).map(hex));
  });
});

describe.skipIf(!canRun)(`a TCP transfer between two TUNs joined by the I/O layer${why}`, () => {
  const netns = new AnonNetns();
  afterAll(() => netns.killAll());

  async function transfer(offload: boolean): Promise<{ sent: string; received: string; tuns: Tun[]; bad: number; maxLen: number }> {
    const [n1, n2] = [await netns.create(), await netns.create()];
    const names = [`otx${process.pid % 10000}`, `orx${process.pid % 10000}`];
    const tuns = [
      Tun.create(names[0]!, { netnsPid: n1.pid, offload: offload ? {} : false }),
      Tun.create(names[1]!, { netnsPid: n2.pid, offload: offload ? {} : false }),
    ];
    let bad = 0;
    let maxLen = 0;
    try {
      for (const [i, h] of [n1, n2].entries()) {
        ipx.addrAdd(names[i]!, `10.9.0.${i + 1}/24`, { netnsPid: h.pid });
        ipx.linkSetUp(names[i]!, { netnsPid: h.pid });
      }
      // The wire: every packet read from one TUN is checked and queued into the other.
      for (const [i, t] of tuns.entries()) {
        const other = tuns[1 - i]!;
        t.start(
          (p) => {
            if (!checksumsValid(p) && (p[0]! >> 4 === 4 ? p[9] === 6 : p[6] === 6)) bad++;
            if (p.length > maxLen) maxLen = p.length;
            other.queue(p);
          },
          () => other.flush(),
        );
      }
      const server = `const h=require('crypto').createHash('sha256');require('net').createServer(s=>{s.on('data',d=>h.update(d));s.on('end',()=>{console.log(h.digest('hex'));process.exit(0)})}).listen(7777,'10.9.0.2',()=>console.log('ready'))`;
      const client = `const h=require('crypto').createHash('sha256');const s=require('net').connect(7777,'10.9.0.2');let x=1,n=0;const b=Buffer.alloc(65536);function more(){while(n<${16 << 20}){for(let i=0;i<b.length;i++){x=(x*1103515245+12345)>>>0;b[i]=x>>>24}n+=b.length;h.update(b);if(!s.write(b))return s.once('drain',more)}s.end(()=>console.log(h.digest('hex')))}more()`;
      const srv = spawn(ipx.nsenterBinary(), [`--net=/proc/${n2.pid}/ns/net`, '--', process.execPath, '-e', server], { stdio: ['ignore', 'pipe', 'inherit'] });
      let srvOut = '';
      srv.stdout.on('data', (d: Buffer) => (srvOut += d.toString()));
      const end = Date.now() + 5000;
      while (!srvOut.includes('ready') && Date.now() < end) await sleep(20);
      const cli = await runIn(n1.pid, [process.execPath, '-e', client]);
      expect(cli.code).toBe(0);
      await new Promise<void>((r) => (srv.exitCode !== null ? r() : srv.once('exit', () => r())));
      return { sent: cli.out.trim(), received: srvOut.replace('ready', '').trim(), tuns, bad, maxLen };
    } finally {
      for (const t of tuns) t.close();
    }
  }

  it('carries the same byte stream with offloads on and off, in valid MTU-sized packets', async () => {
    const on = await transfer(true);
    const off = await transfer(false);
    expect(on.sent).toMatch(/^[0-9a-f]{64}$/);
    expect(on.received).toBe(on.sent);
    expect(off.received).toBe(off.sent);
    expect(on.sent).toBe(off.sent);
    for (const r of [on, off]) {
      expect(r.bad).toBe(0);
      expect(r.maxLen).toBeLessThanOrEqual(1420);
    }
    // With offloads the kernel handed super-packets, and the writes were coalesced.
    expect(on.tuns[0]!.offload.tso).toBe(true);
    expect(on.tuns[0]!.stats.rxSuperPackets).toBeGreaterThan(0);
    expect(on.tuns[1]!.stats.txSuperPackets).toBeGreaterThan(0);
    expect(off.tuns[0]!.stats.rxSuperPackets).toBe(0);
    expect(off.tuns[1]!.stats.txSuperPackets).toBe(0);
  });
});
