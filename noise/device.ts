/**
 * The WireGuard device core, sans-I/O: peers keyed by public key, the receiver-index table,
 * cryptokey routing (allowed IPs) both ways, endpoint roaming, cookies and rate limiting under
 * load, the timer state machine, and counters of everything dropped. It never opens a socket,
 * reads a clock or a random source except through what it is given; see docs/ENGINE.md.
 *
 * I/O contract: `sendPacket` (TUN → network) and `receiveDatagram` (network → TUN) call the
 * sinks synchronously. Buffers passed in or out are only valid during the call. Nothing here
 * throws on network or TUN input; a sink that throws is counted as 'sink-error' and logged.
 */
import { type AeadProvider, counterNonce } from '../crypto/aead.js';
import { encodeBase64Key, equalBytes, isZero } from '../crypto/keys.js';
import { type Rng, systemRng } from '../crypto/random.js';
import { type CryptoSuite, jsSuite } from '../crypto/suite.js';
import { clampPrivateKey } from '../crypto/x25519.js';
import { AllowedIps } from './allowedips.js';
import {
  COOKIE_LEN,
  MAX_PEERS,
  MAX_PLAINTEXT_SIZE,
  MESSAGE_COOKIE_REPLY,
  MESSAGE_INITIATION,
  MESSAGE_RESPONSE,
  MESSAGE_TRANSPORT,
  TRANSPORT_HEADER_SIZE,
  TRANSPORT_MIN_SIZE,
  UNDER_LOAD_HANDSHAKES_PER_SECOND,
  UNDER_LOAD_HOLD,
} from './constants.js';
import { type CookieCache, CookieChecker, newCookieCache } from './cookie.js';
import { type DropReason, emptyDrops } from './drops.js';
import { consumeInitiation, type HandshakeState, StaticIdentity } from './handshake.js';
import { HandshakeBudget, type HandshakeBudgetOptions } from './handshakebudget.js';
import { HandshakeQueue, type HandshakeQueueLimits } from './handshakequeue.js';
import { IndexTable } from './indextable.js';
import { IPV4_DST, IPV4_SRC, IPV6_DST, IPV6_SRC, innerPacketLength, ipFamily } from './ippacket.js';
import { parseIp } from './iptext.js';
import { CARRIED, LOOP, LoopGuard, type LoopParty, OwnDatagrams } from './loopguard.js';
import { messageType, parseCookieReply, parseInitiation, parseResponse, RESPONSE, readU32, readU64, TRANSPORT } from './messages.js';
import { type DeviceMetrics, type DeviceStats, type PeerMetrics, peerMetrics } from './metrics.js';
import { Peer, type PeerHost } from './peer.js';
import { Ratelimiter } from './ratelimiter.js';
import { Scratch } from './scratch.js';
import {
  type Clock,
  type DeviceChange,
  type DeviceStatus,
  type Endpoint,
  type Logger,
  type PeerChange,
  type PeerStatus,
  silentLogger,
  systemClock,
} from './types.js';

export type { DropReason } from './drops.js';
export { DROP_REASONS } from './drops.js';

/** Where the device's output goes. Both are called synchronously; `data`/`packet` are only valid during the call. */
export interface DeviceSinks {
  /** Send a UDP datagram (a WireGuard message) to `to`. */
  sendDatagram(data: Uint8Array, to: Endpoint): void;
  /** Write a decrypted IP packet to the TUN side. */
  writePacket(packet: Uint8Array): void;
}

export interface DeviceOptions {
  sinks: DeviceSinks;
  /** Monotonic and wall time (default: performance.now / Date.now). */
  clock?: Clock;
  /** Randomness for ephemeral keys, indices, jitter and cookie secrets (default: OS CSPRNG). */
  rng?: Rng;
  /**
   * ChaCha20-Poly1305, X25519 and BLAKE2s for the data path and handshakes (default: crypto's
   * jsSuite; the daemon passes the addon's, tun/openssl.ts). All suites give identical bytes.
   */
  crypto?: CryptoSuite;
  logger?: Logger;
  /**
   * Cookie mode: 'auto' (default) = under load when handshake messages arrive at
   * UNDER_LOAD_HANDSHAKES_PER_SECOND or more (see docs/ENGINE.md); true/false forces it.
   */
  underLoad?: 'auto' | boolean;
  /** The data path's buffers; devices of one process may share one (default: a Scratch of their own). */
  scratch?: Scratch;
  /**
   * The tunnel MTU: padding never grows a packet's plaintext beyond it (as the kernel).
   * Default: no clamp below the 65503-byte maximum.
   */
  mtu?: number;
  /**
   * Under load, how many handshake messages are processed per turn (between tick() calls) and
   * what share of the clock's time they may take; the rest waits in the handshake queue for
   * tick() (see handshakebudget.ts).
   */
  handshakeBudget?: Partial<HandshakeBudgetOptions>;
  /** Bounds of the handshake queue (see handshakequeue.ts). */
  handshakeQueue?: Partial<HandshakeQueueLimits>;
  /**
   * The registry of UDP ports the devices of this process send from, shared by them so that a
   * loop through several of them is found too (see loopguard.ts; default: this device's own).
   */
  ownDatagrams?: OwnDatagrams;
}

