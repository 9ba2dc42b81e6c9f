import { describe, expect, it } from 'vitest';
import { warmUp } from '../src/warmup.js';

describe('JIT warm-up', () => {
  it('really carries packets both ways through a handshake', () => {
    // The first packet waits in the staged queue for the handshake and is then sent too.
    expect(warmUp(60, 1)).toBe(120);
    expect(warmUp(10, 3)).toBe(2 * (2 * 2) + 20);
  });
});
