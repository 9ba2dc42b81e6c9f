/**
 * The event loop's keep-warm tick: while traffic flows, the process wakes every KEEP_WARM_MS
 * even when nothing is due, and stops KEEP_WARM_WINDOW_MS after the last input batch.
 *
 * Why: on this kind of host (a KVM guest, 2 vCPUs) a packet that wakes a process idle for tens
 * of milliseconds finds its code and data out of the caches, and a ping's round trip (four
 * such wake-ups, two per daemon) doubles: 20 pings 50 ms apart average 0.73 ms with no idle
 * wake-up, 0.61 ms with one every 200 ms, 0.42 ms every 50 ms and 0.40 ms every 10 ms. Another
 * process waking as often does not help (0.66 ms): what stays warm is this process's own path
 * (the event loop, V8's entry into JavaScript, its stack and heap pages). docs/IO.md has the
 * figures and the cost: ~30-40 µs of CPU per wake-up, 1-1.6 ms a second while active. An idle
 * process does not pay it, and one tick serves every interface of a process (the service's too).
 *
 * WG_TS_KEEP_WARM=0 turns it off (for measurements; the default is on).
 */

/** The tick's period while traffic flows. */
export const KEEP_WARM_MS = 25;
/** How long after the last input batch the tick goes on: WireGuard's keepalive timeout. */
export const KEEP_WARM_WINDOW_MS = 10_000;
export const KEEP_WARM_ENV = 'WG_TS_KEEP_WARM';

export class KeepWarm {
  #timer: NodeJS.Timeout | null = null;
  /** An input batch since the last tick. */
  #active = false;
  /** Ticks in a row without one. */
  #quiet = 0;
  readonly #maxQuiet: number;
  #ticks = 0;

  constructor(
    readonly enabled = true,
    readonly periodMs = KEEP_WARM_MS,
    windowMs = KEEP_WARM_WINDOW_MS,
  ) {
    this.#maxQuiet = Math.max(1, Math.ceil(windowMs / periodMs));
  }

  /** The process's own: every DeviceHost that is not given another uses it. */
  static readonly process = new KeepWarm(process.env[KEEP_WARM_ENV] !== '0');

  /** Called for every input batch: one store, and the start of the tick after a quiet spell. */
  touch(): void {
    this.#active = true;
    if (this.#timer === null && this.enabled) this.#start();
  }

  /** Ticks so far (for tests and measurements). */
  get ticks(): number {
    return this.#ticks;
  }

  get running(): boolean {
    return this.#timer !== null;
  }

  /** Stop now (the next touch starts it again). */
  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  #start(): void {
    this.#quiet = 0;
    // unref'd: the tick never keeps a process alive.
    this.#timer = setInterval(this.#tick, this.periodMs);
    this.#timer.unref();
  }

  readonly #tick = (): void => {
    this.#ticks++;
    if (this.#active) {
      this.#active = false;
      this.#quiet = 0;
    } else if (++this.#quiet >= this.#maxQuiet) {
      this.stop();
    }
  };
}
