/**
 * IP/TCP/UDP packets for the offload tests, built and checked here in TypeScript, independently
 * of the addon's C: complete packets with valid checksums, the super-packets a TUN with
 * TSO/USO hands over (virtio header, checksum left partial), and the segments the kernel's
 * segmentation makes of them.
 */

export interface Flow {
  v6?: boolean;
  /** Addresses: last byte of 10.0.0.x / fd00::x. */
  src?: number;
  dst?: number;
  sport?: number;
  dport?: number;
  ttl?: number;
  tos?: number;
  /** IPv4 DF (default set) and the raw flags/fragment word, when a test wants MF or an offset. */
  df?: boolean;
  fragWord?: number;
  /** IPv4 options (a multiple of 4 bytes). */
  ipOptions?: Uint8Array;
  /** IPv6 flow label. */
  flowLabel?: number;
  /** IPv6 extension headers between the fixed header and L4: hop-by-hop options of 8 bytes each. */
  hopByHop?: number;
}

export interface TcpFields extends Flow {
  id?: number;
  seq: number;
  ack?: number;
  flags?: number;
  window?: number;
  urgent?: number;
  options?: Uint8Array;
}

export const FIN = 0x01;
export const SYN = 0x02;
export const RST = 0x04;
export const PSH = 0x08;
export const ACK = 0x10;
export const URG = 0x20;
export const ECE = 0x40;
export const CWR = 0x80;

