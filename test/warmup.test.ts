import { describe, expect, it } from 'vitest';
import { warmUp } from '../src/warmup.js';

describe('JIT warm-up', () => {
  it('really carries packets both ways, both families, through handshakes', async () => {
    // Every packet arrives: the first ones wait in the staged queue for the handshake.
    expect(await warmUp({ rounds: 60, handshakes: 1, slice: 0 })).toBe(120);
    // Each extra pair carries two rounds (one IPv4 and one IPv6 packet each way); in slices.
    expect(await warmUp({ rounds: 10, handshakes: 3, slice: 4, pauseMs: 1 })).toBe(2 * (2 * 2) + 20);
  });
});
