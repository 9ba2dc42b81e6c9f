/**
 * The `openssl` providers: ChaCha20-Poly1305 and X25519 from the OpenSSL inside Node.js, called
 * through our small addon (csrc/aead.c). The AEAD reuses one EVP context, which avoids
 * node:crypto's per-call Cipher objects (about 6x faster on 1420-byte packets, see bench/);
 * X25519 is about 40x faster than pure JS. Loaded lazily; both return null when the addon is
 * not built, and callers fall back to the noble implementations.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { timingSafeEqual } from 'node:crypto';
import type { AeadProvider } from './aead.js';

/** An imported X25519 private key inside OpenSSL (freed on garbage collection). */
declare const keyHandleBrand: unique symbol;
type KeyHandle = { readonly [keyHandleBrand]: true };

interface CryptoAddon {
  x25519(privateKey: Uint8Array, publicKey: Uint8Array | undefined, out: Uint8Array): boolean;
  x25519Key(privateKey: Uint8Array): KeyHandle;
  x25519Derive(key: KeyHandle, publicKey: Uint8Array | undefined, out: Uint8Array): boolean;
  seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array | undefined, out: Uint8Array, padding: number): void;
  open(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array | undefined, out: Uint8Array): boolean;
  hash(out: Uint8Array, a: Uint8Array, b: Uint8Array | undefined): void;
  hmac(out: Uint8Array, key: Uint8Array, input: Uint8Array): void;
  kdf(key: Uint8Array, input: Uint8Array, ...outs: Uint8Array[]): void;
  mac(out: Uint8Array, key: Uint8Array, input: Uint8Array): void;
  readonly hasMac: boolean;
}

/** The package root: the nearest ancestor directory holding binding.gyp. */
export function packageRoot(from: string = fileURLToPath(import.meta.url)): string {
  let dir = dirname(from);
  for (;;) {
    if (existsSync(join(dir, 'binding.gyp'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the wireguard-ts package root (binding.gyp)');
    dir = up;
  }
}

let addon: CryptoAddon | null | undefined;

function load(): CryptoAddon | null {
  if (addon === undefined) {
    try {
      addon = createRequire(import.meta.url)(join(packageRoot(), 'build', 'Release', 'wgts_crypto.node')) as CryptoAddon;
    } catch {
      addon = null;
    }
  }
  return addon;
}

let aead: AeadProvider | null | undefined;

export function opensslAead(): AeadProvider | null {
  if (aead !== undefined) return aead;
  const a = load();
  aead = a && {
    name: 'openssl',
    seal: (key, nonce, plaintext, aad, out, padding = 0) => a.seal(key, nonce, plaintext, aad, out, padding),
    open: (key, nonce, sealed, aad, out) => a.open(key, nonce, sealed, aad, out),
  };
  return aead;
}

/** X25519 as crypto/x25519.ts uses it: the public key of a private key, and DH (null on all-zero). */
export interface X25519Provider {
  readonly name: string;
  publicKey(privateKey: Uint8Array): Uint8Array;
  dh(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array | null;
}

let x25519: X25519Provider | null | undefined;

export function opensslX25519(): X25519Provider | null {
  if (x25519 !== undefined) return x25519;
  const a = load();
  if (!a) return (x25519 = null);
  // OpenSSL derives the public key whenever a private key is imported; keeping the imported
  // key per private-key array halves the cost of each later DH with it (a handshake's keys are
  // each used two or three times). The cache holds a copy of the bytes and checks it, so an
  // array whose contents change (zeroed, reused) never reuses a stale key.
  const imported = new WeakMap<Uint8Array, { bytes: Uint8Array; handle: KeyHandle }>();
  const handleFor = (privateKey: Uint8Array): KeyHandle => {
    const hit = imported.get(privateKey);
    if (hit !== undefined && hit.bytes.length === privateKey.length && timingSafeEqual(hit.bytes, privateKey)) return hit.handle;
    const handle = a.x25519Key(privateKey);
    imported.set(privateKey, { bytes: privateKey.slice(), handle });
    return handle;
  };
  x25519 = {
    name: 'openssl',
    publicKey(privateKey) {
      const out = new Uint8Array(32);
      if (!a.x25519Derive(handleFor(privateKey), undefined, out)) throw new Error('X25519: cannot derive the public key');
      return out;
    },
    dh(privateKey, publicKey) {
      const out = new Uint8Array(32);
      return a.x25519Derive(handleFor(privateKey), publicKey, out) ? out : null;
    },
  };
  return x25519;
}

/** The BLAKE2s constructions of crypto/hash.ts, each one call into OpenSSL. */
export interface Blake2sProvider {
  readonly name: string;
  /** BLAKE2s-256(a || b). */
  hash(a: Uint8Array, b?: Uint8Array): Uint8Array;
  /** HMAC-BLAKE2s(key, input). */
  hmac(key: Uint8Array, input: Uint8Array): Uint8Array;
  /** KDF_n(key, input): n 32-byte outputs. */
  kdf(n: 1 | 2 | 3, key: Uint8Array, input: Uint8Array): Uint8Array[];
  /** Keyed BLAKE2s with a 16-byte output (key up to 32 bytes). */
  mac(key: Uint8Array, input: Uint8Array): Uint8Array;
}

let blake2s: Blake2sProvider | null | undefined;

export function opensslBlake2s(): Blake2sProvider | null {
  if (blake2s !== undefined) return blake2s;
  const a = load();
  if (!a || !a.hasMac) return (blake2s = null);
  blake2s = {
    name: 'openssl',
    hash(x, y) {
      const out = new Uint8Array(32);
      a.hash(out, x, y);
      return out;
    },
    hmac(key, input) {
      const out = new Uint8Array(32);
      a.hmac(out, key, input);
      return out;
    },
    kdf(n, key, input) {
      const outs = [new Uint8Array(32)];
      if (n > 1) outs.push(new Uint8Array(32));
      if (n > 2) outs.push(new Uint8Array(32));
      a.kdf(key, input, ...outs);
      return outs;
    },
    mac(key, input) {
      const out = new Uint8Array(16);
      a.mac(out, key, input);
      return out;
    },
  };
  return blake2s;
}