/** Introspection of one peer's protocol state (tests, debugging). Contains no key material. */
export interface PeerState {
  handshake: HandshakeState;
  keypairs: { previous: boolean; current: boolean; next: boolean };
  /** Whether the current keypair was derived by us as the initiator. */
  currentIsInitiator: boolean | null;
  stagedPackets: number;
  handshakeAttempts: number;
  endpoint: Endpoint | null;
  /** Monotonic ms of the peer's next timer deadline (Infinity: none). */
  nextTimer: number;
}

function keyId(k: Uint8Array): string {
  return Buffer.from(k.buffer, k.byteOffset, k.length).toString('hex');
}

/** wireguard-go's short peer name: peer(abcd…wxyz) of the base64 public key. */
function peerName(k: Uint8Array): string {
  const b = encodeBase64Key(k);
  return `peer(${b.slice(0, 4)}…${b.slice(39, 43)})`;
}

type HandshakeType = typeof MESSAGE_INITIATION | typeof MESSAGE_RESPONSE;

/** A source as the cookie and the rate limiters see it. */
interface SourceInfo {
  /** The address bytes (4 or 16). */
  readonly ip: Uint8Array;
  /** Address bytes || port (big endian): what the cookie is made of. */
  readonly cookieInput: Uint8Array;
  /** The per-source key of the limiters and the queue (IPv4 address, IPv6 /64). */
  readonly key: string;
  readonly cookie: CookieCache;
}

function sourceInfoOf(e: Endpoint): SourceInfo {
  const parsed = parseIp(e.address);
  const ip = parsed ? parsed.bytes : new TextEncoder().encode(e.address);
  const cookieInput = new Uint8Array(ip.length + 2);
  cookieInput.set(ip);
  cookieInput[ip.length] = (e.port >>> 8) & 0xff;
  cookieInput[ip.length + 1] = e.port & 0xff;
  return { ip, cookieInput, key: Ratelimiter.keyOf(ip), cookie: newCookieCache() };
}

/** Whether mac2 (the last 16 bytes) is all zeros: what a sender without a cookie sends. */
function zeroMac2(msg: Uint8Array): boolean {
  let d = 0;
  for (let i = msg.length - COOKIE_LEN; i < msg.length; i++) d |= msg[i]!;
  return d === 0;
}

function endpointKey(e: Endpoint): string {
  return `${e.address}|${e.port}`;
}

/** A handshake message waiting in the queue (a copy of the datagram). */
interface QueuedHandshake {
  readonly type: HandshakeType;
  readonly data: Uint8Array;
  readonly from: Endpoint;
}

/** IP protocols / next headers of packets that may be our own datagrams: UDP, IPv6 fragment. */
const LOOP_CANDIDATE = new Uint8Array(256);
LOOP_CANDIDATE[17] = 1;
LOOP_CANDIDATE[44] = 1;

/** Under load, the set of peers' endpoints (for the queue's first lane) is rebuilt this often. */
const KNOWN_ENDPOINTS_REFRESH = 1_000;

/**
 * The handshake queue's lanes, served in this order: messages we expect (see isExpected), from
 * sources that were quiet (their rate-limit bucket was full: a peer's occasional handshake, not
 * a flooder's stream), and the rest.
 */
const LANE_EXPECTED = 0;
const LANE_QUIET = 1;
const LANE_REST = 2;

export class Device {
  /** Dropped inputs by reason. */
  readonly drops: Record<DropReason, number> = emptyDrops();
  readonly stats: DeviceStats = {
    datagramsIn: 0,
    bytesIn: 0,
    datagramsOut: 0,
    bytesOut: 0,
    packetsIn: 0,
    packetBytesIn: 0,
    packetsOut: 0,
    packetBytesOut: 0,
    keepalivesIn: 0,
    handshakesIn: 0,
    cookieRepliesOut: 0,
    cookieRepliesIn: 0,
  };

  private readonly sinks: DeviceSinks;
  private readonly clock: Clock;
  private readonly rng: Rng;
  private readonly crypto: CryptoSuite;
  private readonly aead: AeadProvider;
  private readonly logger: Logger;
  private underLoadMode: 'auto' | boolean;
  private paddingLimit: number;

