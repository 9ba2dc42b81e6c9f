import { createCipheriv, randomFillSync } from 'node:crypto';

/** A source of randomness: fills `buf` and returns it. Injectable so tests are deterministic. */
export type Rng = (buf: Uint8Array) => Uint8Array;

/** Requests of at most this many bytes are served from the pool below. */
const POOLED_MAX = 64;
const POOL_SIZE = 512;
const pool = new Uint8Array(POOL_SIZE);
let poolPos = POOL_SIZE;

/**
 * The operating system CSPRNG. Small requests (handshake indices, ephemeral keys: 4 and 32
 * bytes) come from a pool filled POOL_SIZE bytes at a time, as the kernel's get_random_u32
 * batches: each randomFillSync call builds a crypto job object, ~1.4 us hot and ~8 us on cold
 * caches, which the first packet to a peer paid twice on each side of its handshake. Bytes are
 * zeroed in the pool as they are handed out, so that it never holds a key once given.
 */
export const systemRng: Rng = (buf) => {
  const n = buf.length;
  if (n > POOLED_MAX) return randomFillSync(buf);
  if (poolPos + n > POOL_SIZE) {
    randomFillSync(pool);
    poolPos = 0;
  }
  for (let i = 0; i < n; i++) {
    buf[i] = pool[poolPos + i]!;
    pool[poolPos + i] = 0;
  }
  poolPos += n;
  return buf;
};

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
