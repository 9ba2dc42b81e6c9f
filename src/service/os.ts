/**
 * What the service needs from the operating system, per container namespace, given as the
 * descriptor the client opened. One interface so that the registry runs the same in tests (over
 * packet pairs and loopback UDP, no root) and in production (tun/: netlink, TUN, UDP).
 */
/** An IP address as bytes (4 or 16). */
export interface IpAddress {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
}

import type { RouteMonitor } from '../../tun/rtmon.js';
import type { Tun } from '../../tun/tun.js';
import type { UdpBind, UdpBindOptions } from '../../tun/udp.js';

/** A network namespace's identity. */
export interface NetnsIdentity {
  /** SO_NETNS_COOKIE, decimal: unique for the host's uptime, never reused. */
  readonly key: string;
  /** The namespace file's inode (what /proc/PID/ns/net shows as net:[INODE]). */
  readonly inode: number;
}

export interface ServiceOs {
  /** The identity of the namespace behind `nsFd`. Throws when `nsFd` is not a network namespace. */
  identify(nsFd: number): NetnsIdentity;
  /** Whether a link `name` exists in that namespace. */
  linkExists(nsFd: number, name: string): boolean;
  /**
   * A TUN device opened in the service's namespace (so its descriptor holds no reference to
   * the container's namespace) and moved into the namespace of `nsFd` as `name`, MTU `mtu`.
   * Throws with `.code` EEXIST when the name is taken there; nothing is left behind on failure.
   */
  createTun(nsFd: number, name: string, mtu: number): Tun;
  /** Add `address`/`prefix` (host bits kept: "10.0.8.1/31" is not "10.0.8.0/31") to link `name`. */
  addAddress(nsFd: number, name: string, address: IpAddress, prefix: number): void;
  setUp(nsFd: number, name: string): void;
  /** Delete link `name` of that namespace (absent: no error). */
  deleteLink(nsFd: number, name: string): void;
  /** The process's route monitor, shared by every device (sticky sources follow route changes); absent: none. */
  openRouteMonitor?(): RouteMonitor;
  /** Bind a UDP port in the service's own namespace. Throws with `.code` (EADDRINUSE). */
  openUdp(port: number, options: UdpBindOptions): UdpBind;
}
