/**
 * Text codecs of the addresses WireGuard configurations carry: IP addresses (strict dotted quad
 * and RFC 4291 IPv6, formatted as `wg` prints them), CIDR prefixes, and UDP endpoints
 * ("a.b.c.d:port", "[v6]:port", "[fe80::1%zone]:port"). One implementation for the UAPI, cwg,
 * the UDP layer and `cwg show`. Pure functions: a zone name is resolved only through the
 * resolver the caller passes (the interface table is the OS's, see tun/ip.ts).
 */

import { quote } from './quote.js';
import { allocBytes } from './slab.js';
import { type Cidr, type Endpoint, endpointOf } from './types.js';

const echo = (s: string): string => quote(s);
function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/**
 * Strict dotted-quad IPv4 between s[start, end): four decimal fields 0-255, no leading zeros
 * (as Go's netip and modern inet_pton do: "010" is ambiguous octal), nothing else.
 * Writes 4 bytes at out[off]. Returns false on anything invalid.
 */
function parseIPv4Into(s: string, start: number, end: number, out: Uint8Array, off: number): boolean {
  let field = 0;
  let i = start;
  while (field < 4) {
    const fieldStart = i;
    let v = 0;
    while (i < end && isDigit(s.charCodeAt(i))) {
      v = v * 10 + (s.charCodeAt(i) - 0x30);
      i++;
      if (i - fieldStart > 3) return false;
    }
    const n = i - fieldStart;
    if (n === 0 || v > 255) return false;
    if (n > 1 && s.charCodeAt(fieldStart) === 0x30) return false;
    out[off + field] = v;
    field++;
    if (field < 4) {
      if (i >= end || s.charCodeAt(i) !== 0x2e /* . */) return false;
      i++;
    }
  }
  return i === end;
}

/** RFC 4291 §2.2 text (all three forms), no zone, hex groups of 1-4 digits. */
function parseIPv6(s: string): Uint8Array | null {
  const len = s.length;
  if (len < 2 || len > 45) return null;
  const out = allocBytes(16);
  const words: number[] = [];
  let gap = -1; // index in `words` where "::" stands
  let i = 0;
  if (s.charCodeAt(0) === 0x3a /* : */) {
    if (s.charCodeAt(1) !== 0x3a) return null;
    gap = 0;
    i = 2;
  }
  let tail4 = false;
  while (i < len) {
    let j = i;
    let v = 0;
    for (let h = j < len ? hexVal(s.charCodeAt(j)) : -1; h >= 0; h = j < len ? hexVal(s.charCodeAt(j)) : -1) {
      v = (v << 4) | h;
      j++;
    }
    if (j < len && s.charCodeAt(j) === 0x2e /* . */) {
      // Embedded IPv4 in the last 32 bits.
      if (words.length > 6) return null;
      if (!parseIPv4Into(s, i, len, out, 12)) return null;
      tail4 = true;
      i = len;
      break;
    }
    if (j === i || j - i > 4) return null;
    words.push(v);
    if (words.length > 8) return null;
    i = j;
    if (i === len) break;
    if (s.charCodeAt(i) !== 0x3a) return null;
    i++;
    if (i < len && s.charCodeAt(i) === 0x3a) {
      if (gap >= 0) return null;
      gap = words.length;
      i++;
    } else if (i === len) {
      return null; // trailing single ':'
    }
  }
  const total = words.length + (tail4 ? 2 : 0);
  if (gap >= 0) {
    if (total > 7) return null; // "::" must stand for at least one zero group
  } else if (total !== 8) {
    return null;
  }
  const headCount = gap >= 0 ? gap : words.length;
  for (let k = 0; k < headCount; k++) {
    out[2 * k] = words[k]! >>> 8;
    out[2 * k + 1] = words[k]! & 0xff;
  }
  const tailWords = words.length - headCount;
  const tailEnd = tail4 ? 6 : 8; // word index where the hex tail ends
  for (let k = 0; k < tailWords; k++) {
    const w = words[headCount + k]!;
    const pos = tailEnd - tailWords + k;
    out[2 * pos] = w >>> 8;
    out[2 * pos + 1] = w & 0xff;
  }
  return out;
}

