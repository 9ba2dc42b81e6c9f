/**
 * Key codecs: canonical base64 (as `wg` prints keys) and hex (as the UAPI carries them),
 * plus constant-time comparison. Decoders accept exactly 32 bytes and nothing else.
 */
import { timingSafeEqual } from 'node:crypto';
import { KEY_LEN } from './x25519.js';

export class KeyFormatError extends Error {
  override name = 'KeyFormatError';
}

// 42 free characters, then one whose low two bits are zero (32 bytes = 256 bits = 42*6 + 4), then '='.
const CANONICAL_B64 = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** Decode a key in canonical 44-character base64; throws KeyFormatError otherwise. */
export function decodeBase64Key(s: string, what = 'key'): Uint8Array {
  if (typeof s !== 'string' || !CANONICAL_B64.test(s)) {
    throw new KeyFormatError(`invalid ${what}: expected 44 characters of base64 encoding exactly 32 bytes`);
  }
  const b = Buffer.from(s, 'base64');
  if (b.length !== KEY_LEN) throw new KeyFormatError(`invalid ${what}: does not decode to 32 bytes`);
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

export function encodeBase64Key(k: Uint8Array): string {
  if (k.length !== KEY_LEN) throw new KeyFormatError(`key must be 32 bytes, got ${k.length}`);
  return Buffer.from(k.buffer, k.byteOffset, k.length).toString('base64');
}

const HEX64 = /^[0-9a-fA-F]{64}$/;

/** Decode a 64-hex-digit key (the UAPI form); throws KeyFormatError otherwise. */
export function decodeHexKey(s: string, what = 'key'): Uint8Array {
  if (!HEX64.test(s)) throw new KeyFormatError(`invalid ${what}: expected 64 hexadecimal digits`);
  const b = Buffer.from(s, 'hex');
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

export function encodeHexKey(k: Uint8Array): string {
  return Buffer.from(k.buffer, k.byteOffset, k.length).toString('hex');
}

/** Constant-time equality of two byte strings (lengths are not secret). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export function isZero(a: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < a.length; i++) acc |= a[i]!;
  return acc === 0;
}
