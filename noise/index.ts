/**
 * The engine's public API, the package's main entry (`import { Device } from 'wireguard-ts'`):
 * the sans-I/O Device and what it takes and returns, the in-memory network and fake clock for
 * tests, IP text and packet helpers, key helpers, and the JavaScript crypto suites. Only
 * crypto/ and noise/ are re-exported here (no native code, no I/O); the addon's OpenSSL suite is
 * the separate entry 'wireguard-ts/openssl', the UAPI client 'wireguard-ts/uapi'.
 */

export type { AeadProvider } from '../crypto/aead.js';
export type { Blake2sProvider } from '../crypto/blake2s.js';
export { decodeBase64Key, decodeHexKey, encodeBase64Key, encodeHexKey, KeyFormatError } from '../crypto/keys.js';
export { deterministicRng, type Rng, systemRng } from '../crypto/random.js';
export { type CryptoSuite, jsSuite, nobleSuite } from '../crypto/suite.js';
export { generatePrivateKey, publicKey, type X25519Provider } from '../crypto/x25519.js';
export { Device, type DeviceOptions, type DeviceSinks, DROP_REASONS, type DropReason, type PeerState } from './device.js';
export type { HandshakeState } from './handshake.js';
export { formatCidr, formatEndpoint, formatIp, parseCidr, parseEndpoint, parseIp, type ZoneResolver } from './iptext.js';
export { type Datagram, FakeClock, MemoryNetwork } from './memnet.js';
export type { DeviceMetrics, DeviceStats, KeypairAges, PeerMetrics } from './metrics.js';
export { icmpEcho, ipChecksum, ipv4Packet, ipv6Packet } from './packets.js';
export {
  type Cidr,
  type Clock,
  type DeviceChange,
  type DeviceStatus,
  type Endpoint,
  endpointOf,
  type Logger,
  type PeerChange,
  type PeerStatus,
  silentLogger,
  systemClock,
} from './types.js';