  private identity: StaticIdentity | null = null;
  private listenPort = 0;
  private fwmark = 0;
  private readonly peers = new Map<string, Peer>();
  private readonly indices: IndexTable<Peer>;
  private readonly allowedIps = new AllowedIps<Peer>();
  private readonly checker: CookieChecker;
  private readonly ratelimiter = new Ratelimiter();
  /** Cookie replies per source under load: the same rate as handshakes, in a bucket of its own. */
  private readonly cookieLimiter = new Ratelimiter();
  private readonly sourceInfo = new WeakMap<Endpoint, SourceInfo>();
  private readonly queue: HandshakeQueue<QueuedHandshake>;
  private readonly budget: HandshakeBudget;
  private knownEndpoints: Set<string> | null = null;
  /** Remote indices of sessions (index | 0 -> peer), to recognize our own transport messages. */
  private readonly remoteIndices = new Map<number, Peer>();
  private readonly loopParty: LoopParty;
  private readonly loops: LoopGuard;
  private loopLoggedAt = Number.NEGATIVE_INFINITY;
  private loopsUnlogged = 0;
  private knownEndpointsAt = Number.NEGATIVE_INFINITY;
  private readonly host: PeerHost;
  private closed = false;

  // Under-load estimate: handshake messages in the current and the previous 1 s window.
  private loadWindow = Number.NEGATIVE_INFINITY;
  private loadCount = 0;
  private loadPrevCount = 0;
  private lastUnderLoad = Number.NEGATIVE_INFINITY;

  // The data path's buffers (see scratch.ts): per device unless the owner shares one.
  private readonly scratch: Scratch;

  constructor(opts: DeviceOptions) {
    this.sinks = opts.sinks;
    this.clock = opts.clock ?? systemClock;
    this.rng = opts.rng ?? systemRng;
    this.crypto = opts.crypto ?? jsSuite;
    this.aead = this.crypto.aead;
    this.logger = opts.logger ?? silentLogger;
    this.underLoadMode = opts.underLoad ?? 'auto';
    this.paddingLimit = opts.mtu !== undefined && opts.mtu > 0 ? Math.min(opts.mtu, MAX_PLAINTEXT_SIZE) : MAX_PLAINTEXT_SIZE;
    const scratch = opts.scratch ?? new Scratch();
    this.scratch = scratch;
    this.indices = new IndexTable<Peer>(this.rng);
    this.checker = new CookieChecker(this.rng, this.crypto.blake2s, this.crypto.aead);
    this.queue = new HandshakeQueue<QueuedHandshake>(3, opts.handshakeQueue);
    this.budget = new HandshakeBudget(opts.handshakeBudget);
    this.loopParty = {
      ownsMessage: (w, off) => this.ownsMessage(w, off),
      carried: (receiver, counter) => this.loops.carried(receiver, counter),
    };
    this.loops = new LoopGuard(this.loopParty, opts.ownDatagrams ?? new OwnDatagrams());
    const self = this;
    this.host = {
      clock: this.clock,
      rng: this.rng,
      crypto: this.crypto,
      logger: this.logger,
      get identity() {
        return self.identity;
      },
      indices: this.indices,
      paddingLimit: this.paddingLimit,
      txNonce: scratch.txNonce,
      txBuffer: (n) => scratch.txBuffer(n),
      txSealView: (n) => scratch.txSealView(n),
      transmit: (data, to) => this.transmit(data, to),
      drop: (reason, count = 1) => {
        this.drops[reason] += count;
      },
    };
  }

  /** The device's public key (null without a private key). */
  get publicKey(): Uint8Array | null {
    return this.identity ? this.identity.publicKey.slice() : null;
  }

  /**
   * The tunnel MTU changed (`ip link set mtu`): padding follows it, as the kernel pads to the
   * device's current MTU. 0 or less removes the clamp.
   */
  setMtu(mtu: number): void {
    this.paddingLimit = mtu > 0 ? Math.min(mtu, MAX_PLAINTEXT_SIZE) : MAX_PLAINTEXT_SIZE;
    this.host.paddingLimit = this.paddingLimit;
  }

  /** Whether handshake messages currently need a valid mac2 (cookie). */
  get underLoad(): boolean {
    return this.underLoadMode === 'auto' ? this.clock.now() - this.lastUnderLoad < UNDER_LOAD_HOLD : this.underLoadMode;
  }

  /** Change the cookie mode (see DeviceOptions.underLoad). */
  setUnderLoad(mode: 'auto' | boolean): void {
    this.underLoadMode = mode;
  }

  // ---------------------------------------------------------------------------------------
  // Configuration

