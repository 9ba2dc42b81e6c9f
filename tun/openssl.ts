/**
 * The `openssl` CryptoSuite: ChaCha20-Poly1305, X25519 and the BLAKE2s constructions from the
 * OpenSSL inside Node.js, called through our addon (csrc/aead.c, wgts_crypto.node), one call
 * per operation. The AEAD and X25519 run straight on OpenSSL's primitives where the node binary
 * exports them (else the AEAD reuses one EVP context instead of node:crypto's Cipher object per
 * call); X25519 keeps imported keys per private-key array. `npm run bench` shows the gain over the
 * JavaScript suites. Null when the addon is not built: callers fall back to crypto's jsSuite.
 */

import type { AeadProvider } from '../crypto/aead.js';
import type { Blake2sProvider } from '../crypto/blake2s.js';
import { type CryptoSuite, jsSuite, nobleSuite } from '../crypto/suite.js';
import { keyCache, type X25519Provider } from '../crypto/x25519.js';
import { loadAddon } from './addon.js';

/** An imported X25519 private key inside OpenSSL (freed on garbage collection). */
declare const keyHandleBrand: unique symbol;
type KeyHandle = { readonly [keyHandleBrand]: true };

interface CryptoAddon {
  x25519Key(privateKey: Uint8Array): KeyHandle;
  x25519Derive(key: KeyHandle, publicKey: Uint8Array | undefined, out: Uint8Array): boolean;
  seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array | undefined, out: Uint8Array, padding: number): void;
  open(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array | undefined, out: Uint8Array): boolean;
  hash(out: Uint8Array, a: Uint8Array, b: Uint8Array | undefined): void;
  hmac(out: Uint8Array, key: Uint8Array, input: Uint8Array): void;
  kdf(key: Uint8Array, input: Uint8Array, ...outs: Uint8Array[]): void;
  mac(out: Uint8Array, key: Uint8Array, input: Uint8Array): void;
  /** Route seal/open and X25519 (keys imported from now on) through EVP (true), or straight to the primitives where they were found. */
  useEvp(on: boolean): void;
  readonly hasMac: boolean;
  /** 'direct': ChaCha20-Poly1305 on OpenSSL's primitives (csrc/chapoly.c); 'evp': through EVP. */
  readonly aeadPath: 'direct' | 'evp';
  /** The same for X25519 (csrc/x25519.c). */
  readonly x25519Path: 'direct' | 'evp';
}

function makeSuite(a: CryptoAddon): CryptoSuite {
  const aead: AeadProvider = {
    name: 'openssl',
    seal: (key, nonce, plaintext, aad, out, padding = 0) => a.seal(key, nonce, plaintext, aad, out, padding),
    open: (key, nonce, sealed, aad, out) => a.open(key, nonce, sealed, aad, out),
  };
  const handleFor = keyCache((k) => a.x25519Key(k));
  const x25519: X25519Provider = {
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
  const blake2s: Blake2sProvider = {
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
  return Object.freeze({ name: 'openssl', aead, x25519, blake2s });
}

let suite: CryptoSuite | null | undefined;

/** The addon's suite, or null when wgts_crypto.node is not built (or lacks BLAKE2s MAC). */
export function opensslSuite(): CryptoSuite | null {
  if (suite === undefined) {
    try {
      const a = loadAddon<CryptoAddon>('wgts_crypto');
      suite = a.hasMac ? makeSuite(a) : null;
    } catch {
      suite = null;
    }
  }
  return suite;
}

/**
 * Which routes the addon's ChaCha20-Poly1305 and X25519 take, and a way to run code through the
 * EVP routes (tests and benchmarks compare them). Null when the addon is not built.
 */
export function opensslRoutes(): { readonly aead: 'direct' | 'evp'; readonly x25519: 'direct' | 'evp'; viaEvp<T>(fn: () => T): T } | null {
  if (opensslSuite() === null) return null;
  const a = loadAddon<CryptoAddon>('wgts_crypto');
  return {
    aead: a.aeadPath,
    x25519: a.x25519Path,
    viaEvp<T>(fn: () => T): T {
      a.useEvp(true);
      try {
        return fn();
      } finally {
        a.useEvp(false);
      }
    },
  };
}

/** Suites by name, as WG_TS_CRYPTO selects them: the fastest one present by default. */
export function selectSuite(name: string | undefined): CryptoSuite {
  switch (name) {
    case undefined:
    case '':
      return opensslSuite() ?? jsSuite;
    case 'openssl': {
      const s = opensslSuite();
      if (s === null) throw new Error('crypto suite openssl: the addon wgts_crypto.node is not built (npm run build)');
      return s;
    }
    case 'js':
      return jsSuite;
    case 'noble':
      return nobleSuite;
    default:
      throw new Error(`unknown crypto suite '${name}' (openssl, js or noble)`);
  }
}