/**
 * Parse a textual IP address: strict dotted-quad IPv4 or RFC 4291 IPv6 (including "::" and
 * "::ffff:1.2.3.4" forms). No zone identifiers, no brackets, no surrounding whitespace.
 * Returns null when `s` is not a valid address.
 */
export function parseIp(s: string): { family: 4 | 6; bytes: Uint8Array } | null {
  if (typeof s !== 'string') return null;
  if (s.indexOf(':') >= 0) {
    const b = parseIPv6(s);
    return b ? { family: 6, bytes: b } : null;
  }
  if (s.length < 7 || s.length > 15) return null;
  const b = allocBytes(4);
  return parseIPv4Into(s, 0, s.length, b, 0) ? { family: 4, bytes: b } : null;
}

/** Like parseIp, but throws an Error explaining what is wrong. */
export function parseIpStrict(s: string): { family: 4 | 6; bytes: Uint8Array } {
  const ip = parseIp(s);
  if (ip) return ip;
  if (typeof s === 'string' && s.includes('%')) {
    throw new Error(`invalid IP address ${echo(s)}: zone identifiers are not supported`);
  }
  throw new Error(`invalid IP address ${echo(s)}`);
}

/**
 * Parse "ADDRESS/PREFIX" or a bare ADDRESS (which means /32 or /128). Host bits are masked
 * off, as the kernel does ("10.0.0.1/24" is 10.0.0.0/24). Throws an Error on anything invalid.
 */
export function parseCidr(s: string): Cidr {
  if (typeof s !== 'string') throw new Error('invalid CIDR: not a string');
  const slash = s.indexOf('/');
  const addr = slash < 0 ? s : s.slice(0, slash);
  let ip: { family: 4 | 6; bytes: Uint8Array };
  try {
    ip = parseIpStrict(addr);
  } catch (e) {
    throw new Error(`invalid CIDR ${echo(s)}: ${(e as Error).message}`);
  }
  const max = ip.family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,9})$/.test(p)) {
      throw new Error(`invalid CIDR ${echo(s)}: prefix length must be a decimal number 0-${max}`);
    }
    prefix = Number(p);
    if (prefix > max) {
      throw new Error(`invalid CIDR ${echo(s)}: prefix length ${prefix} out of range 0-${max} for IPv${ip.family}`);
    }
  }
  maskBytes(ip.bytes, prefix);
  return { family: ip.family, bytes: ip.bytes, prefix };
}

/** Zero every bit of `bytes` past the first `prefix` bits, in place. */
function maskBytes(bytes: Uint8Array, prefix: number): void {
  for (let i = 0; i < bytes.length; i++) {
    const bits = prefix - 8 * i;
    if (bits >= 8) continue;
    bytes[i] = bits <= 0 ? 0 : bytes[i]! & ((0xff << (8 - bits)) & 0xff);
  }
}

/**
 * Format an IP address: dotted quad, or IPv6 as glibc's inet_ntop (what `wg` prints): RFC 5952
 * (lowercase, no leading zeros, the longest run of two or more zero groups - the first on a
 * tie - as "::"), with the IPv4 dotted tail for IPv4-mapped (::ffff:a.b.c.d) and
 * IPv4-compatible (::a.b.c.d) addresses.
 */
export function formatIp(family: 4 | 6, bytes: Uint8Array, offset = 0): string {
  if (family === 4) {
    return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
  }
  const w = [0, 0, 0, 0, 0, 0, 0, 0];
  for (let i = 0; i < 8; i++) w[i] = (bytes[offset + 2 * i]! << 8) | bytes[offset + 2 * i + 1]!;
  let bestBase = -1;
  let bestLen = 0;
  let curBase = -1;
  let curLen = 0;
  for (let i = 0; i < 8; i++) {
    if (w[i] === 0) {
      if (curBase < 0) {
        curBase = i;
        curLen = 1;
      } else {
        curLen++;
      }
    } else if (curBase >= 0) {
      if (curLen > bestLen) {
        bestBase = curBase;
        bestLen = curLen;
      }
      curBase = -1;
    }
  }
  if (curBase >= 0 && curLen > bestLen) {
    bestBase = curBase;
    bestLen = curLen;
  }
  if (bestLen < 2) bestBase = -1;
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (bestBase >= 0 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) out += ':';
      continue;
    }
    if (i > 0) out += ':';
    if (i === 6 && bestBase === 0 && (bestLen === 6 || (bestLen === 5 && w[5] === 0xffff))) {
      out += `${bytes[offset + 12]}.${bytes[offset + 13]}.${bytes[offset + 14]}.${bytes[offset + 15]}`;
      return out;
    }
    out += w[i]!.toString(16);
  }
  if (bestBase >= 0 && bestBase + bestLen === 8) out += ':';
  return out;
}