  /**
   * Apply a validated UAPI set transaction, in wireguard-go's order: private key, listen port,
   * fwmark, replace_peers, then each peer. Peers with the device's own public key are ignored
   * (and an existing one is removed when the private key changes to its key).
   */
  apply(change: DeviceChange): void {
    if (this.closed) return;
    if (change.privateKey !== undefined) this.setPrivateKey(change.privateKey);
    if (change.listenPort !== undefined) this.listenPort = change.listenPort;
    if (change.fwmark !== undefined) this.fwmark = change.fwmark;
    if (change.replacePeers) {
      for (const p of this.peers.values()) this.removePeer(p);
    }
    for (const pc of change.peers) this.applyPeer(pc);
  }

  /**
   * The key is stored clamped (RFC 7748), as the kernel stores and reports it (noise.c
   * wg_noise_set_static_identity_private_key) and wireguard-go's UAPI parser clamps it:
   * X25519 clamps anyway, so the public key and every DH are the same, and `wg show` prints
   * what it would print for the kernel. Setting a key whose clamped form is the current key
   * changes nothing (as in wireguard-go; the kernel compares the unclamped bytes and would
   * start new sessions). An all-zero key (before clamping) removes the identity.
   */
  private setPrivateKey(key: Uint8Array | null): void {
    const k = key && key.length === 32 && !isZero(key) ? clampPrivateKey(key.slice()) : null;
    const old = this.identity;
    if (old === null && k === null) return;
    if (old !== null && k !== null && equalBytes(old.privateKey, k)) {
      k.fill(0); // our clamped copy: the key in use stays
      return;
    }
    const identity = k ? new StaticIdentity(k, this.crypto) : null;
    if (identity) {
      const same = this.peers.get(keyId(identity.publicKey));
      if (same) {
        this.logger.verbose(`${peerName(same.publicKey)} - Removing: it has the device's own public key`);
        this.removePeer(same);
      }
    }
    this.identity = identity;
    this.checker.setPublicKey(identity ? identity.publicKey : null);
    for (const p of this.peers.values()) p.identityChanged(identity);
    old?.zero();
  }

  private applyPeer(pc: PeerChange): void {
    if (this.identity && equalBytes(pc.publicKey, this.identity.publicKey)) {
      this.logger.verbose(`${peerName(pc.publicKey)} - Ignoring peer with the device's own public key`);
      return;
    }
    const id = keyId(pc.publicKey);
    let peer = this.peers.get(id);
    if (pc.remove) {
      if (peer) this.removePeer(peer);
      return;
    }
    if (!peer) {
      if (pc.updateOnly) return;
      if (this.peers.size >= MAX_PEERS) {
        this.logger.error(`${peerName(pc.publicKey)} - Too many peers; not added`);
        return;
      }
      peer = new Peer(this.host, pc.publicKey);
      this.peers.set(id, peer);
      this.logger.verbose(`${peerName(pc.publicKey)} - Created`);
    }
    if (pc.presharedKey !== undefined) peer.handshake.setPresharedKey(pc.presharedKey);
    if (pc.endpoint) peer.endpoint = pc.endpoint;
    if (pc.replaceAllowedIps) this.allowedIps.removeValue(peer);
    for (const cidr of pc.allowedIps) this.allowedIps.insert(cidr, peer);
    let keepaliveOn = false;
    if (pc.persistentKeepalive !== undefined) {
      const old = peer.persistentKeepalive;
      peer.persistentKeepalive = pc.persistentKeepalive;
      keepaliveOn = old === 0 && pc.persistentKeepalive !== 0;
    }
    if (this.identity) {
      // As wireguard-go after a peer's configuration: keepalive at once if just enabled, then
      // flush anything that was waiting (for an endpoint or a key).
      if (keepaliveOn) peer.sendKeepalive();
      peer.sendStaged();
    }
  }

  private removePeer(peer: Peer): void {
    this.peers.delete(keyId(peer.publicKey));
    this.allowedIps.removeValue(peer);
    peer.destroy();
    this.logger.verbose(`${peerName(peer.publicKey)} - Removed`);
  }

  /**
   * The UDP layer could not send from `ep.localAddress` (the address went away, so the routing
   * table chose instead): forget that sticky source for every peer using this endpoint, as the
   * kernel's wg_socket_clear_peer_endpoint_src does, so later sends go straight to the route.
   */
  clearEndpointSource(ep: Endpoint): void {
    for (const p of this.peers.values()) {
      const e = p.endpoint;
      if (e !== null && e.address === ep.address && e.port === ep.port && e.localAddress === ep.localAddress) p.clearEndpointSource();
    }
  }

  /** The distinct endpoints of peers that have a sticky source (localAddress): for the owner's route checks. */
  stickyEndpoints(): Endpoint[] {
    const out = new Set<Endpoint>();
    for (const p of this.peers.values()) if (p.endpoint?.localAddress !== undefined) out.add(p.endpoint);
    return [...out];
  }

