/**
 * An Rng that hands the engine chosen bytes, so that a Device run has fixed ephemeral keys,
 * sender indices and cookie values without any hook in the engine. Draws are told apart by
 * their length, which is what the engine's call sites differ by: 4 bytes are a sender index
 * (noise/indextable.ts), 32 an ephemeral private key or a cookie secret, 24 a cookie-reply
 * nonce. Each scripted length has a queue consumed in order; every other draw (timer jitter)
 * reads zeros, so timers fire exactly at their nominal deadlines.
 *
 * A draw of a scripted length with its queue empty also reads zeros and is recorded in
 * `unexpected`: the generator checks that list is empty and that every queue was consumed,
 * which catches an engine that draws in another order than the vectors assume.
 */
import type { Rng } from '../../crypto/random.js';

export interface ScriptedRng {
  readonly rng: Rng;
  /** Draws of a scripted length that found their queue empty, as `length` values. */
  readonly unexpected: number[];
  /** Scripted values not drawn yet, by length. */
  remaining(): Record<number, number>;
}

export function scriptedRng(script: Record<number, Uint8Array[]>): ScriptedRng {
  const queues = new Map<number, Uint8Array[]>();
  for (const [len, values] of Object.entries(script)) {
    for (const v of values) if (v.length !== Number(len)) throw new Error(`scripted value of ${v.length} bytes in the queue for ${len}`);
    queues.set(Number(len), values.slice());
  }
  const unexpected: number[] = [];
  const rng: Rng = (buf) => {
    const q = queues.get(buf.length);
    const next = q?.shift();
    if (next !== undefined) buf.set(next);
    else {
      buf.fill(0);
      if (q !== undefined) unexpected.push(buf.length);
    }
    return buf;
  };
  return {
    rng,
    unexpected,
    remaining: () => Object.fromEntries([...queues].filter(([, q]) => q.length > 0).map(([len, q]) => [len, q.length])),
  };
}
