/**
 * AEADs. ChaCha20-Poly1305 (RFC 8439) sits behind `AeadProvider`, one of the three provider
 * shapes of crypto/ (with X25519Provider and Blake2sProvider, bundled as a CryptoSuite in
 * suite.ts). Two implementations live here: `nodeAead` (OpenSSL through node:crypto) and
 * `nobleAead` (pure JS); tun/openssl.ts adds the addon's. All pass the same known-answer tests
 * (test/unit/crypto-kat.test.ts). XChaCha20-Poly1305 (cookie replies only, rare) comes from
 * @noble/ciphers: OpenSSL has no XChaCha.
 */
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto';
import { chacha20poly1305, xchacha20poly1305 } from '@noble/ciphers/chacha.js';

export const TAG_LEN = 16;
export const NONCE_LEN = 12;

export interface AeadProvider {
  readonly name: string;
  /**
   * Encrypt `plaintext` followed by `padding` zero bytes and write ciphertext || tag into `out`,
   * whose length must be exactly plaintext.length + padding + 16.
   */
  seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array | undefined, out: Uint8Array, padding?: number): void;
  /**
   * Authenticate and decrypt `sealed` (ciphertext || tag) into `out` (length sealed.length - 16).
   * Returns false, leaving `out` unspecified, when authentication fails.
   */
  open(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array | undefined, out: Uint8Array): boolean;
}

const ZEROS = new Uint8Array(TAG_LEN);

/** Pure-JS ChaCha20-Poly1305 from @noble/ciphers. */
export const nobleAead: AeadProvider = {
  name: 'noble',
  seal(key, nonce, plaintext, aad, out, padding = 0) {
    let input = plaintext;
    if (padding) {
      input = new Uint8Array(plaintext.length + padding);
      input.set(plaintext);
    }
    chacha20poly1305(key, nonce, aad).encrypt(input, out);
  },
  open(key, nonce, sealed, aad, out) {
    if (sealed.length < TAG_LEN) return false;
    try {
      chacha20poly1305(key, nonce, aad).decrypt(sealed, out);
      return true;
    } catch {
      return false;
    }
  },
};

// Session keys live for minutes and are sealed with thousands of times: cache their KeyObject.
const keyObjects = new WeakMap<Uint8Array, KeyObject>();
function keyObject(key: Uint8Array): KeyObject {
  let k = keyObjects.get(key);
  if (k === undefined) {
    k = createSecretKey(key);
    keyObjects.set(key, k);
  }
  return k;
}

/** ChaCha20-Poly1305 from OpenSSL through node:crypto (a Cipher object per call). */
export const nodeAead: AeadProvider = {
  name: 'node',
  seal(key, nonce, plaintext, aad, out, padding = 0) {
    const c = createCipheriv('chacha20-poly1305', keyObject(key), nonce, { authTagLength: TAG_LEN });
    if (aad) c.setAAD(aad, { plaintextLength: plaintext.length + padding });
    let off = 0;
    if (plaintext.length) {
      const a = c.update(plaintext);
      out.set(a, 0);
      off = a.length;
    }
    if (padding) {
      const b = c.update(ZEROS.subarray(0, padding));
      out.set(b, off);
      off += b.length;
    }
    c.final();
    out.set(c.getAuthTag(), off);
  },
  open(key, nonce, sealed, aad, out) {
    const n = sealed.length - TAG_LEN;
    if (n < 0) return false;
    const d = createDecipheriv('chacha20-poly1305', keyObject(key), nonce, { authTagLength: TAG_LEN });
    d.setAuthTag(sealed.subarray(n));
    if (aad) d.setAAD(aad, { plaintextLength: n });
    if (n) out.set(d.update(sealed.subarray(0, n)), 0);
    try {
      d.final();
      return true;
    } catch {
      return false;
    }
  },
};

/** Nonce for counter-based ChaCha20-Poly1305 in WireGuard: 4 zero bytes then the 64-bit LE counter. */
export function counterNonce(counter: number, out: Uint8Array = new Uint8Array(NONCE_LEN)): Uint8Array {
  out[0] = out[1] = out[2] = out[3] = 0;
  const lo = counter >>> 0;
  const hi = Math.floor(counter / 0x100000000) >>> 0;
  out[4] = lo & 0xff;
  out[5] = (lo >>> 8) & 0xff;
  out[6] = (lo >>> 16) & 0xff;
  out[7] = lo >>> 24;
  out[8] = hi & 0xff;
  out[9] = (hi >>> 8) & 0xff;
  out[10] = (hi >>> 16) & 0xff;
  out[11] = hi >>> 24;
  return out;
}

/** AEAD(key, counter, plaintext, aad) as the handshake uses it; returns a fresh buffer. */
export function aeadSeal(provider: AeadProvider, key: Uint8Array, counter: number, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  const out = new Uint8Array(plaintext.length + TAG_LEN);
  provider.seal(key, counterNonce(counter), plaintext, aad, out);
  return out;
}

/** Inverse of aeadSeal; null when authentication fails. */
export function aeadOpen(provider: AeadProvider, key: Uint8Array, counter: number, sealed: Uint8Array, aad: Uint8Array): Uint8Array | null {
  if (sealed.length < TAG_LEN) return null;
  const out = new Uint8Array(sealed.length - TAG_LEN);
  return provider.open(key, counterNonce(counter), sealed, aad, out) ? out : null;
}

/** XAEAD(key, 24-byte nonce, plaintext, aad): XChaCha20-Poly1305, used for cookie replies. */
export function xaeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  return xchacha20poly1305(key, nonce, aad).encrypt(plaintext);
}

export function xaeadOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | null {
  if (sealed.length < TAG_LEN) return null;
  try {
    return xchacha20poly1305(key, nonce, aad).decrypt(sealed);
  } catch {
    return null;
  }
}
