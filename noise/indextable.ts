/**
 * The receiver-index table (the kernel's index_hashtable): maps our random 32-bit sender
 * indices to what they name, a peer's in-progress handshake or one of its keypairs. Indices
 * are drawn from the injected Rng and unique among the live ones.
 *
 * Indices are uint32 everywhere else; the map is keyed by the same bits as int32 (`| 0`) so
 * keys stay small integers for V8 (uint32 above 2^31 would be heap numbers, slower to hash).
 */
import type { Rng } from '../crypto/random.js';
import type { Keypair } from './keypair.js';

export type IndexEntry<P> = { readonly kind: 'handshake'; readonly peer: P } | { readonly kind: 'keypair'; readonly peer: P; readonly keypair: Keypair };

export class IndexTable<P> {
  private readonly map = new Map<number, IndexEntry<P>>();
  private readonly buf = new Uint8Array(4);

  constructor(private readonly rng: Rng) {}

  /** Insert `entry` under a fresh random index and return it. */
  insert(entry: IndexEntry<P>): number {
    let key = 0;
    for (let attempt = 0; attempt < 64; attempt++) {
      const b = this.rng(this.buf);
      key = b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24);
      if (!this.map.has(key)) {
        this.map.set(key, entry);
        return key >>> 0;
      }
    }
    // Only a broken Rng gets here (the table holds at most a few million of 2^32 indices):
    // probe linearly from the last candidate rather than loop forever.
    while (this.map.has(key)) key = (key + 1) | 0;
    this.map.set(key, entry);
    return key >>> 0;
  }

  /** Point an existing index at a new entry (a handshake's index passing to its keypair). */
  replace(index: number, entry: IndexEntry<P>): void {
    this.map.set(index | 0, entry);
  }

  get(index: number): IndexEntry<P> | undefined {
    return this.map.get(index | 0);
  }

  /** Remove `index` if it still names an entry of `peer` of the given kind (or anything, if omitted). */
  remove(index: number, match?: (e: IndexEntry<P>) => boolean): void {
    const e = this.map.get(index | 0);
    if (e && (!match || match(e))) this.map.delete(index | 0);
  }

  get size(): number {
    return this.map.size;
  }

  clear(): void {
    this.map.clear();
  }
}
