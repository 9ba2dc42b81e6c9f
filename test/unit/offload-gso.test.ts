/**
 * The segmenter (csrc/gso.c) against the segments the kernel's own segmentation makes, built
 * independently in TypeScript (test/helpers/offload-packets.ts), byte for byte; and against
 * every malformed virtio header it must refuse. test/system/offload-kernel.test.ts checks the
 * same against the kernel itself.
 */
import { describe, expect, it } from 'vitest';
import { GSO_EBADHDR, GSO_ENOROOM, native } from '../../tun/addon.js';
import {
  ACK,
  CWR,
  checksumsValid,
  ECE,
  FIN,
  GSO_ECN,
  GSO_NONE,
  GSO_TCPV4,
  GSO_TCPV6,
  GSO_UDP_L4,
  get16,
  hex,
  NEEDS_CSUM,
  PSH,
  payload,
  superPacket,
  type TcpFields,
  tcpPacket,
  tcpSegments,
  udpPacket,
  udpSegments,
  vnetBytes,
} from '../helpers/offload-packets.js';

const TS_OPT = new Uint8Array([1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78]); // NOP NOP timestamps

function split(input: Uint8Array, outSize = 1 << 20, metaPairs = 2048): { r: number; segs: Uint8Array[] } {
  const out = new Uint8Array(outSize);
  const meta = new Int32Array(metaPairs * 2);
  const r = native().gsoSplit(input, out, meta);
  const segs: Uint8Array[] = [];
  for (let i = 0; i < r; i++) {
    expect(meta[2 * i]! % 16).toBe(0);
    segs.push(out.slice(meta[2 * i]!, meta[2 * i]! + meta[2 * i + 1]!));
  }
  return { r, segs };
}

function expectSegments(input: Uint8Array, want: Uint8Array[]): void {
  const { r, segs } = split(input);
  expect(r).toBe(want.length);
  expect(segs.map(hex)).toEqual(want.map(hex));
  for (const s of segs) expect(checksumsValid(s)).toBe(true);
}

function tcpCase(f: TcpFields, total: number, mss: number): void {
  const data = payload(total, f.seq);
  expectSegments(superPacket(tcpPacket(f, data), mss), tcpSegments(f, data, mss));
}

describe('TCP segmentation (TSO)', () => {
  it('splits IPv4 into MSS-sized segments with a last short one', () => {
    tcpCase({ seq: 1000 }, 10_000, 1448);
  });
  it('splits IPv6, with TCP options', () => {
    tcpCase({ v6: true, seq: 7, options: TS_OPT }, 64_000, 1388);
  });
  it('splits IPv6 with extension headers before TCP (copied into every segment)', () => {
    tcpCase({ v6: true, hopByHop: 2, seq: 99 }, 5000, 1200);
  });
  it('gives full segments only when the payload is a multiple of the MSS', () => {
    tcpCase({ seq: 1 }, 1448 * 5, 1448);
  });
  it('gives one segment of exactly the MSS, and one when the payload is shorter', () => {
    tcpCase({ seq: 1 }, 1448, 1448);
    tcpCase({ seq: 1 }, 100, 1448);
  });
  it('takes a gso_size at or above the MTU as it is (segments of gso_size)', () => {
    tcpCase({ seq: 5 }, 40_000, 9000);
    tcpCase({ seq: 5 }, 3000, 65_000);
  });
  it('keeps FIN and PSH on the last segment only, CWR on the first only', () => {
    tcpCase({ seq: 10, flags: ACK | PSH | FIN }, 4000, 1000);
    const f = { seq: 10, flags: ACK | CWR | ECE };
    const data = payload(4000);
    const sp = superPacket(tcpPacket(f, data), 1000, { gsoType: GSO_TCPV4 | GSO_ECN });
    expectSegments(sp, tcpSegments(f, data, 1000));
  });
  it('counts IPv4 IDs up (wrapping) and sequence numbers up (wrapping)', () => {
    tcpCase({ seq: 0xffff_f000, id: 0xfffe }, 20_000, 1448);
  });
  it('keeps IPv4 options, TOS, TTL and DF, and the IPv6 flow label and traffic class', () => {
    tcpCase({ seq: 3, ipOptions: new Uint8Array([1, 1, 1, 0]), tos: 0x10, ttl: 3, df: false }, 5000, 1000);
    tcpCase({ v6: true, seq: 3, flowLabel: 0x12345, tos: 0x28, ttl: 9 }, 5000, 1000);
  });
  it('handles the smallest MSS the kernel uses (48) up to 64 KiB', () => {
    tcpCase({ seq: 3 }, 65_000, 48);
  });
  it('takes its header length from the TCP header, not from the kernel (forwarding paths)', () => {
    const f = { seq: 3 };
    const data = payload(5000);
    expectSegments(superPacket(tcpPacket(f, data), 1000, { hdrLen: 1040 }), tcpSegments(f, data, 1000));
  });
});

describe('UDP segmentation (USO)', () => {
  it('splits IPv4 and IPv6 datagrams, the last one shorter', () => {
    for (const v6 of [false, true]) {
      const f = { v6, id: 77 };
      const data = payload(1340 * 10 + 5);
      expectSegments(superPacket(udpPacket(f, data), 1340), udpSegments(f, data, 1340));
    }
  });
  it('writes 0xffff for a checksum that computes to zero', () => {
    // A zero payload's checksum c, put into the payload, brings the sum to 0xffff: checksum 0.
    const d = new Uint8Array(16);
    const c = get16(udpPacket({}, d), 26);
    d[0] = c >> 8;
    d[1] = c & 0xff;
    const p = udpPacket({}, d);
    expect(get16(p, 26)).toBe(0xffff);
    const { r, segs } = split(superPacket(p, 100));
    expect(r).toBe(1);
    expect(hex(segs[0]!)).toBe(hex(p));
  });
});

