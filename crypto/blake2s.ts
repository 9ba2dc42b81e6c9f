/**
 * BLAKE2s constructions used by WireGuard (whitepaper §5.4):
 * HASH, MAC (keyed BLAKE2s, 16-byte output), HMAC-BLAKE2s and the KDF1/KDF2/KDF3 chain.
 *
 * A handshake message computes a dozen of these, so they sit on the latency path of the first
 * packet. By default they run in the OpenSSL inside Node.js through our addon, one call each
 * (crypto/openssl.ts: HASH 1 us, KDF2 3 us, MAC 1.5 us, measured by bench/engine.ts), rather
 * than through node:crypto objects (HASH 9 us, KDF2 26 us) or @noble/hashes (MAC 28 us).
 * Without the addon (or with WG_TS_BLAKE2S=node) HASH and HMAC use node:crypto `blake2s256`
 * and MAC uses @noble/hashes. The known-answer tests check every path.
 */
import { createHash, createHmac } from 'node:crypto';
import { blake2s } from '@noble/hashes/blake2.js';
import { hmac as nobleHmac } from '@noble/hashes/hmac.js';
import { opensslBlake2s } from './openssl.js';

const native = process.env.WG_TS_BLAKE2S === 'node' ? null : opensslBlake2s();

/** Which implementation serves HASH, HMAC, KDF and MAC: 'openssl' (the addon) or 'node'. */
export const blake2sProvider: 'openssl' | 'node' = native ? 'openssl' : 'node';

function asBytes(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/** HASH(a || b || ...) = BLAKE2s-256 of the concatenation of the inputs. */
export function hash(...parts: Uint8Array[]): Uint8Array {
  if (native !== null && parts.length <= 2) return native.hash(parts[0] ?? EMPTY, parts[1]);
  return nodeHash(...parts);
}

/** HASH through node:crypto (the fallback, and a cross-check for the tests). */
export function nodeHash(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('blake2s256');
  for (const p of parts) h.update(p);
  return asBytes(h.digest());
}

/** The same HASH through @noble/hashes (a cross-check for the known-answer tests). */
export function nobleHash(...parts: Uint8Array[]): Uint8Array {
  const h = blake2s.create();
  for (const p of parts) h.update(p);
  return h.digest();
}

/** MAC(key, input) = keyed BLAKE2s with a 16-byte output (key is 32 bytes in WireGuard). */
export function mac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  if (native !== null && parts.length === 1 && key.length > 0 && key.length <= 32) return native.mac(key, parts[0]!);
  return nobleMac(key, ...parts);
}

/** MAC through @noble/hashes (the fallback, and a cross-check for the tests). */
export function nobleMac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = blake2s.create({ key, dkLen: 16 });
  for (const p of parts) h.update(p);
  return h.digest();
}

/** HMAC(key, input) using BLAKE2s-256 (64-byte block). */
export function hmac(key: Uint8Array, input: Uint8Array): Uint8Array {
  return native !== null ? native.hmac(key, input) : nodeHmac(key, input);
}

/** HMAC through node:crypto (the fallback, and a cross-check for the tests). */
export function nodeHmac(key: Uint8Array, input: Uint8Array): Uint8Array {
  return asBytes(createHmac('blake2s256', key).update(input).digest());
}

/** The same HMAC through @noble/hashes (a cross-check for the known-answer tests). */
export function nobleHmacBlake2s(key: Uint8Array, input: Uint8Array): Uint8Array {
  return nobleHmac(blake2s, key, input);
}

const ONE = Uint8Array.of(1);
const EMPTY = new Uint8Array(0);

/**
 * KDF_n(key, input): τ0 = HMAC(key, input); τ1 = HMAC(τ0, 0x1); τi = HMAC(τ0, τ(i-1) || i).
 * Returns n 32-byte outputs.
 */
export function kdf(n: 1 | 2 | 3, key: Uint8Array, input: Uint8Array): Uint8Array[] {
  return native !== null ? native.kdf(n, key, input) : nodeKdf(n, key, input);
}

/** KDF through node:crypto's HMAC (the fallback, and a cross-check for the tests). */
export function nodeKdf(n: 1 | 2 | 3, key: Uint8Array, input: Uint8Array): Uint8Array[] {
  const hmac = nodeHmac;
  const prk = hmac(key, input);
  const out: Uint8Array[] = [];
  let prev = hmac(prk, ONE);
  out.push(prev);
  for (let i = 2; i <= n; i++) {
    const buf = new Uint8Array(33);
    buf.set(prev, 0);
    buf[32] = i;
    prev = hmac(prk, buf);
    out.push(prev);
  }
  prk.fill(0);
  return out;
}

export function kdf1(key: Uint8Array, input: Uint8Array): Uint8Array {
  return kdf(1, key, input)[0]!;
}
export function kdf2(key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array] {
  const r = kdf(2, key, input);
  return [r[0]!, r[1]!];
}
export function kdf3(key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array, Uint8Array] {
  const r = kdf(3, key, input);
  return [r[0]!, r[1]!, r[2]!];
}
