/**
 * Building inner IP packets: what a test, a benchmark or the JIT warm-up hands to
 * Device.sendPacket. IPv4 headers carry a valid checksum (RFC 1071); payloads are opaque.
 */
import { parseIp } from './iptext.js';

/** The Internet checksum (RFC 1071) of b[start, end). 0 over a block that carries its checksum. */
export function ipChecksum(b: Uint8Array, start = 0, end = b.length): number {
  let s = 0;
  for (let i = start; i < end; i += 2) s += (b[i]! << 8) | (i + 1 < end ? b[i + 1]! : 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

function addressBytes(s: string, family: 4 | 6): Uint8Array {
  const ip = parseIp(s);
  if (ip === null || ip.family !== family) throw new Error(`not an IPv${family} address: ${JSON.stringify(s)}`);
  return ip.bytes;
}

/** `payload` as given, or that many zero bytes. */
function bytesOf(payload: Uint8Array | number): Uint8Array {
  return typeof payload === 'number' ? new Uint8Array(payload) : payload;
}

/** An IPv4 packet from `src` to `dst` (protocol `proto`, default UDP's 17; TTL 64). */
export function ipv4Packet(src: string, dst: string, payload: Uint8Array | number, proto = 17, id = 1): Uint8Array {
  const body = bytesOf(payload);
  const p = new Uint8Array(20 + body.length);
  p[0] = 0x45;
  p[2] = p.length >>> 8;
  p[3] = p.length & 0xff;
  p[4] = id >>> 8;
  p[5] = id & 0xff;
  p[8] = 64;
  p[9] = proto;
  p.set(addressBytes(src, 4), 12);
  p.set(addressBytes(dst, 4), 16);
  const c = ipChecksum(p, 0, 20);
  p[10] = c >>> 8;
  p[11] = c & 0xff;
  p.set(body, 20);
  return p;
}

/** An IPv6 packet from `src` to `dst` (next header `next`, default UDP's 17; hop limit 64). */
export function ipv6Packet(src: string, dst: string, payload: Uint8Array | number, next = 17): Uint8Array {
  const body = bytesOf(payload);
  const p = new Uint8Array(40 + body.length);
  p[0] = 0x60;
  p[4] = body.length >>> 8;
  p[5] = body.length & 0xff;
  p[6] = next;
  p[7] = 64;
  p.set(addressBytes(src, 6), 8);
  p.set(addressBytes(dst, 6), 24);
  p.set(body, 40);
  return p;
}

/** An ICMP echo request inside IPv4, checksums right. */
export function icmpEcho(src: string, dst: string, ident: number, seq: number, data: Uint8Array): Uint8Array {
  const icmp = new Uint8Array(8 + data.length);
  icmp[0] = 8;
  icmp[4] = ident >>> 8;
  icmp[5] = ident & 0xff;
  icmp[6] = seq >>> 8;
  icmp[7] = seq & 0xff;
  icmp.set(data, 8);
  const c = ipChecksum(icmp);
  icmp[2] = c >>> 8;
  icmp[3] = c & 0xff;
  return ipv4Packet(src, dst, icmp, 1, seq);
}
