import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { describe, expect, it } from 'vitest';
import { nobleAead, nodeAead, xaeadOpen } from '../../crypto/aead.js';
import { deterministicRng } from '../../crypto/random.js';
import { hchacha20, xaeadSealWith } from '../../noise/xaead.js';
import { opensslSuite } from '../../tun/openssl.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s/g, ''), 'hex'));

describe('XChaCha20-Poly1305 over a ChaCha20-Poly1305 provider', () => {
  it('HChaCha20 gives the test vector of draft-irtf-cfrg-xchacha §2.2.1', () => {
    const key = hex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
    const nonce = hex('000000090000004a0000000031415927');
    expect(Buffer.from(hchacha20(key, nonce, new Uint8Array(32))).toString('hex')).toBe('82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc');
  });

  const providers = [nodeAead, nobleAead, ...(opensslSuite() ? [opensslSuite()!.aead] : [])];
  it.each(providers.map((p) => [p.name, p] as const))('seals exactly as @noble/ciphers does (%s), and opens with crypto/aead.ts', (_name, aead) => {
    const rng = deterministicRng(3);
    for (let i = 0; i < 50; i++) {
      const key = rng(new Uint8Array(32));
      const nonce = rng(new Uint8Array(24));
      const pt = rng(new Uint8Array(i % 40));
      const aad = rng(new Uint8Array(16));
      const sealed = xaeadSealWith(aead, key, nonce, pt, aad);
      expect(sealed).toEqual(xchacha20poly1305(key, nonce, aad).encrypt(pt));
      expect(xaeadOpen(key, nonce, sealed, aad)).toEqual(pt);
    }
  });
});
