/**
 * The handshake queue of a device under load (the kernel's handshake_queue, made fair): handshake
 * messages that passed the MAC checks (mac1, and under load mac2 and the per-source rate limit)
 * wait here when the device has spent its handshake budget, and are taken out by round robin
 * over their sources, so that one source, or many, cannot crowd out a legitimate one:
 *   - lanes in order of precedence (the device uses three: messages it has reason to expect,
 *     from sources that were quiet, from the rest); a lane is served only when those before it
 *     are empty;
 *   - inside a lane, one message per source per round, in the order the sources arrived;
 *   - each source holds at most `perSource` messages (its newest ones are refused), a lane at
 *     most `maxSources` sources: what does not fit is refused and counted by the caller.
 * Sources are keyed by the caller (the device uses the rate limiter's key: an IPv4 address or
 * an IPv6 /64), so a flooder gains no slots by changing ports. Items are the caller's; it copies
 * the datagram before pushing (queued messages outlive the receive call's buffer).
 */

export interface HandshakeQueueLimits {
  /** Messages one source may have waiting (default 4). */
  perSource: number;
  /** Sources one lane may have waiting (default 1024). */
  maxSources: number;
}

export const DEFAULT_QUEUE_LIMITS: HandshakeQueueLimits = { perSource: 4, maxSources: 1024 };

class Lane<T> {
  // Insertion-ordered: the first entry is the next source to serve. Serving one message moves
  // a source that still has some to the end (delete + set), which is the round robin.
  private readonly sources = new Map<string, T[]>();
  size = 0;

  constructor(private readonly limits: HandshakeQueueLimits) {}

  push(source: string, item: T): boolean {
    const q = this.sources.get(source);
    if (q !== undefined) {
      if (q.length >= this.limits.perSource) return false;
      q.push(item);
    } else {
      if (this.sources.size >= this.limits.maxSources) return false;
      this.sources.set(source, [item]);
    }
    this.size++;
    return true;
  }

  shift(): T | undefined {
    for (const [source, q] of this.sources) {
      const item = q.shift()!;
      this.sources.delete(source);
      if (q.length > 0) this.sources.set(source, q);
      this.size--;
      return item;
    }
    return undefined;
  }

  get sourceCount(): number {
    return this.sources.size;
  }

  clear(): T[] {
    const all: T[] = [];
    for (const q of this.sources.values()) all.push(...q);
    this.sources.clear();
    this.size = 0;
    return all;
  }
}

export class HandshakeQueue<T> {
  private readonly lanes: Lane<T>[];

  /** `lanes` lanes, 0 served first. */
  constructor(lanes: number, limits: Partial<HandshakeQueueLimits> = {}) {
    const l = { ...DEFAULT_QUEUE_LIMITS, ...limits };
    if (!(l.perSource >= 1) || !(l.maxSources >= 1)) throw new RangeError('handshake queue limits must be at least 1');
    if (!Number.isInteger(lanes) || lanes < 1) throw new RangeError('a handshake queue has at least one lane');
    this.lanes = Array.from({ length: lanes }, () => new Lane<T>(l));
  }

  /** Queue `item` from `source` in `lane`; false if that source's queue or the lane is full (nothing queued). */
  push(source: string, item: T, lane: number): boolean {
    const l = this.lanes[lane];
    if (l === undefined) throw new RangeError(`no lane ${lane}`);
    return l.push(source, item);
  }

  /** The next message to process: from the first non-empty lane, round robin over its sources. */
  shift(): T | undefined {
    for (const l of this.lanes) if (l.size > 0) return l.shift();
    return undefined;
  }

  /** Messages waiting (in lanes up to and including `lane`, if given). */
  size(lane = this.lanes.length - 1): number {
    let n = 0;
    for (let i = 0; i <= lane && i < this.lanes.length; i++) n += this.lanes[i]!.size;
    return n;
  }

  /** Sources with messages waiting in `lane`. */
  sources(lane: number): number {
    return this.lanes[lane]?.sourceCount ?? 0;
  }

  /** Empty the queue; returns what was waiting (for the caller to count). */
  clear(): T[] {
    return this.lanes.flatMap((l) => l.clear());
  }
}
