/**
 * The receiver-index table (the kernel's index_hashtable): maps our random 32-bit sender
 * indices to what they name, a peer's in-progress handshake or one of its keypairs. Indices
 * are drawn from the injected Rng and unique among the live ones.
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
    for (;;) {
      const b = this.rng(this.buf);
      const index = (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
      if (!this.map.has(index)) {
        this.map.set(index, entry);
        return index;
      }
    }
  }

  /** Point an existing index at a new entry (a handshake's index passing to its keypair). */
  replace(index: number, entry: IndexEntry<P>): void {
    this.map.set(index, entry);
  }

  get(index: number): IndexEntry<P> | undefined {
    return this.map.get(index);
  }

  /** Remove `index` if it still names an entry of `peer` of the given kind (or anything, if omitted). */
  remove(index: number, match?: (e: IndexEntry<P>) => boolean): void {
    const e = this.map.get(index);
    if (e && (!match || match(e))) this.map.delete(index);
  }

  get size(): number {
    return this.map.size;
  }

  clear(): void {
    this.map.clear();
  }
}
