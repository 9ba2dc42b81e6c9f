/**
 * The coalescer (csrc/gro.c) on every edge that must stop or split coalescing, and the
 * property that makes it exact: segmenting what it wrote (as the kernel does, and as
 * csrc/gso.c does: checked against the kernel in test/system/offload-kernel.test.ts) gives
 * back exactly the packets it was given, in each flow's order.
 */
import { describe, expect, it } from 'vitest';
import { GRO_TCP, GRO_UDP, native } from '../../tun/addon.js';
import {
  ACK,
  CWR,
  ECE,
  FIN,
  GSO_TCPV4,
  GSO_TCPV6,
  GSO_UDP_L4,
  get16,
  hex,
  NEEDS_CSUM,
  PSH,
  payload,
  RST,
  readVnet,
  SYN,
  type TcpFields,
  tcpPacket,
  URG,
  udpPacket,
  type VnetHeader,
} from '../helpers/offload-packets.js';

interface Out {
  vnet: VnetHeader;
  packet: Uint8Array;
  members: number;
}

const BOTH = GRO_TCP | GRO_UDP;

function coalesce(pkts: Uint8Array[], flags = BOTH): Out[] {
  const area = new Uint8Array(1 << 20);
  const meta = new Int32Array(pkts.length * 2);
  let off = 0;
  pkts.forEach((p, i) => {
    area.set(p, off);
    meta[2 * i] = off;
    meta[2 * i + 1] = p.length;
    off += (p.length + 15) & ~15;
  });
  const out = new Uint8Array(1 << 21);
  const ometa = new Int32Array(pkts.length * 3);
  const n = native().groCoalesce(area, meta, pkts.length, flags, out, ometa);
  const res: Out[] = [];
  for (let i = 0; i < n; i++) {
    const o = ometa[3 * i]!;
    const len = ometa[3 * i + 1]!;
    res.push({ vnet: readVnet(out, o), packet: out.slice(o + 10, o + len), members: ometa[3 * i + 2]! });
  }
  return res;
}

/** The packets an output stands for: itself, or its segmentation by csrc/gso.c. */
function resegment(o: Out): Uint8Array[] {
  if (o.vnet.gsoType === 0) {
    expect(o.vnet).toEqual({ flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 });
    return [o.packet];
  }
  const input = new Uint8Array(10 + o.packet.length);
  const v = new DataView(input.buffer);
  input[0] = o.vnet.flags;
  input[1] = o.vnet.gsoType;
  v.setUint16(2, o.vnet.hdrLen, true);
  v.setUint16(4, o.vnet.gsoSize, true);
  v.setUint16(6, o.vnet.csumStart, true);
  v.setUint16(8, o.vnet.csumOffset, true);
  input.set(o.packet, 10);
  const out = new Uint8Array(1 << 20);
  const meta = new Int32Array(4096);
  const r = native().gsoSplit(input, out, meta);
  expect(r).toBe(o.members);
  const segs: Uint8Array[] = [];
  for (let i = 0; i < r; i++) segs.push(out.slice(meta[2 * i]!, meta[2 * i]! + meta[2 * i + 1]!));
  return segs;
}

/** Coalesces, checks the round trip, and returns the member counts of the outputs. */
function shape(pkts: Uint8Array[], flags = BOTH): number[] {
  const outs = coalesce(pkts, flags);
  expect(outs.flatMap(resegment).map(hex)).toEqual(pkts.map(hex));
  return outs.map((o) => o.members);
}

/** n TCP segments of `mss` bytes from seq, each with fields from `f(i)`. */
function run(n: number, mss: number, f: (i: number) => Partial<TcpFields> = () => ({}), base: Partial<TcpFields> = {}): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    out.push(tcpPacket({ seq: 1000 + i * mss, id: 100 + i, ...base, ...f(i) }, payload(mss, i + 1)));
  }
  return out;
}

