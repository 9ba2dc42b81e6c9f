/**
 * Types shared across the engine, the I/O layers and the UAPI. This file is the contract
 * between modules: keep it small and stable.
 */

/** A UDP endpoint. Immutable: the engine keeps references to these objects. */
export interface Endpoint {
  /** Textual IP address ("192.0.2.1" or "2001:db8::1", no brackets, no zone). */
  readonly address: string;
  readonly port: number;
  /** 4 or 6: the family of `address`. */
  readonly family: 4 | 6;
  /**
   * Sticky source: the local address the peer last sent to (learned from IP_PKTINFO /
   * IPV6_PKTINFO); replies leave from it. Absent when unknown; the routing table decides then.
   */
  readonly localAddress?: string;
  /** Interface index the datagram arrived on (IPv6 link-local and PKTINFO use). 0/absent = any. */
  readonly ifindex?: number;
}

/**
 * An Endpoint object. The UDP layer and the JIT warm-up both make theirs here, so that they
 * have the same shapes (hidden classes) and code optimized on one is not thrown away on the other.
 */
export function endpointOf(address: string, port: number, family: 4 | 6, localAddress?: string, ifindex = 0): Endpoint {
  return localAddress !== undefined
    ? { address, port, family, localAddress, ifindex }
    : ifindex !== 0
      ? { address, port, family, ifindex }
      : { address, port, family };
}

/** An IP prefix, e.g. 10.0.0.0/8 or 2001:db8::/32. `bytes` has 4 or 16 bytes, host bits zero. */
export interface Cidr {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
  readonly prefix: number;
}

/** Time sources, injectable so tests run on a fake clock. */
export interface Clock {
  /** Monotonic milliseconds (fractions allowed); only differences matter. */
  now(): number;
  /** Wall-clock milliseconds since the Unix epoch (TAI64N timestamps, last-handshake times). */
  wall(): number;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wall: () => Date.now(),
};

/** Logging in wireguard-go's style (LOG_LEVEL=verbose|error|silent). Never pass key material. */
export interface Logger {
  verbose(msg: string): void;
  error(msg: string): void;
}

export const silentLogger: Logger = { verbose() {}, error() {} };

/** Configuration change for one peer (one `public_key=` section of a UAPI set). */
export interface PeerChange {
  publicKey: Uint8Array;
  /** remove=true: delete the peer; the other fields are ignored. */
  remove?: boolean;
  /** update_only=true: change the peer only if it already exists. */
  updateOnly?: boolean;
  /** A 32-byte key; all zeros (or null) clears it. */
  presharedKey?: Uint8Array | null;
  endpoint?: Endpoint;
  /** Seconds, 0 = off. Setting a non-zero value on an up device sends a keepalive at once. */
  persistentKeepalive?: number;
  /** replace_allowed_ips=true: drop the peer's allowed IPs before adding `allowedIps`. */
  replaceAllowedIps?: boolean;
  allowedIps: Cidr[];
}

/** A whole UAPI set transaction, validated before anything is applied. */
export interface DeviceChange {
  /** A 32-byte private key; all zeros (or null) removes it. */
  privateKey?: Uint8Array | null;
  listenPort?: number;
  fwmark?: number;
  replacePeers?: boolean;
  peers: PeerChange[];
}

export interface PeerStatus {
  publicKey: Uint8Array;
  presharedKey: Uint8Array | null;
  endpoint: Endpoint | null;
  persistentKeepalive: number;
  allowedIps: Cidr[];
  /** Wall-clock time of the last completed handshake; 0 when none. */
  lastHandshakeSec: number;
  lastHandshakeNsec: number;
  rxBytes: number;
  txBytes: number;
}

/** A peer's status with nothing known yet but its key (`extra` overrides fields). */
export function peerStatus(publicKey: Uint8Array, extra: Partial<PeerStatus> = {}): PeerStatus {
  return {
    publicKey,
    presharedKey: null,
    endpoint: null,
    persistentKeepalive: 0,
    allowedIps: [],
    lastHandshakeSec: 0,
    lastHandshakeNsec: 0,
    rxBytes: 0,
    txBytes: 0,
    ...extra,
  };
}

export interface DeviceStatus {
  privateKey: Uint8Array | null;
  listenPort: number;
  fwmark: number;
  peers: PeerStatus[];
}