/** Canonical text of a prefix: "10.0.0.0/8", "2001:db8::/32" (IPv6 as `wg` prints it). */
export function formatCidr(c: Cidr): string {
  return `${formatIp(c.family, c.bytes)}/${c.prefix}`;
}

/** A decimal unsigned integer <= max (as Go's strconv.ParseUint(v, 10, bits)), or null. */
export function parseUint(v: string, max: number): number | null {
  if (v.length === 0 || v.length > 32) return null;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return null;
  }
  const n = Number(v);
  return n <= max ? n : null;
}

/** Interface name -> its index where the UDP socket lives, 0 if there is none. */
export type ZoneResolver = (name: string) => number;

/** Resolves no names: zones must be given as interface indexes. */
export const numericZonesOnly: ZoneResolver = () => 0;

/**
 * Why `v` is not an endpoint, or the Endpoint: "a.b.c.d:port" or "[ipv6]:port" with a numeric
 * IP (no host names) and a decimal port 0-65535. An IPv6 address may carry a zone, as `wg`
 * sends link-local endpoints: "[fe80::1%eth0]:51820" (an interface name, looked up with
 * `zoneIndex`) or "[fe80::1%2]:51820" (an index). The reason names the part that is wrong.
 */
export function endpointOrReason(v: string, zoneIndex: ZoneResolver = numericZonesOnly): Endpoint | string {
  let host: string;
  let portText: string;
  let zone: string | null = null;
  if (v.startsWith('[')) {
    const close = v.indexOf(']');
    if (close < 0 || v.charCodeAt(close + 1) !== 0x3a /* : */) return 'expected [IPv6]:port';
    host = v.slice(1, close);
    portText = v.slice(close + 2);
    const pct = host.indexOf('%');
    if (pct >= 0) {
      zone = host.slice(pct + 1);
      host = host.slice(0, pct);
    }
    if (!host.includes(':')) return 'square brackets can only be used with IPv6 addresses';
  } else {
    const colon = v.lastIndexOf(':');
    if (colon < 0) return 'missing port';
    host = v.slice(0, colon);
    portText = v.slice(colon + 1);
    if (host.includes(':')) return 'IPv6 addresses must be in square brackets';
  }
  const port = parseUint(portText, 65535);
  if (port === null) return `invalid port ${echo(portText)}`;
  const ip = parseIp(host);
  if (!ip) return `invalid IP address ${echo(host)}`;
  let ifindex = 0;
  if (zone !== null) {
    ifindex = /^[0-9]+$/.test(zone) ? (parseUint(zone, 0xffffffff) ?? 0) : zoneIndex(zone);
    if (ifindex === 0) return `no interface ${echo(zone)} for the zone`;
  }
  return endpointOf(formatIp(ip.family, ip.bytes), port, ip.family, undefined, ifindex);
}

/** Like endpointOrReason, with the whole message: 'invalid endpoint "v": reason'. */
export function parseEndpoint(v: string, zoneIndex: ZoneResolver = numericZonesOnly): Endpoint | string {
  const r = endpointOrReason(v, zoneIndex);
  return typeof r === 'string' ? `invalid endpoint ${echo(v)}: ${r}` : r;
}

/** fe80::/10, from formatIp's lower-case text. */
const isLinkLocal6 = (address: string): boolean => /^fe[89ab][0-9a-f]:/.test(address);

/**
 * "1.2.3.4:51820" or "[2001:db8::1]:51820"; a link-local IPv6 endpoint with its zone as an
 * interface index, "[fe80::1%2]:51820", which `wg` shows by name.
 */
export function formatEndpoint(e: Endpoint): string {
  if (e.family !== 6) return `${e.address}:${e.port}`;
  const zone = e.ifindex !== undefined && e.ifindex > 0 && isLinkLocal6(e.address) ? `%${e.ifindex}` : '';
  return `[${e.address}${zone}]:${e.port}`;
}