  /** The configuration and counters, as the UAPI `get` reports them. Keys are copies. */
  status(): DeviceStatus {
    const peers: PeerStatus[] = [];
    for (const p of this.peers.values()) {
      const wall = p.lastHandshakeWall;
      const sec = Math.floor(wall / 1000);
      peers.push({
        publicKey: p.publicKey.slice(),
        presharedKey: p.handshake.hasPresharedKey ? p.handshake.presharedKey.slice() : null,
        endpoint: p.endpoint,
        persistentKeepalive: p.persistentKeepalive,
        allowedIps: this.allowedIps.cidrsOf(p),
        lastHandshakeSec: sec,
        lastHandshakeNsec: wall === 0 ? 0 : Math.floor((wall - sec * 1000) * 1e6),
        rxBytes: p.rxBytes,
        txBytes: p.txBytes,
      });
    }
    return {
      privateKey: this.identity ? this.identity.privateKey.slice() : null,
      listenPort: this.listenPort,
      fwmark: this.fwmark,
      peers,
    };
  }

  /** Protocol state of one peer, or null if there is no such peer. */
  inspectPeer(publicKey: Uint8Array): PeerState | null {
    const p = this.peers.get(keyId(publicKey));
    if (!p) return null;
    const kp = p.keypairs;
    return {
      handshake: p.handshake.state,
      keypairs: { previous: kp.previous !== null, current: kp.current !== null, next: kp.next !== null },
      currentIsInitiator: kp.current ? kp.current.isInitiator : null,
      stagedPackets: p.stagedCount,
      handshakeAttempts: p.timers.handshakeAttempts,
      endpoint: p.endpoint,
      nextTimer: p.timers.next,
    };
  }

  /** Every counter of the device and its peers, for monitoring (copies; no private key material). */
  metrics(): DeviceMetrics {
    const now = this.clock.now();
    const peers: PeerMetrics[] = [];
    for (const p of this.peers.values()) peers.push(peerMetrics(p, now));
    return { publicKey: this.publicKey, underLoad: this.underLoad, stats: { ...this.stats }, drops: { ...this.drops }, peers };
  }

  // ---------------------------------------------------------------------------------------
  // Timers

  /**
   * Run the due timers of every peer, and queued handshakes as far as the budget allows (this
   * begins a new turn of the budget); returns ms until the next deadline (Infinity if none),
   * 0 when queued handshakes wait: call again soon, after reading what else is pending.
   */
  tick(): number {
    if (this.closed) return Number.POSITIVE_INFINITY;
    this.budget.newTurn();
    let next = Number.POSITIVE_INFINITY;
    let now = this.clock.now();
    try {
      if (this.queue.size() > 0) {
        this.drainQueue();
        now = this.clock.now();
      }
      for (const p of this.peers.values()) {
        const d = p.tick(now);
        if (d < next) next = d;
      }
    } catch (e) {
      this.internalError(e);
    }
    const delay = next === Number.POSITIVE_INFINITY ? next : Math.max(0, next - now);
    // Handshakes still queued: come back as soon as the budget allows (0: at once).
    return this.queue.size() > 0 ? Math.min(delay, this.budget.wait(now)) : delay;
  }

  /** Handshake messages waiting for the budget (see DeviceOptions.handshakeBudget). */
  get queuedHandshakes(): number {
    return this.queue.size();
  }

  // ---------------------------------------------------------------------------------------
  // TUN → network

  /** An IP packet from the TUN side: route it by destination to a peer and send it. */
  sendPacket(packet: Uint8Array): void {
    this.stats.packetsIn++;
    this.stats.packetBytesIn += packet.length;
    if (this.closed) {
      this.drops.closed++;
      return;
    }
    const n = packet.length;
    const fam = ipFamily(packet, n);
    if (fam === 0 || n > MAX_PLAINTEXT_SIZE) {
      this.drops['invalid-outbound-packet']++;
      return;
    }
    const peer = this.allowedIps.lookup(fam, packet, fam === 4 ? IPV4_DST : IPV6_DST);
    if (peer === undefined) {
      this.drops['no-route']++;
      return;
    }
    if (peer.endpoint === null) {
      this.drops['no-endpoint']++;
      return;
    }
    try {
      // UDP (or a fragment header): it may be one of our own datagrams coming back. One table
      // load for every packet, so that the JIT sees the same test whatever the protocol.
      if (LOOP_CANDIDATE[packet[fam === 4 ? 9 : 6]!] === 1 && this.loops.registry.size > 0) {
        const verdict = this.loops.check(packet, fam, n);
        if (verdict === LOOP) {
          this.loopDropped();
          return;
        }
        if (verdict === CARRIED) {
          this.sendCarried(peer, packet);
          return;
        }
      }
      peer.send(packet);
    } catch (e) {
      this.internalError(e);
    }
  }

