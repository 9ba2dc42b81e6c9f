import { createCipheriv, randomFillSync } from 'node:crypto';

/** A source of randomness: fills `buf` and returns it. Injectable so tests are deterministic. */
export type Rng = (buf: Uint8Array) => Uint8Array;

/** The operating system CSPRNG. */
export const systemRng: Rng = (buf) => randomFillSync(buf);

export function randomBytes(n: number, rng: Rng = systemRng): Uint8Array {
  return rng(new Uint8Array(n));
}

/**
 * Uniformly random 16-bit integers drawn from `rng` a block at a time: one call into the CSPRNG
 * per `block / 2` draws. For values that are drawn often and need no secrecy, such as timer
 * jitter, which the data path draws on every send after a reply.
 */
export function randomU16Pool(rng: Rng = systemRng, block = 64): () => number {
  const buf = new Uint8Array(block);
  let pos = block;
  return () => {
    if (pos + 2 > block) {
      rng(buf);
      pos = 0;
    }
    const v = buf[pos]! | (buf[pos + 1]! << 8);
    pos += 2;
    return v;
  };
}

/**
 * A deterministic RNG for tests and benchmarks: the ChaCha20 keystream of a seed (RFC 8439:
 * block counter 0, the call's number as the nonce), from node:crypto rather than a JavaScript
 * cipher, which would cost every program that imports this module its loading time.
 * Never use it for real keys.
 */
export function deterministicRng(seed: number | Uint8Array): Rng {
  const key = new Uint8Array(32);
  if (typeof seed === 'number') new DataView(key.buffer).setUint32(0, seed >>> 0, true);
  else key.set(seed.subarray(0, 32));
  let counter = 0;
  return (buf) => {
    // OpenSSL's ChaCha20 IV: the 32-bit block counter (0), then the 96-bit nonce.
    const iv = new Uint8Array(16);
    new DataView(iv.buffer).setUint32(8, counter++, true);
    const c = createCipheriv('chacha20', key, iv);
    const zeros = new Uint8Array(buf.length);
    buf.set(c.update(zeros));
    c.final();
    return buf;
  };
}
