/**
 * In-memory wiring for Devices: a fake clock and a network that queues datagrams between
 * endpoints and delivers them when pumped. For tests, benchmarks and the docs example; no
 * sockets, no real time.
 */

import { Device, type DeviceOptions } from './device.js';
import type { Clock, Endpoint } from './types.js';

/** A manual clock: `now` starts at 0 (monotonic ms), `wall` at `wallStart` and moves with it. */
export class FakeClock implements Clock {
  private t = 0;
  constructor(private readonly wallStart: number = Date.UTC(2024, 0, 1)) {}
  now(): number {
    return this.t;
  }
  wall(): number {
    return this.wallStart + this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

export interface Datagram {
  data: Uint8Array;
  from: Endpoint;
  to: Endpoint;
}

function key(e: Endpoint): string {
  return `${e.address}|${e.port}`;
}

/**
 * Devices attached at endpoints; `sendDatagram` queues a copy, `pump()` delivers queued
 * datagrams (and whatever they cause) until the network is quiet. Packets written to a
 * device's TUN side are collected in `inbox(device)`. A `filter` may drop or observe traffic.
 */
export class MemoryNetwork {
  readonly queue: Datagram[] = [];
  private readonly nodes = new Map<string, { device: Device; endpoint: Endpoint }>();
  private readonly inboxes = new Map<Device, Uint8Array[]>();
  /** Return false to drop a datagram in flight. */
  filter: ((d: Datagram) => boolean) | null = null;
  delivered = 0;

  /** Create a device reachable at `endpoint`; `opts.sinks` is provided by the network. */
  attach(endpoint: Endpoint, opts: Omit<DeviceOptions, 'sinks'>): Device {
    const inbox: Uint8Array[] = [];
    let self: Endpoint = endpoint;
    const device = new Device({
      ...opts,
      sinks: {
        sendDatagram: (data, to) => {
          this.queue.push({ data: data.slice(), from: self, to });
        },
        writePacket: (packet) => {
          inbox.push(packet.slice());
        },
      },
    });
    this.nodes.set(key(endpoint), { device, endpoint });
    this.inboxes.set(device, inbox);
    // Let `move` change the source address seen by others.
    this.movers.set(device, (e) => {
      this.nodes.delete(key(self));
      self = e;
      this.nodes.set(key(e), { device, endpoint: e });
    });
    return device;
  }

  private readonly movers = new Map<Device, (e: Endpoint) => void>();

  /** The device now sends from, and is reachable at, `endpoint` (roaming). */
  move(device: Device, endpoint: Endpoint): void {
    this.movers.get(device)?.(endpoint);
  }

  /** Packets the device wrote to its TUN side so far (the array is live; splice to consume). */
  inbox(device: Device): Uint8Array[] {
    return this.inboxes.get(device) ?? [];
  }

  /** Deliver queued datagrams until none are left (or `max` were delivered); returns how many. */
  pump(max = 10_000): number {
    let n = 0;
    while (this.queue.length > 0 && n < max) {
      const d = this.queue.shift()!;
      n++;
      if (this.filter && !this.filter(d)) continue;
      const node = this.nodes.get(key(d.to));
      if (!node) continue;
      this.delivered++;
      node.device.receiveDatagram(d.data, d.from);
    }
    return n;
  }
}
