/**
 * Strict argument parsing for the container contract. Every function throws CwgError with a
 * message naming the argument and the accepted form; nothing is coerced or trimmed.
 */
import { decodeBase64Key } from '../../crypto/keys.js';
import { endpointOrReason } from '../../noise/iptext.js';
import { quote } from '../../noise/quote.js';
import type { Endpoint } from '../../noise/types.js';
import { CwgError } from './errors.js';

export const MAX_NET = 8388607; // 2^23 - 1: the /31s of 10.0.0.0/8
/** PID_MAX_LIMIT on 64-bit Linux (2^22). */
export const MAX_PID = 4194304;

/** What an argument's value was, quoted and shortened for an error line. */
export function show(s: string): string {
  return quote(s, "'");
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

/**
 * `a.b.c.d:port` (dotted quad, each part 0..255 without leading zeros) or `[IPv6]:port`;
 * port 1..65535 without leading zeros. Host names, zone indexes and unspecified addresses are
 * refused: the peer is a public address across sites. The text rules are noise/iptext.ts's.
 */
export function parseEndpoint(s: string): Endpoint {
  const bad = (why: string) => new CwgError(`invalid peer_endpoint ${show(s)}: ${why}`);
  const form = 'expected a.b.c.d:port or [IPv6]:port';
  if (s.includes('%')) throw bad('IPv6 zone indexes are not supported');
  const e = endpointOrReason(s);
  if (typeof e === 'string') {
    throw bad(/brackets/.test(e) ? `${e}, [IPv6]:port` : `${e} (${form})`);
  }
  const portText = s.slice(s.lastIndexOf(':') + 1);
  if (e.port === 0 || portText.startsWith('0')) throw bad('the port must be a number in 1..65535');
  if (e.address === '0.0.0.0' || e.address === '::') throw bad('the unspecified address cannot be an endpoint');
  return e;
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
