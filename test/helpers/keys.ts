/** Keys for tests: deterministic key pairs, and fixed 32-byte keys that are easy to recognize. */
import { encodeHexKey } from '../../crypto/keys.js';
import { deterministicRng } from '../../crypto/random.js';
import { generatePrivateKey, publicKey } from '../../crypto/x25519.js';

export interface KeyPair {
  priv: Uint8Array;
  pub: Uint8Array;
}

/** The key pair of a seed: the same seed gives the same pair, in every run. */
export function keypair(seed: number): KeyPair {
  const priv = generatePrivateKey(deterministicRng(seed));
  return { priv, pub: publicKey(priv) };
}

/** 32 bytes of `b`: a key that reads back at a glance in a failure (not a clamped private key). */
export const filledKey = (b: number): Uint8Array => new Uint8Array(32).fill(b);

/** filledKey(b) as the UAPI's hex. */
export const filledHexKey = (b: number): string => encodeHexKey(filledKey(b));

/** 32 bytes of `b`, clamped as an X25519 private key. */
export function clampedKey(b: number): Uint8Array {
  const k = filledKey(b);
  k[0] = b & 248;
  k[31] = (b & 127) | 64;
  return k;
}