  /** Count a routing-loop drop, and say so (a misconfiguration) at most once a second. */
  private loopDropped(): void {
    this.drops['routing-loop']++;
    this.loopsUnlogged++;
    const now = this.clock.now();
    if (now - this.loopLoggedAt < 1000) return;
    this.logger.error(`Routing loop: dropped ${this.loopsUnlogged} of our own datagrams coming back through the interface (an endpoint is routed into it)`);
    this.loopLoggedAt = now;
    this.loopsUnlogged = 0;
  }

  /** Send another device's datagram (nested), remembering which of our messages carried it. */
  private sendCarried(peer: Peer, packet: Uint8Array): void {
    const kp = peer.keypairs.current;
    const counter = kp === null ? -1 : kp.sendCounter;
    peer.send(packet);
    if (kp !== null && kp === peer.keypairs.current && kp.sendCounter === counter + 1) this.loops.recordCarry(kp.remoteIndex, counter);
  }

  /**
   * The UDP port this device's datagrams leave from (0: none): what routing-loop detection looks
   * for in packets from the TUN (see loopguard.ts). The owner of the socket tells it.
   */
  setBoundPort(port: number): void {
    if (!this.closed) this.loops.registry.bind(this.loopParty, port); // port 0 unbinds
  }

  /** Whether the WireGuard message at `w[off..]` is one this device sent (loopguard.ts, step 3). */
  private ownsMessage(w: Uint8Array, off: number): boolean {
    const type = w[off];
    const index = readU32(w, off + 4);
    if (type === MESSAGE_INITIATION) return this.indices.get(index)?.kind === 'handshake';
    if (type === MESSAGE_RESPONSE) return this.indices.get(index) !== undefined;
    if (type !== MESSAGE_TRANSPORT) return false;
    const peer = this.remoteIndices.get(index | 0);
    if (peer === undefined) return false;
    return peer.keypairs.sent(index, readU64(w, off + 8));
  }

  /** A new session's remote index, for ownsMessage; stale entries go when the map outgrows the peers. */
  private rememberRemoteIndex(index: number, peer: Peer): void {
    if (this.remoteIndices.size >= 4 * this.peers.size + 64) {
      for (const [i, p] of this.remoteIndices) if (!p.keypairs.hasRemoteIndex(i >>> 0)) this.remoteIndices.delete(i);
    }
    this.remoteIndices.set(index | 0, peer);
  }

  // ---------------------------------------------------------------------------------------
  // Network → TUN

  /** A UDP datagram and its source. Never throws; anything invalid is dropped and counted. */
  receiveDatagram(data: Uint8Array, from: Endpoint): void {
    this.stats.datagramsIn++;
    this.stats.bytesIn += data.length;
    if (this.closed) {
      this.drops.closed++;
      return;
    }
    const type = messageType(data);
    try {
      switch (type) {
        case MESSAGE_TRANSPORT:
          this.receiveTransport(data, from);
          return;
        case MESSAGE_INITIATION:
        case MESSAGE_RESPONSE:
          this.receiveHandshake(type, data, from);
          return;
        case MESSAGE_COOKIE_REPLY:
          this.receiveCookieReply(data);
          return;
        default:
          this.drops[type]++;
      }
    } catch (e) {
      this.internalError(e);
    }
  }

  private receiveTransport(data: Uint8Array, from: Endpoint): void {
    const entry = this.indices.get(readU32(data, TRANSPORT.receiver));
    if (entry === undefined || entry.kind !== 'keypair') {
      this.drops['unknown-index']++;
      return;
    }
    const kp = entry.keypair;
    const peer = entry.peer;
    const now = this.clock.now();
    if (!kp.canReceive(now)) {
      kp.recvValid = false;
      this.drops['expired-keypair']++;
      return;
    }
    const counter = readU64(data, TRANSPORT.counter);
    if (!kp.replay.check(counter)) {
      this.drops['replayed-counter']++;
      return;
    }
    const n = data.length - TRANSPORT_MIN_SIZE;
    const scratch = this.scratch;
    const nested = scratch.rxDepth !== 0;
    const out = nested ? new Uint8Array(n) : scratch.rxView(n);
    const nonce = nested ? counterNonce(counter) : counterNonce(counter, scratch.rxNonce);
    if (!this.aead.open(kp.recvKey, nonce, data.subarray(TRANSPORT_HEADER_SIZE), undefined, out)) {
      this.drops['invalid-tag']++;
      return;
    }
    if (!kp.replay.update(counter)) {
      this.drops['replayed-counter']++;
      return;
    }
    scratch.rxDepth++;
    try {
      peer.transportReceived(kp, from, data.length, now);
      if (n === 0) {
        this.stats.keepalivesIn++;
        return;
      }
      peer.timers.dataReceived(now);
      const len = innerPacketLength(out, n);
      if (len < 0) {
        this.drops['invalid-inner-packet']++;
        return;
      }
      const fam = out[0]! >>> 4 === 4 ? 4 : 6;
      if (this.allowedIps.lookup(fam, out, fam === 4 ? IPV4_SRC : IPV6_SRC) !== peer) {
        this.drops['disallowed-source']++;
        return;
      }
      const packet = len === n ? out : nested ? out.subarray(0, len) : scratch.rxView(len);
      this.stats.packetsOut++;
      this.stats.packetBytesOut += len;
      try {
        this.sinks.writePacket(packet);
      } catch (e) {
        this.sinkError(e);
      }
    } finally {
      scratch.rxDepth--;
    }
  }

