import { describe, expect, it } from 'vitest';
import { type Endpoint, endpointOf, silentLogger } from '../../noise/types.js';
import { StickyRoutes } from '../../src/sticky-routes.js';
import type { LookupResult, RouteAnswer } from '../../tun/rtmon.js';

/** A routing table to ask: answers by (dst, src) from `table`, errno when absent. */
class FakeRoutes {
  table = new Map<string, RouteAnswer | number>();
  asked: string[] = [];
  async lookup(dst: string, src: string | null, mark: number): Promise<LookupResult> {
    this.asked.push(`${dst} ${src} ${mark}`);
    return this.table.get(`${dst} ${src}`) ?? 101;
  }
}

class FakeDevice {
  cleared: Endpoint[] = [];
  constructor(public eps: Endpoint[]) {}
  stickyEndpoints(): Endpoint[] {
    return this.eps;
  }
  clearEndpointSource(ep: Endpoint): void {
    this.cleared.push(ep);
    this.eps = this.eps.filter((e) => e !== ep);
  }
}

const r = (oif: number, prefsrc: string | null = null, gateway: string | null = null): RouteAnswer => ({ oif, prefsrc, gateway, table: 254 });

describe('sticky sources follow routes', () => {
  const ep = endpointOf('192.168.250.10', 51821, 4, '192.168.250.2', 3);

  function setup() {
    const routes = new FakeRoutes();
    routes.table.set('192.168.250.10 192.168.250.2', r(3));
    routes.table.set('192.168.250.10 null', r(3, '192.168.250.1'));
    const device = new FakeDevice([ep]);
    const sticky = new StickyRoutes(device, routes, () => 7, silentLogger);
    return { routes, device, sticky };
  }

  it('keeps a source whose route is unchanged (the peer sent to a secondary address), asking with the fwmark', async () => {
    const { routes, device, sticky } = setup();
    await sticky.checkNew();
    await sticky.routesChanged();
    expect(device.cleared).toEqual([]);
    expect(routes.asked).toContain('192.168.250.10 192.168.250.2 7');
    // checkNew asks about an endpoint once.
    const n = routes.asked.length;
    await sticky.checkNew();
    expect(routes.asked.length).toBe(n);
  });

  it('gives it up when a better route leaves by another interface', async () => {
    const { routes, device, sticky } = setup();
    await sticky.checkNew();
    routes.table.set('192.168.250.10 192.168.250.2', r(4, null, '192.168.251.10'));
    routes.table.set('192.168.250.10 null', r(4, '192.168.251.2', '192.168.251.10'));
    await sticky.routesChanged();
    expect(device.cleared).toEqual([ep]);
  });

  it('gives it up when the route gets another preferred source on the same interface', async () => {
    const { routes, device, sticky } = setup();
    await sticky.checkNew();
    routes.table.set('192.168.250.10 null', r(3, '192.168.250.3'));
    await sticky.routesChanged();
    expect(device.cleared).toEqual([ep]);
  });

  it('gives up a new endpoint at once when its source cannot be used or leads elsewhere (as the kernel on send)', async () => {
    const { routes, device, sticky } = setup();
    routes.table.delete('192.168.250.10 192.168.250.2');
    await sticky.checkNew();
    expect(device.cleared).toEqual([ep]);
    const other = endpointOf('192.168.250.11', 1, 4, '192.168.250.2', 3);
    routes.table.set('192.168.250.11 192.168.250.2', r(5));
    device.eps = [other];
    await sticky.checkNew();
    expect(device.cleared).toEqual([ep, other]);
  });

  it('leaves IPv6 link-local endpoints alone', async () => {
    const routes = new FakeRoutes();
    const ll = endpointOf('fe80::b', 51821, 6, 'fe80::a', 3);
    const device = new FakeDevice([ll]);
    await new StickyRoutes(device, routes, () => 0, silentLogger).routesChanged();
    expect(routes.asked).toEqual([]);
    expect(device.cleared).toEqual([]);
  });
});
