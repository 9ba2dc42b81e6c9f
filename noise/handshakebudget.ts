/**
 * How much handshake work a device under load may do: a number of handshake messages per turn
 * (between two `tick()` calls, i.e. per event-loop turn of its owner) and a share of the
 * clock's time, kept as a token bucket of milliseconds: it fills at `share` ms per ms up to
 * `burstMs`, and every processed message takes what it cost (measured on the device's clock).
 * A handshake costs a responder four X25519 operations, a flood of receivable datagrams costs
 * it its receive path: whatever the budget does not allow waits in the handshake queue, so
 * the datagrams behind it (transport data above all) are read in time.
 *
 * Measured on the injected clock, so a fake clock (which does not move while code runs) makes
 * the time share unlimited and only the per-turn count applies: tests stay deterministic.
 */

export interface HandshakeBudgetOptions {
  /** Handshake messages processed between two tick() calls at most (default 16). */
  perTurn: number;
  /** Share of time handshake processing may take under load, 0 < share <= 1 (default 0.1). */
  share: number;
  /** Most time (ms) it may take in one go after a quiet period (default 20). */
  burstMs: number;
}

export const DEFAULT_HANDSHAKE_BUDGET: HandshakeBudgetOptions = { perTurn: 16, share: 0.1, burstMs: 20 };

export class HandshakeBudget {
  readonly options: HandshakeBudgetOptions;
  private tokens: number;
  private last = Number.NaN;
  private used = 0;

  constructor(options: Partial<HandshakeBudgetOptions> = {}) {
    const o = { ...DEFAULT_HANDSHAKE_BUDGET, ...options };
    if (!(o.perTurn >= 1) || !(o.share > 0 && o.share <= 1) || !(o.burstMs > 0)) {
      throw new RangeError('handshake budget: perTurn >= 1, 0 < share <= 1 and burstMs > 0');
    }
    this.options = o;
    this.tokens = o.burstMs;
  }

  /** A new turn: the per-turn count starts again. */
  newTurn(): void {
    this.used = 0;
  }

  /** Whether one more handshake message may be processed at `now`. */
  allows(now: number): boolean {
    this.refill(now);
    return this.used < this.options.perTurn && this.tokens > 0;
  }

  /** Account for one processed message that took `costMs`. */
  spend(costMs: number): void {
    this.used++;
    this.tokens -= Math.max(0, costMs);
  }

  /** Milliseconds from `now` until messages may be processed again (0: at the next turn). */
  wait(now: number): number {
    this.refill(now);
    return this.tokens > 0 ? 0 : 1 - this.tokens / this.options.share;
  }

  private refill(now: number): void {
    if (!(now > this.last)) {
      if (Number.isNaN(this.last)) this.last = now;
      return;
    }
    this.tokens = Math.min(this.options.burstMs, this.tokens + (now - this.last) * this.options.share);
    this.last = now;
  }
}