describe('TCP coalescing', () => {
  it('merges consecutive segments of a flow into one super-packet, IPv4 and IPv6', () => {
    for (const v6 of [false, true]) {
      const pkts = run(10, 1400, () => ({}), { v6 });
      const outs = coalesce(pkts);
      expect(outs.length).toBe(1);
      const o = outs[0]!;
      expect(o.members).toBe(10);
      const l4 = v6 ? 40 : 20;
      expect(o.vnet).toEqual({ flags: NEEDS_CSUM, gsoType: v6 ? GSO_TCPV6 : GSO_TCPV4, hdrLen: l4 + 20, gsoSize: 1400, csumStart: l4, csumOffset: 16 });
      expect(o.packet.length).toBe(l4 + 20 + 14_000);
      expect(get16(o.packet, v6 ? 4 : 2)).toBe(v6 ? 14_020 : 14_040);
      expect(shape(pkts)).toEqual([10]);
    }
  });
  it('merges a last short segment and ends the super-packet there', () => {
    const pkts = [...run(3, 1000), tcpPacket({ seq: 4000, id: 103 }, payload(10)), tcpPacket({ seq: 4010, id: 104 }, payload(1000))];
    expect(shape(pkts)).toEqual([4, 1]);
  });
  it('does not merge a longer segment after shorter ones', () => {
    const pkts = [tcpPacket({ seq: 0, id: 1 }, payload(500)), tcpPacket({ seq: 500, id: 2 }, payload(1000))];
    expect(shape(pkts)).toEqual([1, 1]);
  });
  it('merges a PSH segment as the last; a PSH head is written alone', () => {
    expect(shape(run(5, 1000, (i) => (i === 2 ? { flags: ACK | PSH } : {})))).toEqual([3, 2]);
    expect(shape(run(3, 1000, (i) => (i === 0 ? { flags: ACK | PSH } : {})))).toEqual([1, 2]);
    const outs = coalesce(run(3, 1000, (i) => (i === 2 ? { flags: ACK | PSH } : {})));
    expect(outs[0]!.packet[20 + 13]).toBe(ACK | PSH);
  });
  for (const [name, flag] of [
    ['FIN', FIN],
    ['RST', RST],
    ['URG', URG],
    ['SYN', SYN],
    ['ECE', ECE],
    ['CWR', CWR],
  ] as const) {
    it(`does not merge a segment with ${name}, and closes the flow's super-packet before it`, () => {
      expect(shape(run(5, 1000, (i) => (i === 2 ? { flags: ACK | flag } : {})))).toEqual([2, 1, 2]);
    });
  }
  it('closes a flow on a bare ACK of its own, keeping the order', () => {
    const pkts = [...run(2, 1000), tcpPacket({ seq: 3000, id: 102 }, new Uint8Array(0)), tcpPacket({ seq: 3000, id: 103 }, payload(1000))];
    expect(shape(pkts)).toEqual([2, 1, 1]);
  });
  it('splits on options, ACK number or window that differ', () => {
    const ts = (v: number) => new Uint8Array([1, 1, 8, 10, 0, 0, 0, v, 0, 0, 0, 1]);
    expect(shape(run(4, 1000, (i) => ({ options: ts(i < 2 ? 1 : 2) })))).toEqual([2, 2]);
    expect(shape(run(4, 1000, (i) => ({ ack: i < 2 ? 5 : 6 })))).toEqual([2, 2]);
    expect(shape(run(4, 1000, (i) => ({ window: i < 3 ? 500 : 501 })))).toEqual([3, 1]);
    expect(shape(run(4, 1000, (i) => ({ options: i < 2 ? ts(1) : new Uint8Array([1, 1, 1, 1]) })))).toEqual([2, 2]);
  });
  it('splits on sequence numbers out of order or overlapping (a retransmission)', () => {
    const a = run(4, 1000);
    expect(shape([a[0]!, a[1]!, a[3]!, a[2]!].map((p, i) => tcpPacket({ seq: get32s(p), id: 100 + i }, p.subarray(40))))).toEqual([2, 1, 1]);
    const overlap = tcpPacket({ seq: 1500, id: 102 }, payload(1000, 9));
    expect(shape([a[0]!, a[1]!, overlap])).toEqual([2, 1]);
  });
  it('splits on IPv4 IDs that do not count up by one, on TTL, TOS or DF that differ', () => {
    expect(shape(run(4, 1000, (i) => ({ id: i < 2 ? 100 + i : 200 + i })))).toEqual([2, 2]);
    expect(shape(run(4, 1000, () => ({ id: 7 })))).toEqual([1, 1, 1, 1]);
    expect(shape(run(4, 1000, (i) => ({ ttl: i < 2 ? 64 : 63 })))).toEqual([2, 2]);
    expect(shape(run(4, 1000, (i) => ({ tos: i < 2 ? 0 : 4 })))).toEqual([2, 2]);
    expect(shape(run(4, 1000, (i) => ({ df: i < 2 })))).toEqual([2, 2]);
    expect(
      shape(run(3, 1000, () => ({ id: 0xffff }), {}).map((p, i) => tcpPacket({ seq: 1000 + i * 1000, id: (0xfffe + i) & 0xffff }, p.subarray(40)))),
    ).toEqual([3]);
  });
  it('splits IPv6 on traffic class, flow label or hop limit that differ', () => {
    expect(shape(run(4, 1000, (i) => ({ flowLabel: i < 2 ? 1 : 2 }), { v6: true }))).toEqual([2, 2]);
    expect(shape(run(4, 1000, (i) => ({ tos: i < 2 ? 0 : 8 }), { v6: true }))).toEqual([2, 2]);
    expect(shape(run(4, 1000, (i) => ({ ttl: i < 2 ? 1 : 2 }), { v6: true }))).toEqual([2, 2]);
  });
  it('writes IPv4 with options or fragment fields, and IPv6 with extension headers, alone', () => {
    expect(shape(run(3, 1000, () => ({ ipOptions: new Uint8Array([1, 1, 1, 0]) })))).toEqual([1, 1, 1]);
    expect(shape(run(3, 1000, () => ({ fragWord: 0x2000 })))).toEqual([1, 1, 1]);
    expect(shape(run(3, 1000, () => ({ fragWord: 0x0001 })))).toEqual([1, 1, 1]);
    expect(shape(run(3, 1000, () => ({ hopByHop: 1 }), { v6: true }))).toEqual([1, 1, 1]);
  });
  it('writes a segment with a bad checksum alone, for the kernel to drop', () => {
    const pkts = run(4, 1000);
    pkts[2]![100] ^= 1;
    expect(shape(pkts)).toEqual([2, 1, 1]);
  });
  it('stops at 64 KiB', () => {
    const pkts = run(60, 1400);
    const m = shape(pkts);
    expect(m.reduce((a, b) => a + b)).toBe(60);
    expect(m[0]).toBe(Math.floor((65535 - 40) / 1400));
    for (const o of coalesce(pkts)) expect(o.packet.length).toBeLessThanOrEqual(65535);
  });
  it('keeps two interleaved flows apart, each in order', () => {
    const a = run(6, 1000, () => ({}), { sport: 1 });
    const b = run(6, 1000, () => ({}), { sport: 2, v6: true });
    const mixed = a.flatMap((p, i) => [p, b[i]!]);
    const outs = coalesce(mixed);
    expect(outs.map((o) => o.members)).toEqual([6, 6]);
    expect(outs.flatMap(resegment).map(hex)).toEqual([...a, ...b].map(hex));
  });
  it('coalesces nothing with the flags off (but still writes every packet)', () => {
    expect(shape(run(4, 1000), 0)).toEqual([1, 1, 1, 1]);
    expect(shape([udpPacket({}, payload(100)), udpPacket({}, payload(100))], GRO_TCP)).toEqual([1, 1]);
  });
});