  /**
   * A handshake message, in the order that makes a flood cheapest to turn away: the load count
   * and mac1 (one keyed hash) first; under load mac2 (a message without a valid one gets a
   * cookie reply, at most RATELIMIT_PACKETS_PER_SECOND per source) and the source's handshake
   * rate. What passes is processed at once while the handshake budget allows (always when not
   * under load), else queued fairly by source (see handshakequeue.ts) for tick().
   */
  private receiveHandshake(type: HandshakeType, data: Uint8Array, from: Endpoint): void {
    const now = this.clock.now();
    const underLoad = this.measureLoad(now);
    if (this.identity === null) {
      this.drops['no-private-key']++;
      return;
    }
    if (!this.checker.checkMac1(data)) {
      this.drops['invalid-mac1']++;
      return;
    }
    if (!underLoad) {
      this.processHandshake(type, data, from, now);
      return;
    }
    const src = this.sourceOf(from);
    const zero = zeroMac2(data);
    // A source that has used up both its handshakes and its cookie replies gets nothing
    // whatever its mac2 says: no need to compute it.
    if (!zero && !this.ratelimiter.wouldAllow(src.key, now) && !this.cookieLimiter.wouldAllow(src.key, now)) {
      this.drops.ratelimited++;
      return;
    }
    // A sender without a cookie sends mac2 as zeros: no need to compute a MAC to know.
    if (zero || !this.checker.checkMac2(data, src.cookieInput, now, src.cookie)) {
      if (!this.cookieLimiter.allow(src.ip, now, src.key)) {
        this.drops['cookie-ratelimited']++;
        return;
      }
      const reply = this.checker.createReply(data, readU32(data, 4), src.cookieInput, now, src.cookie);
      if (reply) {
        this.stats.cookieRepliesOut++;
        this.transmit(reply, from);
      }
      this.drops['cookie-sent']++;
      return;
    }
    const quiet = this.ratelimiter.isQuiet(src.key, now);
    if (!this.ratelimiter.allow(src.ip, now, src.key)) {
      this.drops.ratelimited++;
      return;
    }
    const lane = this.isExpected(type, data, from, now) ? LANE_EXPECTED : quiet ? LANE_QUIET : LANE_REST;
    if (this.queue.size(lane) === 0 && this.budget.allows(now)) {
      this.processMeasured(type, data, from, now);
      return;
    }
    if (!this.queue.push(src.key, { type, data: data.slice(), from }, lane)) this.drops['handshake-queue-full']++;
  }

  /**
   * Under load, messages we have reason to expect are served first: from a source that is a
   * peer's endpoint (configured or learned), and a response whose receiver index is a handshake
   * we started.
   */
  private isExpected(type: HandshakeType, data: Uint8Array, from: Endpoint, now: number): boolean {
    if (type === MESSAGE_RESPONSE) {
      const e = this.indices.get(readU32(data, RESPONSE.receiver));
      if (e !== undefined && e.kind === 'handshake') return true;
    }
    if (this.knownEndpoints === null || now - this.knownEndpointsAt >= KNOWN_ENDPOINTS_REFRESH) {
      const known = new Set<string>();
      for (const p of this.peers.values()) if (p.endpoint !== null) known.add(endpointKey(p.endpoint));
      this.knownEndpoints = known;
      this.knownEndpointsAt = now;
    }
    return this.knownEndpoints.has(endpointKey(from));
  }

  /** Process one admitted handshake message and charge its cost to the budget. */
  private processMeasured(type: HandshakeType, data: Uint8Array, from: Endpoint, now: number): void {
    this.processHandshake(type, data, from, now);
    this.budget.spend(this.clock.now() - now);
  }

  /** Queued handshake messages, while the budget allows. */
  private drainQueue(): void {
    for (;;) {
      const now = this.clock.now();
      if (!this.budget.allows(now)) return;
      const q = this.queue.shift();
      if (q === undefined) return;
      if (this.identity === null) this.drops['no-private-key']++;
      else this.processMeasured(q.type, q.data, q.from, now);
    }
  }

