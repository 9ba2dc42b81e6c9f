/** X25519 (RFC 7748) through @noble/curves. */
import { x25519 } from '@noble/curves/ed25519.js';
import { systemRng, type Rng } from './random.js';

export const KEY_LEN = 32;

/** Clamp a private key in place the way `wg genkey` does (RFC 7748 §5) and return it. */
export function clampPrivateKey(k: Uint8Array): Uint8Array {
  k[0]! &= 248;
  k[31]! &= 127;
  k[31]! |= 64;
  return k;
}

/** A fresh clamped private key, as `wg genkey` makes. */
export function generatePrivateKey(rng: Rng = systemRng): Uint8Array {
  return clampPrivateKey(rng(new Uint8Array(KEY_LEN)));
}

/** The public key for a private key (X25519 with the base point 9). */
export function publicKey(privateKey: Uint8Array): Uint8Array {
  return x25519.getPublicKey(privateKey);
}

/**
 * DH(private, public). Returns null when the result is the all-zero point
 * (a low-order public key), which WireGuard treats as a failed handshake.
 */
export function dh(privateKey: Uint8Array, peerPublicKey: Uint8Array): Uint8Array | null {
  try {
    return x25519.getSharedSecret(privateKey, peerPublicKey);
  } catch {
    return null;
  }
}