describe('packets that are not super-packets', () => {
  it('completes a checksum the kernel left partial, in place', () => {
    for (const whole of [tcpPacket({ seq: 1 }, payload(300)), udpPacket({ v6: true }, payload(33)), tcpPacket({ seq: 1, v6: true }, new Uint8Array(0))]) {
      const sp = superPacket(whole, 0, { gsoType: GSO_NONE, gsoSize: 0 });
      expect(hex(sp.subarray(10))).not.toBe(hex(whole));
      expect(split(sp).r).toBe(0);
      expect(hex(sp.subarray(10))).toBe(hex(whole));
    }
  });
  it('leaves a complete packet alone', () => {
    const whole = tcpPacket({ seq: 1 }, payload(300));
    const sp = new Uint8Array(10 + whole.length);
    sp.set(whole, 10);
    expect(split(sp).r).toBe(0);
    expect(hex(sp.subarray(10))).toBe(hex(whole));
  });
});

describe('bad virtio headers', () => {
  const whole = tcpPacket({ seq: 1 }, payload(5000));
  const whole6 = tcpPacket({ v6: true, seq: 1 }, payload(5000));
  const wholeUdp = udpPacket({}, payload(5000));
  const cases: [string, Uint8Array][] = [
    ['an unknown GSO type', superPacket(whole, 1000, { gsoType: 3 })],
    ['gso_size 0', superPacket(whole, 0)],
    ['no NEEDS_CSUM', superPacket(whole, 1000, { flags: 0 })],
    ['TCPV4 on an IPv6 packet', superPacket(whole6, 1000, { gsoType: GSO_TCPV4 })],
    ['TCPV6 on an IPv4 packet', superPacket(whole, 1000, { gsoType: GSO_TCPV6 })],
    ['UDP_L4 on a TCP packet', superPacket(whole, 1000, { gsoType: GSO_UDP_L4, csumOffset: 6 })],
    ['ECN on UDP', superPacket(wholeUdp, 1000, { gsoType: GSO_UDP_L4 | GSO_ECN })],
    ['ECN without GSO', superPacket(whole, 0, { gsoType: GSO_NONE | GSO_ECN })],
    ['csum_start not at the IPv4 header end', superPacket(whole, 1000, { csumStart: 24 })],
    ['csum_start not at the IPv6 L4 header', superPacket(whole6, 1000, { csumStart: 48 })],
    ['a TCP csum_offset other than 16', superPacket(whole, 1000, { csumOffset: 6 })],
    ['NONE with csum_start past the end', superPacket(whole, 0, { gsoType: GSO_NONE, csumStart: 6000 })],
    ['NONE with the checksum field past the end', superPacket(whole, 0, { gsoType: GSO_NONE, csumStart: 20, csumOffset: 5100 })],
    ['more than 1400 segments', superPacket(whole, 3)],
    [
      'a super-packet of 19 bytes',
      new Uint8Array([
        ...vnetBytes({ flags: NEEDS_CSUM, gsoType: GSO_TCPV4, hdrLen: 40, gsoSize: 10, csumStart: 20, csumOffset: 16 }),
        ...whole.subarray(0, 19),
      ]),
    ],
  ];
  for (const [what, input] of cases) {
    it(`refuses ${what}`, () => {
      expect(split(input).r).toBe(GSO_EBADHDR);
    });
  }
  it('refuses a TCP data offset below 5 and a TCP header past the end', () => {
    const p = superPacket(whole, 1000);
    p[10 + 20 + 12] = 4 << 4;
    expect(split(p).r).toBe(GSO_EBADHDR);
    const q = superPacket(tcpPacket({ seq: 1 }, new Uint8Array(0)), 1000).subarray(0, 10 + 30);
    expect(split(q).r).toBe(GSO_EBADHDR);
  });
  it('refuses IPv4 fragments and a protocol that does not match', () => {
    expect(split(superPacket(tcpPacket({ seq: 1, fragWord: 0x2000 }, payload(3000)), 1000)).r).toBe(GSO_EBADHDR);
    expect(split(superPacket(tcpPacket({ seq: 1, fragWord: 0x0010 }, payload(3000)), 1000)).r).toBe(GSO_EBADHDR);
    const p = superPacket(whole, 1000);
    p[10 + 9] = 17;
    expect(split(p).r).toBe(GSO_EBADHDR);
  });
  it('says when the segments do not fit the room given', () => {
    expect(split(superPacket(whole, 1000), 3000).r).toBe(GSO_ENOROOM);
    expect(split(superPacket(whole, 1000), 1 << 20, 4).r).toBe(GSO_ENOROOM);
    expect(split(superPacket(whole, 1000), 1 << 20, 5).r).toBe(5);
  });
  it('never reads or writes out of bounds on random corruption (and keeps valid checksums)', () => {
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    for (let n = 0; n < 3000; n++) {
      const base = [superPacket(whole, 1000), superPacket(whole6, 700), superPacket(wholeUdp, 1200)][n % 3]!;
      const p = base.slice(0, 10 + Math.floor(rnd() * (base.length - 10)) + 1);
      for (let k = 0; k < 3; k++) p[Math.floor(rnd() * Math.min(p.length, 80))] = Math.floor(rnd() * 256);
      const { r, segs } = split(p);
      expect(r === GSO_EBADHDR || r >= 0).toBe(true);
      if (r > 0) for (const s of segs) expect(s.length).toBeGreaterThan(0);
    }
  });
});