  /** An initiation or response whose MACs (and, under load, cookie and rate) were checked. */
  private processHandshake(type: HandshakeType, data: Uint8Array, from: Endpoint, now: number): void {
    const identity = this.identity!;
    if (type === MESSAGE_INITIATION) {
      const msg = parseInitiation(data);
      if (typeof msg === 'string') {
        this.drops[msg]++;
        return;
      }
      const r = consumeInitiation(
        msg,
        identity,
        (pub) => {
          const p = this.peers.get(keyId(pub));
          return p ? { peer: p, handshake: p.handshake } : undefined;
        },
        now,
        this.crypto,
      );
      if (typeof r === 'string') {
        this.drops[r]++;
        return;
      }
      this.stats.handshakesIn++;
      this.logger.verbose(`${peerName(r.peer.publicKey)} - Received handshake initiation`);
      r.peer.initiationConsumed(from, data.length);
      this.rememberRemoteIndex(msg.sender, r.peer);
    } else {
      const msg = parseResponse(data);
      if (typeof msg === 'string') {
        this.drops[msg]++;
        return;
      }
      const entry = this.indices.get(readU32(data, RESPONSE.receiver));
      if (entry === undefined || entry.kind !== 'handshake') {
        this.drops['unknown-index']++;
        return;
      }
      if (!entry.peer.responseReceived(msg, from, data.length)) {
        this.drops['invalid-response']++;
        return;
      }
      this.stats.handshakesIn++;
      this.logger.verbose(`${peerName(entry.peer.publicKey)} - Received handshake response`);
      this.rememberRemoteIndex(msg.sender, entry.peer);
    }
  }

  /** What the cookie and the rate limits need of a source, computed once per Endpoint object. */
  private sourceOf(from: Endpoint): SourceInfo {
    let s = this.sourceInfo.get(from);
    if (s === undefined) {
      s = sourceInfoOf(from);
      this.sourceInfo.set(from, s);
    }
    return s;
  }

  private receiveCookieReply(data: Uint8Array): void {
    const msg = parseCookieReply(data);
    if (typeof msg === 'string') {
      this.drops[msg]++;
      return;
    }
    const entry = this.indices.get(msg.receiver);
    if (entry === undefined) {
      this.drops['unknown-index']++;
      return;
    }
    if (!entry.peer.cookieReplyReceived(msg)) {
      this.drops['invalid-cookie-reply']++;
      return;
    }
    this.stats.cookieRepliesIn++;
    this.logger.verbose(`${peerName(entry.peer.publicKey)} - Received cookie reply`);
  }

  /**
   * Count a handshake message towards the load estimate and tell whether we are under load.
   * 'auto': the rate over a sliding second (current window plus the previous one, weighted by
   * how much of it the sliding second still covers) reaching UNDER_LOAD_HANDSHAKES_PER_SECOND;
   * once under load, the device stays so for UNDER_LOAD_HOLD after the last such moment.
   */
  private measureLoad(now: number): boolean {
    const w = Math.floor(now / 1000);
    if (w !== this.loadWindow) {
      this.loadPrevCount = w === this.loadWindow + 1 ? this.loadCount : 0;
      this.loadWindow = w;
      this.loadCount = 0;
    }
    this.loadCount++;
    if (this.underLoadMode !== 'auto') return this.underLoadMode;
    const rate = this.loadCount + this.loadPrevCount * (1 - (now / 1000 - w));
    if (rate >= UNDER_LOAD_HANDSHAKES_PER_SECOND) {
      this.lastUnderLoad = now;
      return true;
    }
    return now - this.lastUnderLoad < UNDER_LOAD_HOLD;
  }

  // ---------------------------------------------------------------------------------------
  // Output

  private transmit(data: Uint8Array, to: Endpoint): void {
    this.stats.datagramsOut++;
    this.stats.bytesOut += data.length;
    const scratch = this.scratch;
    scratch.txDepth++;
    try {
      this.sinks.sendDatagram(data, to);
    } catch (e) {
      this.sinkError(e);
    } finally {
      scratch.txDepth--;
    }
  }

  private sinkError(e: unknown): void {
    this.drops['sink-error']++;
    this.logger.error(`Sink failed: ${e instanceof Error ? e.message : String(e)}`);
  }

  private internalError(e: unknown): void {
    this.drops['internal-error']++;
    this.logger.error(`Internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  }

  /** Remove all peers, zero every key, and drop all further input ('closed'). Idempotent. */
  close(): void {
    if (this.closed) return;
    for (const p of this.peers.values()) this.removePeer(p);
    this.indices.clear();
    this.allowedIps.clear();
    this.ratelimiter.clear();
    this.cookieLimiter.clear();
    this.loops.clear();
    this.remoteIndices.clear();
    this.drops.closed += this.queue.clear().length;
    this.checker.zero();
    this.identity?.zero();
    this.identity = null;
    this.scratch.wipe();
    this.closed = true;
  }
}
