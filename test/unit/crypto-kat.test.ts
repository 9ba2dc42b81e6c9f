/**
 * Known-answer tests for crypto/ from the published specifications:
 *   RFC 7748 (X25519), RFC 8439 (ChaCha20-Poly1305), RFC 7693 (BLAKE2s), the BLAKE2 reference
 *   KAT (keyed BLAKE2s), draft-irtf-cfrg-xchacha-03 (XChaCha20-Poly1305), TAI64N
 *   (cr.yp.to/libtai/tai64.html, as the kernel and wireguard-go encode it), and `wg` itself
 *   for key clamping and the base64 key format.
 */

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { blake2s } from '@noble/hashes/blake2.js';
import { describe, expect, it } from 'vitest';
import { type AeadProvider, aeadOpen, aeadSeal, counterNonce, nobleAead, nodeAead, TAG_LEN, xaeadOpen, xaeadSeal } from '../../crypto/aead.js';
import { type Blake2sProvider, nobleBlake2s, nodeBlake2s } from '../../crypto/blake2s.js';
import { decodeBase64Key, decodeHexKey, encodeBase64Key, encodeHexKey, equalBytes, isZero, KeyFormatError } from '../../crypto/keys.js';
import { deterministicRng, randomU16Pool, systemRng } from '../../crypto/random.js';
import { type CryptoSuite, jsSuite, nobleSuite } from '../../crypto/suite.js';
import { compareTai64n, TAI64N_LEN, tai64n } from '../../crypto/tai64n.js';
import { clampPrivateKey, generatePrivateKey, nodeX25519, publicKey, type X25519Provider } from '../../crypto/x25519.js';
import { nobleX25519 } from '../../crypto/x25519-noble.js';
import { opensslRoutes, opensslSuite } from '../../tun/openssl.js';
import { concat } from '../helpers/whitepaper.js';

const h = (s: string): Uint8Array => {
  const clean = s.replace(/[\s:]/g, '');
  if (!/^([0-9a-fA-F]{2})*$/.test(clean)) throw new Error(`bad hex in test vector: ${s}`);
  return new Uint8Array(Buffer.from(clean, 'hex'));
};
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const ascii = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));
const range = (n: number, start = 0): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);

// Every suite: the addon's (built by npm ci) and the two JavaScript ones.
const openssl = opensslSuite();
const allSuites: CryptoSuite[] = [...(openssl ? [openssl] : []), jsSuite, nobleSuite];
// The addon's X25519 on the primitives (csrc/x25519.c) and, forced, through EVP: keys imported
// while useEvp is on are EVP keys (fresh arrays, so that the key cache imports them then).
const routes = openssl ? opensslRoutes() : null;
const opensslEvpX25519: X25519Provider | null = routes && {
  name: 'openssl-evp',
  publicKey: (k) => routes.viaEvp(() => openssl!.x25519.publicKey(k.slice())),
  dh: (k, pub) => routes.viaEvp(() => openssl!.x25519.dh(k.slice(), pub)),
};
const x25519Providers: X25519Provider[] = [nobleX25519, nodeX25519, ...(openssl ? [openssl.x25519] : []), ...(opensslEvpX25519 ? [opensslEvpX25519] : [])];
const blake2sProviders: Blake2sProvider[] = [nobleBlake2s, nodeBlake2s, ...(openssl ? [openssl.blake2s] : [])];

// ---------------------------------------------------------------------------------------------
describe('X25519 providers', () => {
  it('has the native provider (the addon is built by npm ci) besides node and noble', () => {
    expect(x25519Providers.map((p) => p.name).sort()).toEqual(['noble', 'node', 'openssl', 'openssl-evp']);
    expect(allSuites.map((x) => x.name)).toEqual(['openssl', 'js', 'noble']);
  });
  it('never reuse a cached key for an array whose contents changed', () => {
    const rng = deterministicRng(78);
    const peer = publicKey(generatePrivateKey(rng));
    for (const p of x25519Providers) {
      const k = generatePrivateKey(rng);
      const first = hex(p.dh(k, peer)!);
      const expectedFirst = hex(nobleX25519.dh(k.slice(), peer)!);
      k.set(generatePrivateKey(rng)); // same array, new key
      expect(first).toBe(expectedFirst);
      expect(hex(p.dh(k, peer)!)).toBe(hex(nobleX25519.dh(k.slice(), peer)!));
      expect(hex(p.publicKey(k))).toBe(hex(nobleX25519.publicKey(k.slice())));
    }
  });

  it('agree on random keys', () => {
    const rng = deterministicRng(77);
    for (let i = 0; i < 20; i++) {
      const a = generatePrivateKey(rng);
      const b = generatePrivateKey(rng);
      const outs = x25519Providers.map((p) => hex(p.dh(a, p.publicKey(b))!));
      expect(new Set(outs).size).toBe(1);
    }
  });
});

