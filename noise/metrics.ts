/**
 * A read-only snapshot of a device's counters for monitoring (src/metrics/ renders it as
 * Prometheus text). Taken on demand, never on the data path: the data path only increments the
 * plain numbers this reads. It holds no key material but public keys.
 */
import type { DropReason } from './drops.js';
import type { Keypair } from './keypair.js';
import type { Peer } from './peer.js';
import type { Endpoint } from './types.js';

/** Counters of the device's traffic (all monotonic). */
export interface DeviceStats {
  /** Datagrams offered to receiveDatagram, and their bytes. */
  datagramsIn: number;
  bytesIn: number;
  /** Datagrams handed to sinks.sendDatagram, and their bytes. */
  datagramsOut: number;
  bytesOut: number;
  /** Packets offered to sendPacket, and their bytes. */
  packetsIn: number;
  packetBytesIn: number;
  /** Packets handed to sinks.writePacket, and their bytes. */
  packetsOut: number;
  packetBytesOut: number;
  /** Authenticated keepalives received. */
  keepalivesIn: number;
  /** Handshake messages consumed (valid initiations and responses). */
  handshakesIn: number;
  /** Cookie replies sent (under load) and accepted. */
  cookieRepliesOut: number;
  cookieRepliesIn: number;
}

export interface KeypairAges {
  /** Seconds since each slot's keypair was derived; null for an empty slot. */
  previous: number | null;
  current: number | null;
  next: number | null;
}

export interface PeerMetrics {
  /** A copy of the peer's public key. */
  publicKey: Uint8Array;
  endpoint: Endpoint | null;
  /** As the UAPI's rx_bytes / tx_bytes (and `wg show` transfer). */
  rxBytes: number;
  txBytes: number;
  /** The datagrams those bytes belong to. */
  rxPackets: number;
  txPackets: number;
  handshakes: number;
  handshakeFailures: number;
  /** Wall-clock ms of the last completed handshake, 0 when none (the UAPI's last_handshake_time). */
  lastHandshakeWall: number;
  /** Seconds since the last completed handshake on the device's monotonic clock; null when none. */
  lastHandshakeAge: number | null;
  keypairAges: KeypairAges;
  /** Packets waiting for a session. */
  stagedPackets: number;
}

export interface DeviceMetrics {
  /** A copy of the device's public key; null without a private key. */
  publicKey: Uint8Array | null;
  underLoad: boolean;
  stats: Readonly<DeviceStats>;
  drops: Readonly<Record<DropReason, number>>;
  peers: PeerMetrics[];
}

const age = (kp: Keypair | null, now: number): number | null => (kp === null ? null : (now - kp.birth) / 1000);

/** One peer's figures at monotonic time `now`. */
export function peerMetrics(p: Peer, now: number): PeerMetrics {
  const kp = p.keypairs;
  return {
    publicKey: p.publicKey.slice(),
    endpoint: p.endpoint,
    rxBytes: p.rxBytes,
    txBytes: p.txBytes,
    rxPackets: p.rxPackets,
    txPackets: p.txPackets,
    handshakes: p.handshakes,
    handshakeFailures: p.handshakeFailures,
    lastHandshakeWall: p.lastHandshakeWall,
    lastHandshakeAge: p.lastHandshakeAt === Number.NEGATIVE_INFINITY ? null : (now - p.lastHandshakeAt) / 1000,
    keypairAges: { previous: age(kp.previous, now), current: age(kp.current, now), next: age(kp.next, now) },
    stagedPackets: p.stagedCount,
  };
}
