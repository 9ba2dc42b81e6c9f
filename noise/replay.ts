/**
 * Anti-replay sliding window (RFC 6479, as the kernel's counter_validate): a ring of
 * COUNTER_BITS_TOTAL bits kept as 32-bit words; the window covers COUNTER_WINDOW_SIZE counters
 * (the total minus one word, which is cleared as the window advances).
 *
 * Counters are JS numbers; anything above MAX_COUNTER (2^53 - 1) is rejected, which subsumes
 * the REJECT_AFTER_MESSAGES limit (see constants.ts).
 */
import { MAX_COUNTER, REJECT_AFTER_MESSAGES } from './constants.js';

const WORD_BITS = 32;
export const COUNTER_BITS_TOTAL = 8192;
export const COUNTER_WINDOW_SIZE = COUNTER_BITS_TOTAL - WORD_BITS;
const WORDS = COUNTER_BITS_TOTAL / WORD_BITS;
const WORD_MASK = WORDS - 1;
// Word indices use division, not shifts, so the arithmetic stays exact up to 2^53; `& WORD_MASK`
// only needs the low bits, which ToInt32 preserves.

export class ReplayWindow {
  /** One more than the highest counter accepted so far (0: none yet). */
  private top = 0;
  private readonly bits = new Uint32Array(WORDS);

  /** The highest accepted counter plus one: the number of counters "used up". */
  get counter(): number {
    return this.top;
  }

  /** Whether `counter` would be accepted. Does not change the window. */
  check(counter: number): boolean {
    if (!(counter >= 0 && counter <= MAX_COUNTER && counter < REJECT_AFTER_MESSAGES)) return false;
    const c = counter + 1;
    if (c + COUNTER_WINDOW_SIZE < this.top) return false;
    if (c > this.top) return true;
    const word = Math.floor(c / WORD_BITS) & WORD_MASK;
    return (this.bits[word]! & (1 << (c % WORD_BITS))) === 0;
  }

  /**
   * Accept `counter` if it is new and inside the window, marking it seen; false for a replay,
   * a counter too far behind the window or one at or above the limits.
   */
  update(counter: number): boolean {
    if (!(counter >= 0 && counter <= MAX_COUNTER && counter < REJECT_AFTER_MESSAGES)) return false;
    const c = counter + 1;
    if (c + COUNTER_WINDOW_SIZE < this.top) return false;
    const index = Math.floor(c / WORD_BITS);
    if (c > this.top) {
      const current = Math.floor(this.top / WORD_BITS);
      const steps = Math.min(index - current, WORDS);
      for (let i = 1; i <= steps; i++) this.bits[(current + i) & WORD_MASK] = 0;
      this.top = c;
    }
    const word = index & WORD_MASK;
    const bit = 1 << (c % WORD_BITS);
    const old = this.bits[word]!;
    if ((old & bit) !== 0) return false;
    this.bits[word] = old | bit;
    return true;
  }

  reset(): void {
    this.top = 0;
    this.bits.fill(0);
  }
}
