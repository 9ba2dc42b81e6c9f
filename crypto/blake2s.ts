/**
 * The BLAKE2s constructions of WireGuard (whitepaper §5.4) behind `Blake2sProvider`: HASH,
 * HMAC-BLAKE2s, the KDF1/2/3 chain and MAC (keyed BLAKE2s, 16-byte output). A handshake message
 * computes a dozen of these, so a provider offers each as one call (the addon's provider in
 * tun/openssl.ts makes each one call into OpenSSL). Here: `nodeBlake2s` (node:crypto's
 * blake2s256 for HASH and HMAC, @noble/hashes for MAC, which node:crypto lacks) and
 * `nobleBlake2s` (pure JS). The known-answer tests check every provider.
 */
import { createHash, createHmac } from 'node:crypto';
import { blake2s } from '@noble/hashes/blake2.js';
import { hmac as nobleHmac } from '@noble/hashes/hmac.js';

export const BLAKE2S_LEN = 32;
export const MAC_LEN = 16;

export interface Blake2sProvider {
  readonly name: string;
  /** HASH(a || b) = BLAKE2s-256 of the concatenation. */
  hash(a: Uint8Array, b?: Uint8Array): Uint8Array;
  /** HMAC-BLAKE2s(key, input) (64-byte block). */
  hmac(key: Uint8Array, input: Uint8Array): Uint8Array;
  /**
   * KDF_n(key, input): τ0 = HMAC(key, input); τ1 = HMAC(τ0, 0x1); τi = HMAC(τ0, τ(i-1) || i).
   * Returns n 32-byte outputs.
   */
  kdf(n: 1 | 2 | 3, key: Uint8Array, input: Uint8Array): Uint8Array[];
  /** MAC(key, input): keyed BLAKE2s with a 16-byte output (key of 1..32 bytes). */
  mac(key: Uint8Array, input: Uint8Array): Uint8Array;
}

const ONE = Uint8Array.of(1);

/** The HKDF chain of the whitepaper over any HMAC. */
export function kdfOver(hmac: (key: Uint8Array, input: Uint8Array) => Uint8Array, n: 1 | 2 | 3, key: Uint8Array, input: Uint8Array): Uint8Array[] {
  const prk = hmac(key, input);
  const out: Uint8Array[] = [];
  let prev = hmac(prk, ONE);
  out.push(prev);
  for (let i = 2; i <= n; i++) {
    const buf = new Uint8Array(BLAKE2S_LEN + 1);
    buf.set(prev, 0);
    buf[BLAKE2S_LEN] = i;
    prev = hmac(prk, buf);
    out.push(prev);
  }
  prk.fill(0);
  return out;
}

function asBytes(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

const nobleMac = (key: Uint8Array, input: Uint8Array): Uint8Array => blake2s(input, { key, dkLen: MAC_LEN });

const nodeHmac = (key: Uint8Array, input: Uint8Array): Uint8Array => asBytes(createHmac('blake2s256', key).update(input).digest());

/** HASH and HMAC through node:crypto's OpenSSL objects; MAC through @noble/hashes. */
export const nodeBlake2s: Blake2sProvider = {
  name: 'node',
  hash(a, b) {
    const h = createHash('blake2s256').update(a);
    if (b !== undefined) h.update(b);
    return asBytes(h.digest());
  },
  hmac: nodeHmac,
  kdf: (n, key, input) => kdfOver(nodeHmac, n, key, input),
  mac: nobleMac,
};

const pureHmac = (key: Uint8Array, input: Uint8Array): Uint8Array => nobleHmac(blake2s, key, input);

/** Everything in pure JS (@noble/hashes). */
export const nobleBlake2s: Blake2sProvider = {
  name: 'noble',
  hash(a, b) {
    const h = blake2s.create().update(a);
    if (b !== undefined) h.update(b);
    return h.digest();
  },
  hmac: pureHmac,
  kdf: (n, key, input) => kdfOver(pureHmac, n, key, input),
  mac: nobleMac,
};
