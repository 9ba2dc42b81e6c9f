/**
 * X25519 (RFC 7748). Two providers pass the same known-answer tests: `noble` (@noble/curves,
 * pure JS) and `openssl` (Node's own OpenSSL through our addon, ~40x faster, the default when
 * built). WG_TS_X25519=noble forces the pure-JS one.
 */
import { x25519 } from '@noble/curves/ed25519.js';
import { systemRng, type Rng } from './random.js';
import { opensslX25519, type X25519Provider } from './openssl.js';

export type { X25519Provider } from './openssl.js';

export const nobleX25519: X25519Provider = {
  name: 'noble',
  publicKey: (privateKey) => x25519.getPublicKey(privateKey),
  dh(privateKey, peerPublicKey) {
    try {
      return x25519.getSharedSecret(privateKey, peerPublicKey);
    } catch {
      return null; // noble throws on an all-zero result
    }
  },
};

/** Every X25519 provider available here, by name. */
export const x25519Providers: Record<string, X25519Provider> = { noble: nobleX25519 };
const native = opensslX25519();
if (native) x25519Providers.openssl = native;

export const defaultX25519: X25519Provider = x25519Providers[process.env.WG_TS_X25519 ?? ''] ?? native ?? nobleX25519;

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
  return defaultX25519.publicKey(privateKey);
}

/**
 * DH(private, public). Returns null when the result is the all-zero point
 * (a low-order public key), which WireGuard treats as a failed handshake.
 */
export function dh(privateKey: Uint8Array, peerPublicKey: Uint8Array): Uint8Array | null {
  return defaultX25519.dh(privateKey, peerPublicKey);
}
