/**
 * The inner packets the vectors carry: ICMP echo request/reply over IPv4 and an ICMPv6 echo
 * request over IPv6, with valid checksums, so that a receiver that checks inner packets (as
 * the engine and the kernel do) delivers them.
 */
import { parseIpStrict } from '../../noise/allowedips.js';

/** RFC 1071 checksum of `b` (odd length padded with a zero byte), added to `initial`. */
function checksum(b: Uint8Array, initial = 0): number {
  let s = initial;
  for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) | (i + 1 < b.length ? b[i + 1]! : 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

function echo(type: number, ident: number, seq: number, data: Uint8Array): Uint8Array {
  const m = new Uint8Array(8 + data.length);
  m[0] = type;
  m[4] = ident >>> 8;
  m[5] = ident & 0xff;
  m[6] = seq >>> 8;
  m[7] = seq & 0xff;
  m.set(data, 8);
  return m;
}

function setChecksum(b: Uint8Array, at: number, c: number): void {
  b[at] = c >>> 8;
  b[at + 1] = c & 0xff;
}

/** An IPv4 ICMP echo request (`reply` false) or reply, TTL 64, DF clear, id = seq. */
export function icmpv4Echo(src: string, dst: string, reply: boolean, ident: number, seq: number, data: Uint8Array): Uint8Array {
  const icmp = echo(reply ? 0 : 8, ident, seq, data);
  setChecksum(icmp, 2, checksum(icmp));
  const p = new Uint8Array(20 + icmp.length);
  p[0] = 0x45;
  p[2] = p.length >>> 8;
  p[3] = p.length & 0xff;
  p[4] = seq >>> 8;
  p[5] = seq & 0xff;
  p[8] = 64;
  p[9] = 1;
  p.set(parseIpStrict(src).bytes, 12);
  p.set(parseIpStrict(dst).bytes, 16);
  setChecksum(p, 10, checksum(p.subarray(0, 20)));
  p.set(icmp, 20);
  return p;
}

/** An IPv6 ICMPv6 echo request, hop limit 64; the checksum covers the RFC 8200 pseudo-header. */
export function icmpv6EchoRequest(src: string, dst: string, ident: number, seq: number, data: Uint8Array): Uint8Array {
  const icmp = echo(128, ident, seq, data);
  const p = new Uint8Array(40 + icmp.length);
  p[0] = 0x60;
  p[4] = icmp.length >>> 8;
  p[5] = icmp.length & 0xff;
  p[6] = 58;
  p[7] = 64;
  p.set(parseIpStrict(src).bytes, 8);
  p.set(parseIpStrict(dst).bytes, 24);
  const pseudo = new Uint8Array(40);
  pseudo.set(p.subarray(8, 40), 0);
  pseudo[34] = icmp.length >>> 8;
  pseudo[35] = icmp.length & 0xff;
  pseudo[39] = 58;
  let s = 0;
  for (let i = 0; i < 40; i += 2) s += (pseudo[i]! << 8) | pseudo[i + 1]!;
  setChecksum(icmp, 2, checksum(icmp, s));
  p.set(icmp, 40);
  return p;
}
