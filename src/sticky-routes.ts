/**
 * Sticky source addresses follow route changes (the kernel's socket.c, wireguard-go's
 * routineRouteListener): a reply leaves from the address the peer sent to, until the route to
 * the peer changes. For each peer endpoint with a sticky source, two lookups:
 *   - from the sticky source, as the kernel's send path looks up: if the kernel refuses it, or
 *     the route leaves by another interface than the one the peer's packets came in on, the
 *     source is given up (the kernel does this on every send);
 *   - from no source: the route's interface, gateway and preferred source. When that changes
 *     after a route change (a better route through another interface, or one with another
 *     preferred source), the source is given up too.
 * Run for every sticky endpoint after each batch of route notifications, and for endpoints not
 * seen before now and then, so that a peer's packet arriving on the old path cannot bring the
 * stale source back for good. Giving it up is never wrong: the next packet from the peer sets
 * it again, and meanwhile the routing table chooses. IPv6 link-local endpoints are left alone
 * (their zone, not a route, decides).
 */
import type { Endpoint, Logger } from '../noise/types.js';
import { ETIMEDOUT, type LookupResult } from '../tun/rtmon.js';

export interface RouteLookup {
  lookup(dst: string, src: string | null, mark: number): Promise<LookupResult>;
}

export interface StickyEndpoints {
  stickyEndpoints(): Endpoint[];
  clearEndpointSource(ep: Endpoint): void;
}

const linkLocal6 = (a: string) => /^fe[89ab]/i.test(a);
/** Destinations whose route is remembered, at most (the oldest go first). */
const MAX_SEEN = 4096;

export class StickyRoutes {
  /**
   * The no-source route to each destination (address and fwmark), as last seen: kept when an
   * endpoint's source is given up or the endpoint changes, so that a source learned again just
   * before the next route change is judged against the route it was learned under.
   */
  private readonly seen = new Map<string, string>();
  private readonly checked = new WeakSet<Endpoint>();
  private running = false;
  private again = false;

  constructor(
    private readonly device: StickyEndpoints,
    private readonly routes: RouteLookup,
    private readonly fwmark: () => number,
    private readonly logger: Logger,
  ) {}

  /** Routes changed: check every sticky endpoint (a run already going is followed by another). */
  routesChanged(): Promise<void> {
    return this.run(true);
  }

  /** Check the sticky endpoints not checked yet. */
  checkNew(): Promise<void> {
    return this.run(false);
  }

  private async run(all: boolean): Promise<void> {
    if (this.running) {
      if (all) this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        const everything = all || this.again;
        this.again = false;
        const eps = this.device.stickyEndpoints().filter((e) => !linkLocal6(e.address) && (everything || !this.checked.has(e)));
        await Promise.all(eps.map((e) => this.check(e)));
        all = false;
      } while (this.again);
    } catch (e) {
      // A bug: the sources stay as they were, the interface carries on.
      this.logger.error(`Route check failed: ${(e as Error).message}`);
    } finally {
      this.running = false;
    }
  }

  private async check(e: Endpoint): Promise<void> {
    this.checked.add(e);
    const mark = this.fwmark();
    const [from, any] = await Promise.all([this.routes.lookup(e.address, e.localAddress!, mark), this.routes.lookup(e.address, null, mark)]);
    const key = `${e.address}|${mark}`;
    let why: string | null = null;
    if (typeof from === 'number') {
      if (from !== ETIMEDOUT) why = `the kernel refuses it (errno ${from})`;
    } else if ((e.ifindex ?? 0) > 0 && from.oif !== 0 && from.oif !== e.ifindex) {
      why = `the route leaves by interface ${from.oif}, not ${e.ifindex}`;
    }
    if (typeof any !== 'number') {
      const route = `${any.oif} ${any.gateway} ${any.prefsrc}`;
      const before = this.seen.get(key);
      this.seen.delete(key);
      if (this.seen.size >= MAX_SEEN) this.seen.delete(this.seen.keys().next().value!);
      this.seen.set(key, route);
      if (why === null && before !== undefined && before !== route) why = 'the route to it changed';
    }
    if (why !== null) {
      this.logger.verbose(`Endpoint ${e.address}:${e.port}: no longer sending from ${e.localAddress}: ${why}`);
      this.device.clearEndpointSource(e);
    }
  }
}
