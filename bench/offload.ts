/**
 * Where segmentation and checksums run: the addon's C (csrc/gso.c, csrc/csum.c) against the same
 * work in TypeScript, on what the data path meets: a 64 KiB TCP super-packet cut into 1448-byte
 * segments (copy headers and payload, fix lengths, IPv4 ID and header checksum, sequence
 * numbers, full TCP checksum per segment) and the checksum of one 1420-byte packet.
 * `node dist/bench/offload.js` (no root). See docs/IO.md.
 */
import { performance } from 'node:perf_hooks';
import { native } from '../tun/addon.js';

const MSS = 1448;
const PAYLOAD = 44 * MSS; // 63712 bytes: what the kernel hands with a 1500-byte path
const HL = 40;

/** Ones' complement sum in TypeScript, 32-bit reads through a DataView, folded at the end. */
function sumTs(b: Uint8Array, start: number, end: number, init: number): number {
  const dv = new DataView(b.buffer, b.byteOffset);
  let s = init;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const w = dv.getUint32(i);
    s += (w >>> 16) + (w & 0xffff);
  }
  if (i + 2 <= end) {
    s += dv.getUint16(i);
    i += 2;
  }
  if (i < end) s += b[i]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** The same segmentation as csrc/gso.c for IPv4/TCP without options, in TypeScript. */
function splitTs(pkt: Uint8Array, out: Uint8Array, meta: Int32Array): number {
  const id = (pkt[4]! << 8) | pkt[5]!;
  const seq = ((pkt[24]! << 24) | (pkt[25]! << 16) | (pkt[26]! << 8) | pkt[27]!) >>> 0;
  const payload = pkt.length - HL;
  const n = Math.ceil(payload / MSS);
  const addrSum = sumTs(pkt, 12, 20, 6);
  let off = 0;
  for (let i = 0; i < n; i++) {
    const seg = i + 1 < n ? MSS : payload - i * MSS;
    const total = HL + seg;
    out.set(pkt.subarray(0, HL), off);
    out.set(pkt.subarray(HL + i * MSS, HL + i * MSS + seg), off + HL);
    out[off + 2] = total >> 8;
    out[off + 3] = total & 0xff;
    const nid = (id + i) & 0xffff;
    out[off + 4] = nid >> 8;
    out[off + 5] = nid & 0xff;
    out[off + 10] = out[off + 11] = 0;
    const hc = ~sumTs(out, off, off + 20, 0) & 0xffff;
    out[off + 10] = hc >> 8;
    out[off + 11] = hc & 0xff;
    const s = (seq + i * MSS) >>> 0;
    out[off + 24] = s >>> 24;
    out[off + 25] = (s >>> 16) & 0xff;
    out[off + 26] = (s >>> 8) & 0xff;
    out[off + 27] = s & 0xff;
    if (i + 1 < n) out[off + 33]! &= ~0x09;
    out[off + 36] = out[off + 37] = 0;
    const c = ~sumTs(out, off + 20, off + total, addrSum + total - 20) & 0xffff;
    out[off + 36] = c >> 8;
    out[off + 37] = c & 0xff;
    meta[2 * i] = off;
    meta[2 * i + 1] = total;
    off += (total + 15) & ~15;
  }
  return n;
}

function superPacket(): Uint8Array {
  const p = new Uint8Array(10 + HL + PAYLOAD);
  const v = new DataView(p.buffer);
  p[0] = 1; // NEEDS_CSUM
  p[1] = 1; // TCPV4
  v.setUint16(2, HL, true);
  v.setUint16(4, MSS, true);
  v.setUint16(6, 20, true);
  v.setUint16(8, 16, true);
  const ip = p.subarray(10);
  ip.set([0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
  ip[20 + 12] = 5 << 4;
  ip[20 + 13] = 0x18;
  for (let i = HL; i < ip.length; i++) ip[i] = (i * 7) & 0xff;
  return p;
}

function rate(name: string, ms: number, fn: () => void): number {
  for (let i = 0; i < 200; i++) fn(); // warm up
  let n = 0;
  const end = performance.now() + ms;
  const t0 = performance.now();
  while (performance.now() < end) {
    for (let i = 0; i < 50; i++) fn();
    n += 50;
  }
  const us = ((performance.now() - t0) * 1000) / n;
  console.log(`${name.padEnd(58)} ${us.toFixed(2).padStart(8)} µs`);
  return us;
}

const addon = native();
const input = superPacket();
const out = new Uint8Array(1 << 20);
const meta = new Int32Array(4096);
const pkt = input.subarray(10);
const nsegs = Math.ceil(PAYLOAD / MSS);

// Both implementations must agree before they are timed.
const r = addon.gsoSplit(input.slice(), out, meta);
const outTs = new Uint8Array(1 << 20);
const metaTs = new Int32Array(4096);
splitTs(pkt, outTs, metaTs);
for (let i = 0; i < r; i++) {
  const a = out.subarray(meta[2 * i]!, meta[2 * i]! + meta[2 * i + 1]!);
  const b = outTs.subarray(metaTs[2 * i]!, metaTs[2 * i]! + metaTs[2 * i + 1]!);
  if (Buffer.compare(a, b) !== 0) throw new Error(`segment ${i} differs between C and TypeScript`);
}

console.log(`64 KiB TCP super-packet -> ${nsegs} segments of ${MSS} bytes; checksum of 1420 bytes`);
const c = rate('segment + checksums, addon (C), per super-packet', 1500, () => addon.gsoSplit(input, out, meta));
const t = rate('segment + checksums, TypeScript, per super-packet', 1500, () => splitTs(pkt, outTs, metaTs));
const p1420 = out.subarray(0, 1420);
const cc = rate('checksum of 1420 bytes, addon (C, one call)', 1000, () => addon.csum(p1420));
const ct = rate('checksum of 1420 bytes, TypeScript', 1000, () => sumTs(p1420, 0, 1420, 0));
console.log(
  `per segment: C ${((c * 1000) / nsegs).toFixed(0)} ns, TypeScript ${((t * 1000) / nsegs).toFixed(0)} ns (${(t / c).toFixed(1)}x); checksum alone: ${(ct / cc).toFixed(1)}x`,
);