function get32s(p: Uint8Array): number {
  return ((p[24]! << 24) | (p[25]! << 16) | (p[26]! << 8) | p[27]!) >>> 0;
}

describe('UDP coalescing', () => {
  const dgrams = (n: number, size: number, f: (i: number) => object = () => ({}), base: object = {}) =>
    Array.from({ length: n }, (_, i) => udpPacket({ id: 50 + i, ...base, ...f(i) }, payload(size, i)));
  it('merges datagrams of one size and flow, IPv4 and IPv6', () => {
    for (const v6 of [false, true]) {
      const outs = coalesce(dgrams(8, 1340, () => ({}), { v6 }));
      expect(outs.length).toBe(1);
      expect(outs[0]!.vnet.gsoType).toBe(GSO_UDP_L4);
      expect(outs[0]!.vnet.gsoSize).toBe(1340);
      expect(shape(dgrams(8, 1340, () => ({}), { v6 }))).toEqual([8]);
    }
  });
  it('merges a shorter last one and ends there; never a longer one', () => {
    const d = [...dgrams(3, 1000), udpPacket({ id: 53 }, payload(10)), udpPacket({ id: 54 }, payload(1000))];
    expect(shape(d)).toEqual([4, 1]);
  });
  it('splits on ports, IDs, and leaves datagrams without a checksum or with a bad one alone', () => {
    expect(shape(dgrams(4, 500, (i) => ({ dport: i < 2 ? 1 : 2 })))).toEqual([2, 2]);
    expect(shape(dgrams(4, 500, (i) => ({ id: i === 2 ? 1 : 50 + i })))).toEqual([2, 1, 1]);
    expect(shape(dgrams(3, 500, () => ({ zeroChecksum: true })))).toEqual([1, 1, 1]);
    const bad = dgrams(3, 500);
    bad[1]![40] ^= 0xff;
    expect(shape(bad)).toEqual([1, 1, 1]);
  });
  it('leaves empty datagrams alone', () => {
    expect(shape(dgrams(3, 0))).toEqual([1, 1, 1]);
  });
});

