/**
 * X25519 (RFC 7748) behind `X25519Provider`. Here: `nodeX25519` (OpenSSL through node:crypto
 * KeyObjects); x25519-noble.ts has `nobleX25519` (@noble/curves, pure JS: a module of its own,
 * since loading @noble/curves costs ~40 ms, which a cwg command would pay for nothing);
 * tun/openssl.ts adds the addon's. Key generation and clamping as `wg genkey` does them.
 */
import { createPrivateKey, createPublicKey, diffieHellman, type KeyObject, timingSafeEqual } from 'node:crypto';
import { type Rng, systemRng } from './random.js';

export const KEY_LEN = 32;

export interface X25519Provider {
  readonly name: string;
  /** The public key of a private key (X25519 with the base point 9). */
  publicKey(privateKey: Uint8Array): Uint8Array;
  /** DH(private, public); null when the result is all zeros (a low-order public key). */
  dh(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array | null;
}

// DER framings of a raw X25519 key (RFC 8410): node:crypto imports keys only in a container.
const PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI = Buffer.from('302a300506032b656e032100', 'hex');

/**
 * Keeps the imported KeyObject per private-key array (a handshake uses each of its keys two or
 * three times, and the import is most of the cost). The cache holds a copy of the bytes and
 * checks it, so an array whose contents change (zeroed, reused) never reuses a stale key.
 */
export function keyCache<H>(importKey: (privateKey: Uint8Array) => H): (privateKey: Uint8Array) => H {
  const imported = new WeakMap<Uint8Array, { bytes: Uint8Array; handle: H }>();
  return (privateKey) => {
    const hit = imported.get(privateKey);
    if (hit !== undefined && hit.bytes.length === privateKey.length && timingSafeEqual(hit.bytes, privateKey)) return hit.handle;
    const handle = importKey(privateKey);
    imported.set(privateKey, { bytes: privateKey.slice(), handle });
    return handle;
  };
}

const nodePrivate = keyCache((k): KeyObject => createPrivateKey({ key: Buffer.concat([PKCS8, k]), format: 'der', type: 'pkcs8' }));

export const nodeX25519: X25519Provider = {
  name: 'node',
  publicKey(privateKey) {
    const der = createPublicKey(nodePrivate(privateKey)).export({ format: 'der', type: 'spki' });
    return new Uint8Array(der.subarray(SPKI.length));
  },
  dh(privateKey, peerPublicKey) {
    if (peerPublicKey.length !== KEY_LEN) return null;
    try {
      const pub = createPublicKey({ key: Buffer.concat([SPKI, peerPublicKey]), format: 'der', type: 'spki' });
      const s = diffieHellman({ privateKey: nodePrivate(privateKey), publicKey: pub });
      return new Uint8Array(s.buffer, s.byteOffset, s.length);
    } catch {
      return null; // OpenSSL refuses an all-zero result
    }
  },
};

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

/** The public key for a private key. */
export function publicKey(privateKey: Uint8Array, provider: X25519Provider = nodeX25519): Uint8Array {
  return provider.publicKey(privateKey);
}
