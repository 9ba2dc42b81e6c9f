import { describe, expect, it } from 'vitest';
import { deterministicRng } from '../../crypto/random.js';
import { IndexTable } from '../../noise/indextable.js';

describe('index table', () => {
  it('hands out unique random uint32 indices and maps them back', () => {
    const t = new IndexTable<string>(deterministicRng(3));
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) {
      const idx = t.insert({ kind: 'handshake', peer: `p${i}` });
      expect(idx).toBeGreaterThanOrEqual(0);
      expect(idx).toBeLessThan(2 ** 32);
      expect(seen.has(idx)).toBe(false);
      seen.add(idx);
      expect(t.get(idx)).toEqual({ kind: 'handshake', peer: `p${i}` });
    }
    expect([...seen].some((x) => x >= 2 ** 31)).toBe(true);
    const [first] = seen;
    t.remove(first!, (e) => e.peer === 'nope');
    expect(t.get(first!)).toBeDefined();
    t.remove(first!);
    expect(t.get(first!)).toBeUndefined();
    expect(t.size).toBe(999);
  });

  it('stays unique (and terminates) with a broken Rng', () => {
    const t = new IndexTable<number>((b) => b.fill(0xff));
    const a = t.insert({ kind: 'handshake', peer: 1 });
    const b = t.insert({ kind: 'handshake', peer: 2 });
    expect(a).toBe(0xffffffff);
    expect(b).not.toBe(a);
    expect(t.get(b)!.peer).toBe(2);
  });
});