describe('random batches', () => {
  it('always give back exactly what they were given (round trip through segmentation)', () => {
    let seed = 3;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    for (let round = 0; round < 300; round++) {
      const flows = 1 + rnd(3);
      const state = Array.from({ length: flows }, (_, i) => ({ seq: rnd(1 << 30), id: rnd(65536), v6: rnd(2) === 1, sport: 1000 + i }));
      const pkts: Uint8Array[] = [];
      const n = 1 + rnd(40);
      for (let k = 0; k < n; k++) {
        const s = state[rnd(flows)]!;
        const kind = rnd(10);
        const size = kind === 0 ? rnd(1400) : 1200;
        const flags = kind === 1 ? ACK | PSH : kind === 2 ? ACK | FIN : ACK;
        const seq = kind === 3 ? s.seq - 600 : s.seq;
        if (rnd(8) === 0) pkts.push(udpPacket({ v6: s.v6, sport: s.sport, id: s.id }, payload(size, k)));
        else pkts.push(tcpPacket({ v6: s.v6, sport: s.sport, seq: seq >>> 0, id: s.id, flags }, payload(size, k)));
        s.seq = (seq + size) >>> 0;
        s.id = (s.id + (rnd(12) === 0 ? 2 : 1)) & 0xffff;
      }
      const outs = coalesce(pkts);
      // Per flow, the packets come back in order; across flows they may interleave.
      const back = outs.flatMap(resegment);
      const byFlow = (list: Uint8Array[]) => {
        const m = new Map<string, string[]>();
        for (const p of list) {
          const v6 = p[0]! >> 4 === 6;
          const key = `${v6}:${v6 ? p[6] : p[9]}:${get16(p, v6 ? 40 : 20)}`;
          m.set(key, [...(m.get(key) ?? []), hex(p)]);
        }
        return m;
      };
      expect(back.length).toBe(pkts.length);
      expect(byFlow(back)).toEqual(byFlow(pkts));
    }
  });
});