/** Ones' complement sum of big-endian 16-bit words, folded (the reference implementation). */
export function sum16(b: Uint8Array, start = 0, end = b.length, init = 0): number {
  let s = init;
  for (let i = start; i + 1 < end; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if ((end - start) & 1) s += b[end - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}
function put32(b: Uint8Array, o: number, v: number): void {
  put16(b, o, (v >>> 16) & 0xffff);
  put16(b, o + 2, v & 0xffff);
}
export function get16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}
export function get32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

/** The IP header (with extension headers for IPv6) for an L4 of `l4len` bytes of `proto`. */
function ipHeader(f: Flow, proto: number, l4len: number, id: number): Uint8Array {
  if (f.v6) {
    const ext = f.hopByHop ?? 0;
    const h = new Uint8Array(40 + ext * 8);
    const fl = f.flowLabel ?? 0;
    put32(h, 0, (6 << 28) | ((f.tos ?? 0) << 20) | fl);
    put16(h, 4, ext * 8 + l4len);
    h[6] = ext > 0 ? 0 : proto;
    h[7] = f.ttl ?? 64;
    h[8] = 0xfd;
    h[23] = f.src ?? 1;
    h[24] = 0xfd;
    h[39] = f.dst ?? 2;
    for (let i = 0; i < ext; i++) {
      const o = 40 + i * 8;
      h[o] = i + 1 < ext ? 0 : proto;
      h[o + 1] = 0;
      h[o + 2] = 1; // PadN option filling the header
      h[o + 3] = 4;
    }
    return h;
  }
  const opt = f.ipOptions ?? new Uint8Array(0);
  const ihl = 20 + opt.length;
  const h = new Uint8Array(ihl);
  h[0] = 0x40 | (ihl / 4);
  h[1] = f.tos ?? 0;
  put16(h, 2, ihl + l4len);
  put16(h, 4, id & 0xffff);
  put16(h, 6, f.fragWord ?? ((f.df ?? true) ? 0x4000 : 0));
  h[8] = f.ttl ?? 64;
  h[9] = proto;
  h.set([10, 0, 0, f.src ?? 1], 12);
  h.set([10, 0, 0, f.dst ?? 2], 16);
  h.set(opt, 20);
  put16(h, 10, ~sum16(h) & 0xffff);
  return h;
}

/** The pseudo-header sum of packet `p` whose L4 starts at `l4`. */
export function pseudoSum(p: Uint8Array, l4: number, proto: number): number {
  const v6 = p[0]! >> 4 === 6;
  const len = p.length - l4;
  const a = v6 ? sum16(p, 8, 40) : sum16(p, 12, 20);
  return sum16(new Uint8Array([0, proto, (len >>> 8) & 0xff, len & 0xff]), 0, 4, a);
}

/** The offset of the L4 header in an IP packet (walking IPv6 extension headers). */
export function l4Offset(p: Uint8Array): { l4: number; proto: number } {
  if (p[0]! >> 4 === 4) return { l4: (p[0]! & 15) * 4, proto: p[9]! };
  let next = p[6]!;
  let off = 40;
  while (next === 0 || next === 43 || next === 60) {
    next = p[off]!;
    off += (p[off + 1]! + 1) * 8;
  }
  return { l4: off, proto: next };
}

/** Whether the IPv4 header checksum and the TCP/UDP checksum of `p` are valid. */
export function checksumsValid(p: Uint8Array): boolean {
  const { l4, proto } = l4Offset(p);
  if (p[0]! >> 4 === 4 && sum16(p, 0, l4) !== 0xffff) return false;
  if (proto === 17 && p[0]! >> 4 === 4 && get16(p, l4 + 6) === 0) return true;
  return sum16(p, l4, p.length, pseudoSum(p, l4, proto)) === 0xffff;
}

export function tcpPacket(f: TcpFields, payload: Uint8Array): Uint8Array {
  const opt = f.options ?? new Uint8Array(0);
  const thl = 20 + opt.length;
  const ip = ipHeader(f, 6, thl + payload.length, f.id ?? 0x1234);
  const p = new Uint8Array(ip.length + thl + payload.length);
  p.set(ip);
  const t = ip.length;
  put16(p, t, f.sport ?? 40000);
  put16(p, t + 2, f.dport ?? 5201);
  put32(p, t + 4, f.seq >>> 0);
  put32(p, t + 8, (f.ack ?? 1000) >>> 0);
  p[t + 12] = (thl / 4) << 4;
  p[t + 13] = f.flags ?? ACK;
  put16(p, t + 14, f.window ?? 502);
  put16(p, t + 18, f.urgent ?? 0);
  p.set(opt, t + 20);
  p.set(payload, t + thl);
  put16(p, t + 16, ~sum16(p, t, p.length, pseudoSum(p, t, 6)) & 0xffff);
  return p;
}

export function udpPacket(f: Flow & { id?: number; zeroChecksum?: boolean }, payload: Uint8Array): Uint8Array {
  const ip = ipHeader(f, 17, 8 + payload.length, f.id ?? 0x1234);
  const p = new Uint8Array(ip.length + 8 + payload.length);
  p.set(ip);
  const u = ip.length;
  put16(p, u, f.sport ?? 40000);
  put16(p, u + 2, f.dport ?? 5201);
  put16(p, u + 4, 8 + payload.length);
  p.set(payload, u + 8);
  if (!f.zeroChecksum) {
    const c = ~sum16(p, u, p.length, pseudoSum(p, u, 17)) & 0xffff;
    put16(p, u + 6, c === 0 ? 0xffff : c);
  }
  return p;
}

/** Deterministic payload bytes. */
export function payload(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed * 2654435761;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

export interface VnetHeader {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}
export const GSO_NONE = 0;
export const GSO_TCPV4 = 1;
export const GSO_TCPV6 = 4;
export const GSO_UDP_L4 = 5;
export const GSO_ECN = 0x80;
export const NEEDS_CSUM = 1;

export function vnetBytes(h: VnetHeader): Uint8Array {
  const b = new Uint8Array(10);
  const v = new DataView(b.buffer);
  b[0] = h.flags;
  b[1] = h.gsoType;
  v.setUint16(2, h.hdrLen, true);
  v.setUint16(4, h.gsoSize, true);
  v.setUint16(6, h.csumStart, true);
  v.setUint16(8, h.csumOffset, true);
  return b;
}

export function readVnet(b: Uint8Array, o = 0): VnetHeader {
  const v = new DataView(b.buffer, b.byteOffset + o, 10);
  return {
    flags: b[o]!,
    gsoType: b[o + 1]!,
    hdrLen: v.getUint16(2, true),
    gsoSize: v.getUint16(4, true),
    csumStart: v.getUint16(6, true),
    csumOffset: v.getUint16(8, true),
  };
}

/**
 * What a TUN with TSO/USO hands over for `whole` (a complete packet carrying all the payload):
 * the virtio header, then the packet with its L4 checksum field holding the pseudo-header sum
 * (the checksum left partial, CHECKSUM_PARTIAL).
 */
export function superPacket(whole: Uint8Array, gsoSize: number, over: Partial<VnetHeader> = {}): Uint8Array {
  const { l4, proto } = l4Offset(whole);
  const p = whole.slice();
  const at = l4 + (proto === 6 ? 16 : 6);
  put16(p, at, 0);
  put16(p, at, pseudoSum(p, l4, proto));
  const thl = proto === 6 ? (p[l4 + 12]! >> 4) * 4 : 8;
  const v6 = p[0]! >> 4 === 6;
  const h: VnetHeader = {
    flags: NEEDS_CSUM,
    gsoType: proto === 17 ? GSO_UDP_L4 : v6 ? GSO_TCPV6 : GSO_TCPV4,
    hdrLen: l4 + thl,
    gsoSize,
    csumStart: l4,
    csumOffset: proto === 6 ? 16 : 6,
    ...over,
  };
  const out = new Uint8Array(10 + p.length);
  out.set(vnetBytes(h));
  out.set(p, 10);
  return out;
}

/** The segments the kernel makes of a TCP super-packet of fields `f` and `data`, MSS `mss`. */
export function tcpSegments(f: TcpFields, data: Uint8Array, mss: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  const n = Math.max(1, Math.ceil(data.length / mss));
  for (let i = 0; i < n; i++) {
    let flags = f.flags ?? ACK;
    if (i + 1 < n) flags &= ~(FIN | PSH);
    if (i > 0) flags &= ~CWR;
    out.push(tcpPacket({ ...f, seq: (f.seq + i * mss) >>> 0, id: ((f.id ?? 0x1234) + i) & 0xffff, flags }, data.subarray(i * mss, (i + 1) * mss)));
  }
  return out;
}

/** The segments of a UDP super-packet (USO). */
export function udpSegments(f: Flow & { id?: number }, data: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  const n = Math.max(1, Math.ceil(data.length / size));
  for (let i = 0; i < n; i++) out.push(udpPacket({ ...f, id: ((f.id ?? 0x1234) + i) & 0xffff }, data.subarray(i * size, (i + 1) * size)));
  return out;
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
}
