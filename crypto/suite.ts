/**
 * A CryptoSuite: the three primitives WireGuard needs, each behind its provider shape
 * (aead.ts, x25519.ts, blake2s.ts). The engine takes one as an explicit parameter, defaulting to
 * `jsSuite`; the programs pass the addon's (tun/openssl.ts) when it is built. Every suite gives
 * byte-identical results: only speed differs (`npm run bench`).
 */
import { type AeadProvider, nobleAead, nodeAead } from './aead.js';
import { type Blake2sProvider, nobleBlake2s, nodeBlake2s } from './blake2s.js';
import { nodeX25519, type X25519Provider } from './x25519.js';
import { nobleX25519 } from './x25519-noble.js';

export interface CryptoSuite {
  readonly name: string;
  readonly aead: AeadProvider;
  readonly x25519: X25519Provider;
  readonly blake2s: Blake2sProvider;
}

/** node:crypto where it has the primitive, @noble otherwise: no native code of ours. */
export const jsSuite: CryptoSuite = Object.freeze({ name: 'js', aead: nodeAead, x25519: nodeX25519, blake2s: nodeBlake2s });

/** Pure JavaScript (@noble): no OpenSSL at all. */
export const nobleSuite: CryptoSuite = Object.freeze({ name: 'noble', aead: nobleAead, x25519: nobleX25519, blake2s: nobleBlake2s });
