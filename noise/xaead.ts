/**
 * XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha) for cookie replies over a suite's ChaCha20-Poly1305:
 * HChaCha20 of the key and the first 16 nonce bytes gives a subkey, and the AEAD runs under it
 * with the nonce 0^4 || the last 8 nonce bytes. A responder under a flood seals a cookie reply
 * per source and second; through the suite's AEAD (OpenSSL in the daemon) that costs a fraction
 * of crypto/aead.ts's pure-JavaScript xaeadSeal, and gives the same bytes (checked by the tests).
 */
import type { AeadProvider } from '../crypto/aead.js';

const SIGMA = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574] as const;

function readLE(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24);
}

function writeLE(b: Uint8Array, o: number, w: number): void {
  b[o] = w & 0xff;
  b[o + 1] = (w >>> 8) & 0xff;
  b[o + 2] = (w >>> 16) & 0xff;
  b[o + 3] = (w >>> 24) & 0xff;
}

const rotl = (v: number, n: number): number => (v << n) | (v >>> (32 - n));

/** HChaCha20(key, nonce16) into `out` (32 bytes): ChaCha20's 20 rounds, no final addition. */
export function hchacha20(key: Uint8Array, nonce16: Uint8Array, out: Uint8Array): Uint8Array {
  let x0 = SIGMA[0] | 0;
  let x1 = SIGMA[1] | 0;
  let x2 = SIGMA[2] | 0;
  let x3 = SIGMA[3] | 0;
  let x4 = readLE(key, 0);
  let x5 = readLE(key, 4);
  let x6 = readLE(key, 8);
  let x7 = readLE(key, 12);
  let x8 = readLE(key, 16);
  let x9 = readLE(key, 20);
  let x10 = readLE(key, 24);
  let x11 = readLE(key, 28);
  let x12 = readLE(nonce16, 0);
  let x13 = readLE(nonce16, 4);
  let x14 = readLE(nonce16, 8);
  let x15 = readLE(nonce16, 12);
  for (let r = 0; r < 10; r++) {
    // Columns.
    x0 = (x0 + x4) | 0;
    x12 = rotl(x12 ^ x0, 16);
    x8 = (x8 + x12) | 0;
    x4 = rotl(x4 ^ x8, 12);
    x0 = (x0 + x4) | 0;
    x12 = rotl(x12 ^ x0, 8);
    x8 = (x8 + x12) | 0;
    x4 = rotl(x4 ^ x8, 7);
    x1 = (x1 + x5) | 0;
    x13 = rotl(x13 ^ x1, 16);
    x9 = (x9 + x13) | 0;
    x5 = rotl(x5 ^ x9, 12);
    x1 = (x1 + x5) | 0;
    x13 = rotl(x13 ^ x1, 8);
    x9 = (x9 + x13) | 0;
    x5 = rotl(x5 ^ x9, 7);
    x2 = (x2 + x6) | 0;
    x14 = rotl(x14 ^ x2, 16);
    x10 = (x10 + x14) | 0;
    x6 = rotl(x6 ^ x10, 12);
    x2 = (x2 + x6) | 0;
    x14 = rotl(x14 ^ x2, 8);
    x10 = (x10 + x14) | 0;
    x6 = rotl(x6 ^ x10, 7);
    x3 = (x3 + x7) | 0;
    x15 = rotl(x15 ^ x3, 16);
    x11 = (x11 + x15) | 0;
    x7 = rotl(x7 ^ x11, 12);
    x3 = (x3 + x7) | 0;
    x15 = rotl(x15 ^ x3, 8);
    x11 = (x11 + x15) | 0;
    x7 = rotl(x7 ^ x11, 7);
    // Diagonals.
    x0 = (x0 + x5) | 0;
    x15 = rotl(x15 ^ x0, 16);
    x10 = (x10 + x15) | 0;
    x5 = rotl(x5 ^ x10, 12);
    x0 = (x0 + x5) | 0;
    x15 = rotl(x15 ^ x0, 8);
    x10 = (x10 + x15) | 0;
    x5 = rotl(x5 ^ x10, 7);
    x1 = (x1 + x6) | 0;
    x12 = rotl(x12 ^ x1, 16);
    x11 = (x11 + x12) | 0;
    x6 = rotl(x6 ^ x11, 12);
    x1 = (x1 + x6) | 0;
    x12 = rotl(x12 ^ x1, 8);
    x11 = (x11 + x12) | 0;
    x6 = rotl(x6 ^ x11, 7);
    x2 = (x2 + x7) | 0;
    x13 = rotl(x13 ^ x2, 16);
    x8 = (x8 + x13) | 0;
    x7 = rotl(x7 ^ x8, 12);
    x2 = (x2 + x7) | 0;
    x13 = rotl(x13 ^ x2, 8);
    x8 = (x8 + x13) | 0;
    x7 = rotl(x7 ^ x8, 7);
    x3 = (x3 + x4) | 0;
    x14 = rotl(x14 ^ x3, 16);
    x9 = (x9 + x14) | 0;
    x4 = rotl(x4 ^ x9, 12);
    x3 = (x3 + x4) | 0;
    x14 = rotl(x14 ^ x3, 8);
    x9 = (x9 + x14) | 0;
    x4 = rotl(x4 ^ x9, 7);
  }
  writeLE(out, 0, x0);
  writeLE(out, 4, x1);
  writeLE(out, 8, x2);
  writeLE(out, 12, x3);
  writeLE(out, 16, x12);
  writeLE(out, 20, x13);
  writeLE(out, 24, x14);
  writeLE(out, 28, x15);
  return out;
}

/** XAEAD(key, 24-byte nonce, plaintext, aad) = ciphertext || tag, sealed by `aead`. */
export function xaeadSealWith(aead: AeadProvider, key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  const subkey = hchacha20(key, nonce.subarray(0, 16), new Uint8Array(32));
  const n = new Uint8Array(12);
  n.set(nonce.subarray(16, 24), 4);
  const out = new Uint8Array(plaintext.length + 16);
  aead.seal(subkey, n, plaintext, aad, out);
  subkey.fill(0);
  return out;
}
