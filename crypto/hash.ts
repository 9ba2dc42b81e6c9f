/**
 * BLAKE2s constructions used by WireGuard (whitepaper §5.4):
 * HASH, MAC (keyed BLAKE2s, 16-byte output), HMAC-BLAKE2s and the KDF1/KDF2/KDF3 chain.
 *
 * HASH and HMAC use the BLAKE2s-256 of the OpenSSL inside Node.js (node:crypto `blake2s256`),
 * about 5x faster than @noble/hashes here and identical (the known-answer tests check both);
 * a handshake computes a few dozen of them. node:crypto has no keyed BLAKE2s, so MAC (only
 * mac1/mac2, two per handshake message) uses @noble/hashes.
 */
import { createHash, createHmac } from 'node:crypto';
import { blake2s } from '@noble/hashes/blake2.js';
import { hmac as nobleHmac } from '@noble/hashes/hmac.js';

function asBytes(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/** HASH(a || b || ...) = BLAKE2s-256 of the concatenation of the inputs. */
export function hash(...parts: Uint8Array[]): Uint8Array {
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
  const h = blake2s.create({ key, dkLen: 16 });
  for (const p of parts) h.update(p);
  return h.digest();
}

/** HMAC(key, input) using BLAKE2s-256 (64-byte block). */
export function hmac(key: Uint8Array, input: Uint8Array): Uint8Array {
  return asBytes(createHmac('blake2s256', key).update(input).digest());
}

/** The same HMAC through @noble/hashes (a cross-check for the known-answer tests). */
export function nobleHmacBlake2s(key: Uint8Array, input: Uint8Array): Uint8Array {
  return nobleHmac(blake2s, key, input);
}

const ONE = Uint8Array.of(1);

/**
 * KDF_n(key, input): τ0 = HMAC(key, input); τ1 = HMAC(τ0, 0x1); τi = HMAC(τ0, τ(i-1) || i).
 * Returns n 32-byte outputs.
 */
export function kdf(n: 1 | 2 | 3, key: Uint8Array, input: Uint8Array): Uint8Array[] {
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
