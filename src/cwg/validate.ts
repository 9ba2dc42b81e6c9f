/**
 * Strict argument parsing for the container contract. Every function throws CwgError with a
 * message naming the argument and the accepted form; nothing is coerced or trimmed.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { decodeBase64Key } from '../../crypto/keys.js';
import { CwgError } from './errors.js';

export const MAX_NET = 8388607; // 2^23 - 1: the /31s of 10.0.0.0/8
/** PID_MAX_LIMIT on 64-bit Linux (2^22). */
export const MAX_PID = 4194304;

/** What an argument's value was, quoted and shortened for an error line. */
export function show(s: string): string {
  const clean = s.replace(/[\x00-\x1f\x7f]/g, '?');
  return `'${clean.length > 60 ? `${clean.slice(0, 57)}...` : clean}'`;
}

/**
 * A decimal integer in [min, max]: ASCII digits only, no sign, no white space, and no
 * leading zero (so that a number has exactly one spelling, as it does in the device name).
 */
export function parseDecimal(s: string, what: string, min: number, max: number): number {
  if (!/^[0-9]+$/.test(s)) {
    throw new CwgError(`invalid ${what} ${show(s)}: expected a decimal number in ${min}..${max} (digits only)`);
  }
  if (s.length > 1 && s[0] === '0') {
    throw new CwgError(`invalid ${what} ${show(s)}: leading zeros are not allowed`);
  }
  if (s.length > 10 || Number(s) < min || Number(s) > max) {
    throw new CwgError(`invalid ${what} ${show(s)}: out of range ${min}..${max}`);
  }
  return Number(s);
}

export function parsePid(s: string): number {
  return parseDecimal(s, 'pid', 1, MAX_PID);
}

export function parseNet(s: string): number {
  return parseDecimal(s, 'net', 0, MAX_NET);
}

export function parseHost(s: string): 0 | 1 {
  return parseDecimal(s, 'host', 0, 1) as 0 | 1;
}

export function parsePort(s: string, what = 'port'): number {
  return parseDecimal(s, what, 1, 65535);
}

/** A peer endpoint as the UAPI and `wg` print it. */
export interface PeerEndpoint {
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
}

/** UAPI / `wg` form: a.b.c.d:port or [v6]:port. */
export function formatEndpoint(e: PeerEndpoint): string {
  return e.family === 6 ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

const DOTTED_QUAD = /^(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})$/;

/**
 * `a.b.c.d:port` (dotted quad, each part 0..255 without leading zeros) or `[IPv6]:port`;
 * port 1..65535. Host names, zone indexes and unspecified addresses are refused.
 */
export function parseEndpoint(s: string): PeerEndpoint {
  const what = 'peer_endpoint';
  const form = 'expected a.b.c.d:port or [IPv6]:port';
  let host: string;
  let portText: string;
  let family: 4 | 6;
  if (s.startsWith('[')) {
    const m = /^\[([^\]]*)\]:([^:]*)$/.exec(s);
    if (!m) throw new CwgError(`invalid ${what} ${show(s)}: ${form}`);
    host = m[1]!;
    portText = m[2]!;
    if (host.includes('%')) throw new CwgError(`invalid ${what} ${show(s)}: IPv6 zone indexes are not supported`);
    if (!isIPv6(host)) throw new CwgError(`invalid ${what} ${show(s)}: ${show(host)} is not an IPv6 address`);
    family = 6;
  } else {
    const i = s.lastIndexOf(':');
    if (i < 0) throw new CwgError(`invalid ${what} ${show(s)}: missing ':port' (${form})`);
    host = s.slice(0, i);
    portText = s.slice(i + 1);
    if (host.includes(':')) throw new CwgError(`invalid ${what} ${show(s)}: IPv6 addresses must be in brackets, [IPv6]:port`);
    const m = DOTTED_QUAD.exec(host);
    if (!m || !isIPv4(host) || m.slice(1).some((p) => Number(p) > 255)) {
      throw new CwgError(`invalid ${what} ${show(s)}: ${show(host)} is not an IPv4 address (${form})`);
    }
    family = 4;
  }
  let port: number;
  try {
    port = parsePort(portText, `${what} port`);
  } catch {
    throw new CwgError(`invalid ${what} ${show(s)}: the port must be a number in 1..65535`);
  }
  const address = host;
  if (address === '0.0.0.0' || (family === 6 && canonicalIPv6(address) === '::')) {
    throw new CwgError(`invalid ${what} ${show(s)}: the unspecified address cannot be an endpoint`);
  }
  return { address, port, family };
}

/** The compressed lower-case spelling of an IPv6 address (WHATWG URL rules). */
export function canonicalIPv6(a: string): string {
  return new URL(`http://[${a}]/`).hostname.slice(1, -1);
}

/** A public key in canonical 44-character base64 of 32 bytes; the all-zero key is refused. */
export function parsePeerKey(s: string): Uint8Array {
  let k: Uint8Array;
  try {
    k = decodeBase64Key(s);
  } catch {
    throw new CwgError(`invalid peer_key ${show(s)}: expected a WireGuard public key, 44 characters of base64 encoding 32 bytes`);
  }
  if (k.every((b) => b === 0)) throw new CwgError('invalid peer_key: the all-zero key is not a public key');
  return k;
}
