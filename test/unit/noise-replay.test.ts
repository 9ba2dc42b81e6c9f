import { describe, expect, it } from 'vitest';
import { MAX_COUNTER } from '../../noise/constants.js';
import { COUNTER_WINDOW_SIZE, ReplayWindow } from '../../noise/replay.js';

describe('replay window', () => {
  it('accepts each counter once, in any order inside the window', () => {
    const w = new ReplayWindow();
    expect(w.update(0)).toBe(true);
    expect(w.update(0)).toBe(false);
    expect(w.update(5)).toBe(true);
    expect(w.update(3)).toBe(true);
    expect(w.update(3)).toBe(false);
    expect(w.update(1)).toBe(true);
    expect(w.update(5)).toBe(false);
    expect(w.counter).toBe(6);
  });

  it('is at least 2000 wide and forgets what falls behind it', () => {
    expect(COUNTER_WINDOW_SIZE).toBeGreaterThanOrEqual(2000);
    expect(COUNTER_WINDOW_SIZE).toBe(8192 - 32);
    const w = new ReplayWindow();
    expect(w.update(10_000)).toBe(true);
    expect(w.check(10_000 - COUNTER_WINDOW_SIZE + 1)).toBe(true);
    expect(w.update(10_000 - COUNTER_WINDOW_SIZE + 1)).toBe(true);
    expect(w.update(10_000 - COUNTER_WINDOW_SIZE - 1)).toBe(false);
    expect(w.update(9_999)).toBe(true);
    expect(w.update(9_999)).toBe(false);
  });

  it('matches a brute-force model on a random sequence', () => {
    const w = new ReplayWindow();
    const seen = new Set<number>();
    let max = -1;
    let x = 12345;
    for (let i = 0; i < 8_000; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      const jump = x % 100 < 3 ? (x >>> 8) % 20_000 : 0;
      const c = Math.max(0, max + jump + ((x >>> 4) % 64) - 48);
      const fresh = !seen.has(c) && c + 1 + COUNTER_WINDOW_SIZE >= max + 1;
      const check = w.check(c);
      expect(check).toBe(fresh);
      expect(w.update(c)).toBe(fresh);
      if (fresh) {
        seen.add(c);
        max = Math.max(max, c);
      }
    }
  });

  it('clears bits when jumping far ahead and rejects counters past the limit', () => {
    const w = new ReplayWindow();
    for (let i = 0; i < 100; i++) w.update(i);
    expect(w.update(1_000_000)).toBe(true);
    expect(w.update(1_000_000 - 8000)).toBe(true);
    expect(w.update(MAX_COUNTER + 1)).toBe(false);
    expect(w.update(2 ** 64)).toBe(false);
    expect(w.update(-1)).toBe(false);
    expect(w.update(Number.NaN)).toBe(false);
    expect(w.update(MAX_COUNTER)).toBe(true);
    expect(w.update(MAX_COUNTER)).toBe(false);
  });
});