describe.each(x25519Providers)('X25519 (RFC 7748), $name provider', (provider) => {
  const dh = provider.dh;
  const publicKey = provider.publicKey;
  it('§5.2 test vectors', () => {
    expect(
      hex(dh(h('a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4'), h('e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c'))!),
    ).toBe('c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552');
    // The u-coordinate has its top bit set: it must be masked, not rejected.
    expect(
      hex(dh(h('4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d'), h('e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493'))!),
    ).toBe('95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957');
  });

  it('§5.2 iterated: after 1 and 1,000 iterations', () => {
    let k: Uint8Array = new Uint8Array(32);
    k[0] = 9;
    let u: Uint8Array = k.slice();
    for (let i = 1; i <= 1000; i++) {
      const r = dh(k, u)!;
      u = k;
      k = r;
      if (i === 1) expect(hex(k)).toBe('422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079');
    }
    expect(hex(k)).toBe('684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51');
  });

  it('§6.1 Diffie-Hellman: both public keys and the shared secret', () => {
    const a = h('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
    const b = h('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
    const ka = publicKey(a);
    const kb = publicKey(b);
    expect(hex(ka)).toBe('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
    expect(hex(kb)).toBe('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
    expect(hex(dh(a, kb)!)).toBe(shared);
    expect(hex(dh(b, ka)!)).toBe(shared);
  });

  it('returns null for low-order public keys (all-zero shared secret, RFC 7748 §6.1)', () => {
    const priv = h('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
    for (const p of [
      '0000000000000000000000000000000000000000000000000000000000000000', // 0
      '0100000000000000000000000000000000000000000000000000000000000000', // 1
      'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', // order 8
      '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157', // order 8
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // p - 1 (order 2)
      'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // p = 0
      'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // p + 1 = 1
    ]) {
      expect(dh(priv, h(p)), p).toBeNull();
    }
    // A refusal leaves no error behind on OpenSSL's queue for node:crypto's next call to find.
    expect(encodeBase64Key(nodeX25519.publicKey(priv))).toBe('hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=');
    // a random valid key is fine
    expect(dh(priv, publicKey(generatePrivateKey(deterministicRng(5))))).not.toBeNull();
  });
});

// ---------------------------------------------------------------------------------------------
// RFC 8439 §2.8.2
const SUNSCREEN = ascii("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
const V282 = {
  key: range(32, 0x80),
  nonce: h('07000000 4041424344454647'),
  aad: h('50515253c0c1c2c3c4c5c6c7'),
  ct: h(`
    d31a8d34648e60db7b86afbc53ef7ec2 a4aded51296e08fea9e2b5a736ee62d6
    3dbea45e8ca9671282fafb69da92728b 1a71de0a9e060b2905d6a5b67ecd3b36
    92ddbd7f2d778b8c9803aee328091b58 fab324e4fad675945585808b4831d7bc
    3ff4def08e4b7a9de576d26586cec64b 6116`),
  tag: h('1a:e1:0b:59:4f:09:e2:6a:7e:90:2e:cb:d0:60:06:91'),
};
// RFC 8439 Appendix A.5
const VA5 = {
  key: h('1c9240a5eb55d38af333888604f6b5f0 473917c1402b80099dca5cbc207075c0'),
  nonce: h('000000000102030405060708'),
  aad: h('f33388860000000000004e91'),
  ct: h(`
    64a0861575861af460f062c79be643bd 5e805cfd345cf389f108670ac76c8cb2
    4c6cfc18755d43eea09ee94e382d26b0 bdb7b73c321b0100d4f03b7f355894cf
    332f830e710b97ce98c8a84abd0b9481 14ad176e008d33bd60f982b1ff37c855
    9797a06ef4f0ef61c186324e2b350638 3606907b6a7c02b0f9f6157b53c867e4
    b9166c767b804d46a59b5216cde7a4e9 9040c5a40433225ee282a1b0a06c523e
    af4534d7f83fa1155b0047718cbc546a 0d072b04b3564eea1b422273f548271a
    0bb2316053fa76991955ebd63159434e cebb4e466dae5a1073a6727627097a10
    49e617d91d361094fa68f0ff77987130 305beaba2eda04df997b714d6c6f2c29
    a6ad5cb4022b02709b`),
  tag: h('eead9d67890cbb22392336fea1851f38'),
  pt: ascii(
    'Internet-Drafts are draft documents valid for a maximum of six months and may be updated, replaced, or ' +
      'obsoleted by other documents at any time. It is inappropriate to use Internet-Drafts as reference ' +
      'material or to cite them other than as /\u201cwork in progress./\u201d',
  ),
};

function seal(p: AeadProvider, key: Uint8Array, nonce: Uint8Array, pt: Uint8Array, aad: Uint8Array | undefined, padding = 0): Uint8Array {
  const out = new Uint8Array(pt.length + padding + TAG_LEN);
  p.seal(key, nonce, pt, aad, out, padding);
  return out;
}

function open(p: AeadProvider, key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array | undefined): Uint8Array | null {
  if (sealed.length < TAG_LEN) return p.open(key, nonce, sealed, aad, new Uint8Array(0)) ? new Uint8Array(0) : null;
  const out = new Uint8Array(sealed.length - TAG_LEN);
  return p.open(key, nonce, sealed, aad, out) ? out : null;
}

// The addon's seal/open go straight to OpenSSL's ChaCha20 and Poly1305 primitives when it finds
// them (csrc/chapoly.c), else through EVP; both routes are tested, EVP's forced per call.
const evp = routes;
const opensslEvp: AeadProvider | null = evp && {
  name: 'openssl-evp',
  seal: (key, nonce, pt, aad, out, padding) => evp.viaEvp(() => openssl!.aead.seal(key, nonce, pt, aad, out, padding)),
  open: (key, nonce, sealed, aad, out) => evp.viaEvp(() => openssl!.aead.open(key, nonce, sealed, aad, out)),
};
const allProviders: AeadProvider[] = [nodeAead, nobleAead, ...(openssl ? [openssl.aead] : []), ...(opensslEvp ? [opensslEvp] : [])];

describe('ChaCha20-Poly1305 (RFC 8439)', () => {
  it('the vectors are internally consistent', () => {
    expect(SUNSCREEN.length).toBe(114);
    expect(V282.ct.length).toBe(114);
    expect(VA5.ct.length).toBe(265);
    expect(VA5.pt.length).toBe(265);
    expect(allProviders.map((p) => p.name)).toEqual(expect.arrayContaining(['node', 'noble']));
  });

  it.skipIf(!openssl)('the addon seals on the primitives where Node exports them (its bundled OpenSSL), checked against EVP', () => {
    // Official Node builds link OpenSSL statically and export it whole; a Node on a shared
    // system OpenSSL keeps the EVP route (and this says so).
    const bundled = !/libcrypto/.test(execFileSync('ldd', [process.execPath], { encoding: 'utf8' }));
    expect(evp!.aead).toBe(bundled ? 'direct' : 'evp');
    expect(evp!.x25519).toBe(bundled ? 'direct' : 'evp');
  });

  for (const p of allProviders) {
    describe(`provider ${p.name}`, () => {
      it('§2.8.2 AEAD test vector: seal and open', () => {
        const sealed = seal(p, V282.key, V282.nonce, SUNSCREEN, V282.aad);
        expect(hex(sealed)).toBe(hex(concat(V282.ct, V282.tag)));
        expect(hex(open(p, V282.key, V282.nonce, sealed, V282.aad)!)).toBe(hex(SUNSCREEN));
      });

      it('Appendix A.5: authenticate and decrypt', () => {
        const sealed = concat(VA5.ct, VA5.tag);
        expect(hex(open(p, VA5.key, VA5.nonce, sealed, VA5.aad)!)).toBe(hex(VA5.pt));
        expect(hex(seal(p, VA5.key, VA5.nonce, VA5.pt, VA5.aad))).toBe(hex(sealed));
      });

      it('padding: seals plaintext followed by zero bytes', () => {
        // The first 100 bytes of the §2.8.2 plaintext, padded with 14 zeros: the ciphertext is
        // the RFC's for those 100 bytes, then the keystream itself (plaintext ^ ciphertext).
        const pt = SUNSCREEN.subarray(0, 100);
        const sealed = seal(p, V282.key, V282.nonce, pt, V282.aad, 14);
        expect(sealed.length).toBe(114 + TAG_LEN);
        expect(hex(sealed.subarray(0, 100))).toBe(hex(V282.ct.subarray(0, 100)));
        const keystream = V282.ct.map((c, i) => c ^ SUNSCREEN[i]!);
        expect(hex(sealed.subarray(100, 114))).toBe(hex(keystream.subarray(100, 114)));
        // and it is exactly the seal of the explicitly padded plaintext
        const explicit = seal(p, V282.key, V282.nonce, concat(pt, new Uint8Array(14)), V282.aad);
        expect(hex(sealed)).toBe(hex(explicit));
        const back = open(p, V282.key, V282.nonce, sealed, V282.aad)!;
        expect(hex(back)).toBe(hex(concat(pt, new Uint8Array(14))));
        // padding of an empty plaintext (a keepalive padded to 16)
        const ka = seal(p, V282.key, V282.nonce, new Uint8Array(0), undefined, 16);
        expect(hex(ka.subarray(0, 16))).toBe(hex(keystream.subarray(0, 16)));
      });

      it('rejects every tampering', () => {
        const sealed = concat(V282.ct, V282.tag);
        const flips = [0, 57, 113, 114, 129]; // ciphertext start/middle/end, tag start/end
        for (const i of flips) {
          const t = sealed.slice();
          t[i]! ^= 0x01;
          expect(open(p, V282.key, V282.nonce, t, V282.aad), `byte ${i}`).toBeNull();
        }
        const badAad = V282.aad.slice();
        badAad[0]! ^= 0x80;
        expect(open(p, V282.key, V282.nonce, sealed, badAad)).toBeNull();
        expect(open(p, V282.key, V282.nonce, sealed, undefined)).toBeNull();
        const badNonce = V282.nonce.slice();
        badNonce[11]! ^= 1;
        expect(open(p, V282.key, badNonce, sealed, V282.aad)).toBeNull();
        const badKey = V282.key.slice();
        badKey[31]! ^= 1;
        expect(open(p, badKey, V282.nonce, sealed, V282.aad)).toBeNull();
        expect(open(p, V282.key, V282.nonce, sealed.subarray(0, 113 + TAG_LEN), V282.aad)).toBeNull();
        expect(p.open(V282.key, V282.nonce, sealed.subarray(0, 15), V282.aad, new Uint8Array(0))).toBe(false);
        // an empty message still authenticates its AAD
        const empty = seal(p, V282.key, V282.nonce, new Uint8Array(0), V282.aad);
        expect(open(p, V282.key, V282.nonce, empty, V282.aad)).toEqual(new Uint8Array(0));
        expect(open(p, V282.key, V282.nonce, empty, badAad)).toBeNull();
      });
    });
  }

  it('all providers agree on random inputs of every size, and open each other', () => {
    const rng = deterministicRng(42);
    for (const len of [0, 1, 15, 16, 17, 63, 64, 65, 255, 1420]) {
      for (const withAad of [false, true]) {
        for (const padding of [0, 3, 16]) {
          const key = rng(new Uint8Array(32));
          const nonce = counterNonce(len * 7 + padding);
          const pt = rng(new Uint8Array(len));
          const aad = withAad ? rng(new Uint8Array(32)) : undefined;
          const outs = allProviders.map((p) => hex(seal(p, key, nonce, pt, aad, padding)));
          expect(new Set(outs).size, `len ${len} aad ${withAad} pad ${padding}`).toBe(1);
          const sealed = h(outs[0]!);
          for (const p of allProviders) {
            expect(hex(open(p, key, nonce, sealed, aad)!)).toBe(hex(concat(pt, new Uint8Array(padding))));
          }
        }
      }
    }
  });

  it('counter nonces: 4 zero bytes and the 64-bit little-endian counter', () => {
    expect(hex(counterNonce(0))).toBe('000000000000000000000000');
    expect(hex(counterNonce(1))).toBe('000000000100000000000000');
    expect(hex(counterNonce(0x0102030405))).toBe('000000000504030201000000');
    expect(hex(counterNonce(2 ** 53 - 1))).toBe('00000000ffffffffffff1f00');
    const buf = new Uint8Array(12).fill(0xaa);
    expect(counterNonce(7, buf)).toBe(buf);
    expect(hex(buf)).toBe('000000000700000000000000');
  });

  it('aeadSeal/aeadOpen use counter nonces and reject tampering', () => {
    const key = range(32, 0x80);
    for (const p of allProviders) {
      const sealed = aeadSeal(p, key, 5, SUNSCREEN, V282.aad);
      expect(hex(sealed)).toBe(hex(seal(p, key, counterNonce(5), SUNSCREEN, V282.aad)));
      expect(hex(aeadOpen(p, key, 5, sealed, V282.aad)!)).toBe(hex(SUNSCREEN));
      expect(aeadOpen(p, key, 6, sealed, V282.aad)).toBeNull();
      expect(aeadOpen(p, key, 5, sealed.subarray(0, 10), V282.aad)).toBeNull();
      expect(aeadOpen(p, key, 0, aeadSeal(p, key, 0, new Uint8Array(0), new Uint8Array(0)), new Uint8Array(0))).toEqual(new Uint8Array(0));
    }
  });
});

// ---------------------------------------------------------------------------------------------
describe('XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha-03 Appendix A.3.1)', () => {
  const key = range(32, 0x80);
  const nonce = h('404142434445464748494a4b4c4d4e4f5051525354555657');
  const aad = h('50515253c0c1c2c3c4c5c6c7');
  const ct = h(`
    bd6d179d3e83d43b9576579493c0e939 572a1700252bfaccbed2902c21396cbb
    731c7f1b0b4aa6440bf3a82f4eda7e39 ae64c6708c54c216cb96b72e1213b452
    2f8c9ba40db5d945b11b69b982c1bb9e 3f3fac2bc369488f76b2383565d3fff9
    21f9664c97637da9768812f615c68b13 b52e`);
  const tag = h('c0875924c1c7987947deafd8780acf49');

  it('seals and opens the published vector', () => {
    expect(ct.length).toBe(114);
    expect(hex(xaeadSeal(key, nonce, SUNSCREEN, aad))).toBe(hex(concat(ct, tag)));
    expect(hex(xaeadOpen(key, nonce, concat(ct, tag), aad)!)).toBe(hex(SUNSCREEN));
  });

  it('rejects tampering', () => {
    const sealed = concat(ct, tag);
    for (const i of [0, 113, 114, 129]) {
      const t = sealed.slice();
      t[i]! ^= 4;
      expect(xaeadOpen(key, nonce, t, aad)).toBeNull();
    }
    const n2 = nonce.slice();
    n2[23]! ^= 1; // the last byte is in the ChaCha20 nonce part, not the HChaCha20 part
    expect(xaeadOpen(key, n2, sealed, aad)).toBeNull();
    const n3 = nonce.slice();
    n3[0]! ^= 1; // HChaCha20 part
    expect(xaeadOpen(key, n3, sealed, aad)).toBeNull();
    expect(xaeadOpen(key, nonce, sealed, new Uint8Array(0))).toBeNull();
    expect(xaeadOpen(key, nonce, sealed.subarray(0, 15), aad)).toBeNull();
  });
});

// ---------------------------------------------------------------------------------------------
describe.each(blake2sProviders)('BLAKE2s (RFC 7693) and the WireGuard constructions on it, $name provider', (b2) => {
  const hash = (...parts: Uint8Array[]): Uint8Array => (parts.length <= 2 ? b2.hash(parts[0]!, parts[1]) : b2.hash(concat(...parts)));
  const hmac = b2.hmac;
  const mac = (key: Uint8Array, ...parts: Uint8Array[]): Uint8Array => b2.mac(key, parts.length === 1 ? parts[0]! : concat(...parts));
  const kdf1 = (k: Uint8Array, x: Uint8Array): Uint8Array => b2.kdf(1, k, x)[0]!;
  const kdf2 = (k: Uint8Array, x: Uint8Array): Uint8Array[] => b2.kdf(2, k, x);
  const kdf3 = (k: Uint8Array, x: Uint8Array): Uint8Array[] => b2.kdf(3, k, x);

  it('Appendix B: BLAKE2s-256("abc")', () => {
    expect(hex(hash(ascii('abc')))).toBe('508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982');
    // hash(a, b) is the hash of the concatenation
    expect(hex(hash(ascii('a'), ascii(''), ascii('bc')))).toBe('508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982');
  });

  it('WireGuard protocol constants: initial chaining key and hash', () => {
    const ck = hash(ascii('Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s'));
    expect(hex(ck)).toBe('60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36');
    expect(hex(hash(ck, ascii('WireGuard v1 zx2c4 Jason@zx2c4.com')))).toBe('2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3');
  });

  it('keyed BLAKE2s-256: the BLAKE2 reference KAT (key 00..1f), in the library mac() builds on', () => {
    const key = range(32);
    const kat = [
      '48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49',
      '40d15fee7c328830166ac3f918650f807e7e01e177258cdc0a39b11f598066f1',
      '6bb71300644cd3991b26ccd4d274acd1adeab8b1d7914546c1198bbe9fc9d803',
      '1d220dbe2ee134661fdf6d9e74b41704710556f2f6e5a091b227697445dbea6b',
    ];
    for (const [n, want] of kat.entries()) expect(hex(blake2s(range(n), { key, dkLen: 32 }))).toBe(want);
  });

  it('Appendix E self-test grand hash, with hash() and mac() for the sizes they serve', () => {
    // Deterministic sequence from the RFC (a Fibonacci generator).
    const seq = (len: number, seed: number): Uint8Array => {
      const out = new Uint8Array(len);
      let a = Math.imul(0xdead4bad, seed) >>> 0;
      let b = 1;
      for (let i = 0; i < len; i++) {
        const t = (a + b) >>> 0;
        a = b;
        b = t;
        out[i] = t >>> 24;
      }
      return out;
    };
    const b2s = (outlen: number, key: Uint8Array | null, input: Uint8Array): Uint8Array => {
      if (outlen === 32 && !key) return hash(input); // our HASH
      if (outlen === 16 && key) return mac(key, input); // our MAC (keyed, 16-byte output)
      return blake2s(input, key ? { key, dkLen: outlen } : { dkLen: outlen });
    };
    const mds: Uint8Array[] = [];
    for (const outlen of [16, 20, 28, 32]) {
      for (const inlen of [0, 3, 64, 65, 255, 1024]) {
        const input = seq(inlen, inlen);
        mds.push(b2s(outlen, null, input));
        mds.push(b2s(outlen, seq(outlen, outlen), input));
      }
    }
    expect(hex(hash(...mds))).toBe('6a411f08ce25adcdfb02aba641451cec53c598b24f4fc787fbdc88797f4c1dfe');
  });

  // HMAC (RFC 2104) written out by hand over BLAKE2s (64-byte block), as the whitepaper defines it.
  const hmacRef = (key: Uint8Array, msg: Uint8Array): Uint8Array => {
    const k = new Uint8Array(64);
    k.set(key.length > 64 ? hash(key) : key);
    return hash(
      k.map((b) => b ^ 0x5c),
      hash(
        k.map((b) => b ^ 0x36),
        msg,
      ),
    );
  };

  it('agrees with @noble/hashes on HASH and HMAC for random inputs', () => {
    const rng = deterministicRng(11);
    for (let i = 0; i < 50; i++) {
      const a = rng(new Uint8Array(i * 7));
      const b = rng(new Uint8Array((i * 13) % 130));
      expect(hex(hash(a, b))).toBe(hex(nobleBlake2s.hash(a, b)));
      expect(hex(hmac(a, b))).toBe(hex(nobleBlake2s.hmac(a, b)));
    }
  });

  it('agrees with node:crypto and @noble/hashes on HASH, HMAC, KDF and MAC', () => {
    if (existsSync(new URL('../../build/Release/wgts_crypto.node', import.meta.url))) expect(openssl).not.toBeNull();
    const rng = deterministicRng(12);
    for (let i = 0; i < 60; i++) {
      const a = rng(new Uint8Array((i * 11) % 150));
      const b = rng(new Uint8Array((i * 5) % 70));
      expect(hex(hash(a))).toBe(hex(nobleBlake2s.hash(a)));
      expect(hex(hash(a, b))).toBe(hex(nodeBlake2s.hash(a, b)));
      expect(hex(hmac(b, a))).toBe(hex(nodeBlake2s.hmac(b, a)));
      expect(hex(hmac(b, a))).toBe(hex(nobleBlake2s.hmac(b, a)));
      for (const n of [1, 2, 3] as const) expect(b2.kdf(n, b, a).map(hex)).toEqual(nodeBlake2s.kdf(n, b, a).map(hex));
      const key = rng(new Uint8Array(1 + (i % 32)));
      expect(hex(mac(key, a))).toBe(hex(nobleBlake2s.mac(key, a)));
      expect(hex(mac(key, a))).toBe(hex(blake2s(a, { key, dkLen: 16 })));
    }
  });

  it('HMAC-BLAKE2s matches a hand-written HMAC for every key length class', () => {
    const rng = deterministicRng(7);
    for (const klen of [0, 1, 32, 63, 64, 65, 100]) {
      for (const mlen of [0, 1, 33, 64, 200]) {
        const key = rng(new Uint8Array(klen));
        const msg = rng(new Uint8Array(mlen));
        expect(hex(hmac(key, msg)), `key ${klen} msg ${mlen}`).toBe(hex(hmacRef(key, msg)));
      }
    }
  });

  it('KDF1/2/3 are the whitepaper HKDF chain over that HMAC', () => {
    const key = hash(ascii('Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s'));
    for (const input of [new Uint8Array(0), range(32), range(100)]) {
      const t0 = hmacRef(key, input);
      const t1 = hmacRef(t0, Uint8Array.of(1));
      const t2 = hmacRef(t0, concat(t1, Uint8Array.of(2)));
      const t3 = hmacRef(t0, concat(t2, Uint8Array.of(3)));
      expect(hex(kdf1(key, input))).toBe(hex(t1));
      expect(kdf2(key, input).map(hex)).toEqual([t1, t2].map(hex));
      expect(kdf3(key, input).map(hex)).toEqual([t1, t2, t3].map(hex));
    }
  });

  it('MAC is keyed BLAKE2s with a 16-byte output (not a truncation of the 32-byte one)', () => {
    const key = range(32);
    const m = mac(key, ascii('abc'));
    expect(m.length).toBe(16);
    expect(hex(m)).toBe(hex(blake2s(ascii('abc'), { key, dkLen: 16 })));
    expect(hex(m)).not.toBe(hex(blake2s(ascii('abc'), { key, dkLen: 32 }).subarray(0, 16)));
    expect(hex(mac(key, ascii('a'), ascii('bc')))).toBe(hex(m));
  });
});

// ---------------------------------------------------------------------------------------------
describe('TAI64N', () => {
  it('encodes 2^62 + 10 + Unix seconds, then nanoseconds rounded down to 2^24', () => {
    expect(TAI64N_LEN).toBe(12);
    expect(hex(tai64n(0))).toBe('400000000000000a00000000');
    // 2023-11-14T22:13:20Z = 1700000000 = 0x6553f100
    expect(hex(tai64n(1_700_000_000_000))).toBe('400000006553f10a00000000');
    // 123.456 ms -> 123456000 ns -> 7 * 2^24 = 117440512 = 0x07000000
    expect(hex(tai64n(1_700_000_000_123.456))).toBe('400000006553f10a07000000');
    // just under a second: 999 ms -> 59 * 2^24 = 989855744 = 0x3b000000
    expect(hex(tai64n(1_700_000_000_999))).toBe('400000006553f10a3b000000');
    // 2^32 seconds (year 2106) does not overflow into the label
    expect(hex(tai64n(2 ** 32 * 1000))).toBe('400000010000000a00000000');
  });

  it('orders timestamps as big-endian byte strings', () => {
    const a = tai64n(1_700_000_000_000);
    const b = tai64n(1_700_000_000_100); // 100 ms later: a different 2^24 ns slot
    const c = tai64n(1_700_000_000_001); // 1 ms later: the same slot
    expect(compareTai64n(a, b)).toBeLessThan(0);
    expect(compareTai64n(b, a)).toBeGreaterThan(0);
    expect(compareTai64n(a, c)).toBe(0);
    expect(compareTai64n(tai64n(1_699_999_999_999), a)).toBeLessThan(0);
  });
});

// ---------------------------------------------------------------------------------------------
describe('key codecs', () => {
  const k = range(32);
  const b64 = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=';

  it('canonical base64 round trip', () => {
    expect(encodeBase64Key(k)).toBe(b64);
    expect(decodeBase64Key(b64)).toEqual(k);
    expect(decodeBase64Key('AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=')).toEqual(new Uint8Array(32));
    expect(decodeBase64Key('//////////////////////////////////////////8=')).toEqual(new Uint8Array(32).fill(0xff));
  });

  it('rejects anything but 44 canonical characters', () => {
    const bad = [
      b64.slice(0, 43), // 43 chars
      b64 + '=', // 45 chars
      b64.slice(0, 43) + 'A', // no '='
      'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=', // last char has non-zero low bits: non-canonical
      'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh/=',
      'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh==', // two '='
      'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd*h8=', // bad char
      'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd-h8=', // base64url
      'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd_h8=',
      ' AECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=',
      'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n',
      '',
    ];
    for (const s of bad) expect(() => decodeBase64Key(s), JSON.stringify(s)).toThrow(KeyFormatError);
    expect(() => decodeBase64Key(b64.slice(0, 43), 'private key')).toThrow(/private key/);
    expect(() => encodeBase64Key(new Uint8Array(31))).toThrow(KeyFormatError);
  });

  it('hex keys: 64 digits, either case', () => {
    expect(encodeHexKey(k)).toBe('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
    expect(decodeHexKey('000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F')).toEqual(k);
    for (const s of ['', '00', '0'.repeat(63), '0'.repeat(65), 'g'.repeat(64), ' ' + '0'.repeat(63), '0x' + '0'.repeat(62)]) {
      expect(() => decodeHexKey(s), s).toThrow(KeyFormatError);
    }
  });

  it('equalBytes and isZero', () => {
    expect(equalBytes(k, range(32))).toBe(true);
    expect(equalBytes(k, range(32, 1))).toBe(false);
    expect(equalBytes(k, range(31))).toBe(false);
    expect(isZero(new Uint8Array(32))).toBe(true);
    expect(isZero(Uint8Array.of(0, 0, 1))).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
const WG = '/usr/bin/wg';
describe.skipIf(!existsSync(WG))('clamping and public keys agree with wg(8)', () => {
  const wg = (args: string[], input: string): string => execFileSync(WG, args, { input, encoding: 'utf8' }).trim();

  it('wg genkey output is already clamped, and wg pubkey equals publicKey()', () => {
    for (let i = 0; i < 3; i++) {
      const priv = decodeBase64Key(wg(['genkey'], ''));
      expect(hex(clampPrivateKey(priv.slice()))).toBe(hex(priv));
      expect(wg(['pubkey'], encodeBase64Key(priv) + '\n')).toBe(encodeBase64Key(publicKey(priv)));
    }
  });

  it('unclamped keys: wg pubkey clamps exactly as clampPrivateKey does', () => {
    const rng = deterministicRng(99);
    const samples = [new Uint8Array(32).fill(0xff), new Uint8Array(32), rng(new Uint8Array(32)), rng(new Uint8Array(32))];
    for (const raw of samples) {
      const clamped = clampPrivateKey(raw.slice());
      expect(clamped[0]! & 7).toBe(0);
      expect(clamped[31]! & 0x80).toBe(0);
      expect(clamped[31]! & 0x40).toBe(0x40);
      const theirs = wg(['pubkey'], encodeBase64Key(raw) + '\n');
      expect(theirs).toBe(encodeBase64Key(publicKey(clamped)));
      expect(theirs).toBe(encodeBase64Key(publicKey(raw)));
    }
  });

  it('generatePrivateKey makes clamped keys', () => {
    const rng = deterministicRng(3);
    for (let i = 0; i < 5; i++) {
      const k = generatePrivateKey(rng);
      expect(hex(clampPrivateKey(k.slice()))).toBe(hex(k));
    }
  });
});

describe('randomU16Pool', () => {
  it('reads the source a block at a time, little-endian, and covers the 16-bit range', () => {
    let calls = 0;
    const src = (buf: Uint8Array): Uint8Array => {
      calls++;
      for (let i = 0; i < buf.length; i++) buf[i] = (i + calls) & 0xff;
      return buf;
    };
    const draw = randomU16Pool(src, 8);
    expect([draw(), draw(), draw(), draw()]).toEqual([0x0201, 0x0403, 0x0605, 0x0807]);
    expect(calls).toBe(1);
    expect(draw()).toBe(0x0302);
    expect(calls).toBe(2);
    const sys = randomU16Pool();
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 20000; i++) {
      const v = sys();
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThan(65536);
      if (v < 32768) lo++;
      else hi++;
    }
    expect(Math.abs(lo - hi)).toBeLessThan(1000);
  });
});

describe('systemRng', () => {
  it('fills requests of every size, pooled or not, with bytes that do not repeat', () => {
    const seen = new Set<string>();
    let ones = 0;
    let bits = 0;
    // Sizes straddling the pool's limit (64) and its refills (512 bytes).
    for (let i = 0; i < 400; i++) {
      for (const n of [4, 32, 63, 64, 65, 700]) {
        const b = new Uint8Array(n);
        expect(systemRng(b)).toBe(b);
        if (n >= 32) {
          const k = hex(b.subarray(0, 16));
          expect(seen.has(k), `a repeated 16-byte block (${n}-byte request)`).toBe(false);
          seen.add(k);
        }
        for (const x of b) for (let v = x; v; v >>= 1) ones += v & 1;
        bits += 8 * n;
      }
    }
    // ~2.3 million bits: a fair source is within 0.5 % of half ones (some 15 standard deviations).
    expect(Math.abs(ones / bits - 0.5)).toBeLessThan(0.005);
  });
});
