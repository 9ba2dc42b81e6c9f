/**
 * Per-source token bucket for handshake messages under load (the kernel's ratelimiter.c):
 * RATELIMIT_PACKETS_PER_SECOND per source with a burst of RATELIMIT_PACKETS_BURST. IPv4
 * sources are keyed by address, IPv6 sources by their /64. Entries idle for
 * RATELIMIT_ENTRY_TTL are forgotten; at most RATELIMIT_MAX_ENTRIES are tracked, beyond which
 * new sources are refused (as the kernel does when its table is full).
 */
import { RATELIMIT_ENTRY_TTL, RATELIMIT_MAX_ENTRIES, RATELIMIT_PACKETS_BURST, RATELIMIT_PACKETS_PER_SECOND } from './constants.js';

/** Token costs in ms of accumulated time. */
const PACKET_COST = 1000 / RATELIMIT_PACKETS_PER_SECOND;
const TOKEN_MAX = PACKET_COST * RATELIMIT_PACKETS_BURST;

interface Bucket {
  tokens: number;
  last: number;
}

export class Ratelimiter {
  private readonly table = new Map<string, Bucket>();
  private lastGc = Number.NEGATIVE_INFINITY;

  /** The bucket key for a source address (4 or 16 bytes). */
  static keyOf(address: Uint8Array): string {
    const n = address.length === 16 ? 8 : address.length;
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(address[i]!);
    return s;
  }

  /**
   * Whether one more handshake message from `address` is allowed at `now` (and take a token).
   * `key` is `keyOf(address)`, for a caller that keeps it.
   */
  allow(address: Uint8Array, now: number, key: string = Ratelimiter.keyOf(address)): boolean {
    this.gc(now);
    const b = this.table.get(key);
    if (!b) {
      if (this.table.size >= RATELIMIT_MAX_ENTRIES) return false;
      this.table.set(key, { tokens: TOKEN_MAX - PACKET_COST, last: now });
      return true;
    }
    const tokens = Math.min(TOKEN_MAX, b.tokens + Math.max(0, now - b.last));
    b.last = now;
    const ok = tokens >= PACKET_COST;
    b.tokens = ok ? tokens - PACKET_COST : tokens;
    return ok;
  }

  /** Whether `allow` would allow a message from the source of `key` at `now` (taking nothing). */
  wouldAllow(key: string, now: number): boolean {
    const b = this.table.get(key);
    if (!b) return this.table.size < RATELIMIT_MAX_ENTRIES;
    return Math.min(TOKEN_MAX, b.tokens + Math.max(0, now - b.last)) >= PACKET_COST;
  }

  /**
   * Whether the source of `key` is quiet: no bucket, or a full one (it took no token for at
   * least RATELIMIT_PACKETS_BURST / RATELIMIT_PACKETS_PER_SECOND seconds).
   */
  isQuiet(key: string, now: number): boolean {
    const b = this.table.get(key);
    return b === undefined || b.tokens + Math.max(0, now - b.last) >= TOKEN_MAX;
  }

  get size(): number {
    return this.table.size;
  }

  private gc(now: number): void {
    if (now - this.lastGc < RATELIMIT_ENTRY_TTL) return;
    this.lastGc = now;
    for (const [k, b] of this.table) if (now - b.last > RATELIMIT_ENTRY_TTL) this.table.delete(k);
  }

  clear(): void {
    this.table.clear();
  }
}
