/**
 * The per-peer tunnel state (the kernel's struct wg_peer, boringtun's Tunn): the handshake,
 * the keypairs, the cookie state, the timers and the bounded queue of packets waiting for a
 * session, with the send/receive logic of the kernel's send.c and receive.c that is specific
 * to one peer. The device (noise/device.ts) owns the peers and does the per-datagram dispatch,
 * MAC checks, cryptokey routing and IP validation; it gives each peer a `PeerHost`.
 */
import { counterNonce } from '../crypto/aead.js';
import { type Rng, randomU16Pool } from '../crypto/random.js';
import type { CryptoSuite } from '../crypto/suite.js';
import {
  KEEPALIVE_TIMEOUT,
  MAX_STAGED_PACKETS,
  REJECT_AFTER_TIME,
  REKEY_AFTER_MESSAGES,
  REKEY_AFTER_TIME,
  REKEY_TIMEOUT,
  REKEY_TIMEOUT_JITTER_MAX,
  TRANSPORT_MIN_SIZE,
} from './constants.js';
import { CookieState } from './cookie.js';
import type { DropReason } from './drops.js';
import { Handshake, type StaticIdentity } from './handshake.js';
import type { IndexEntry, IndexTable } from './indextable.js';
import { Keypair, Keypairs } from './keypair.js';
import { type CookieReply, paddingFor, type Response, writeTransportHeader } from './messages.js';
import { type TimerActions, Timers } from './timers.js';
import type { Clock, Endpoint, Logger } from './types.js';

const EMPTY = new Uint8Array(0);

/** What a peer needs from its device. */
export interface PeerHost {
  readonly clock: Clock;
  readonly rng: Rng;
  readonly crypto: CryptoSuite;
  readonly logger: Logger;
  /** The device's static identity (null: no private key). */
  readonly identity: StaticIdentity | null;
  readonly indices: IndexTable<Peer>;
  /** Largest padded plaintext (MTU clamp of the padding); follows Device.setMtu. */
  paddingLimit: number;
  /** A buffer of exactly `n` bytes for an outgoing datagram, valid until `transmit` returns. */
  txBuffer(n: number): Uint8Array;
  /** Bytes [16, n) of the buffer the last `txBuffer(n)` returned: where the ciphertext goes. */
  txSealView(n: number): Uint8Array;
  /** Send a datagram synchronously. */
  transmit(data: Uint8Array, to: Endpoint): void;
  /** Count a drop. */
  drop(reason: DropReason, count?: number): void;
  /** Nonce scratch (12 bytes) for the send path. */
  readonly txNonce: Uint8Array;
}

function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a === b || (a.port === b.port && a.address === b.address && a.localAddress === b.localAddress && a.family === b.family);
}

export class Peer implements TimerActions {
  readonly publicKey: Uint8Array;
  readonly handshake: Handshake;
  readonly keypairs: Keypairs;
  readonly cookie: CookieState;
  readonly timers: Timers;
  endpoint: Endpoint | null = null;
  /** Persistent keepalive interval in seconds (0: off). */
  private keepaliveSeconds = 0;
  /** Packets (copies) waiting for a session; a zero-length one is a keepalive. */
  private staged: Uint8Array[] = [];
  /** Monotonic ms of the last initiation or response we sent (-∞: never). */
  lastSentHandshake = Number.NEGATIVE_INFINITY;
  /** Wall-clock ms of the last completed handshake (0: none). */
  lastHandshakeWall = 0;
  /** UDP payload bytes received from / sent to this peer (authenticated messages only for rx). */
  rxBytes = 0;
  txBytes = 0;
  /** Index currently registered for the in-progress handshake. */
  private handshakeIndex: number | null = null;
  private readonly handshakeEntry: IndexEntry<Peer>;
  private removed = false;

  constructor(
    private readonly host: PeerHost,
    publicKey: Uint8Array,
  ) {
    this.publicKey = publicKey.slice();
    this.handshake = new Handshake(this.publicKey, host.crypto);
    this.handshake.setIdentity(host.identity);
    this.cookie = new CookieState(this.publicKey, host.crypto.blake2s);
    this.keypairs = new Keypairs((kp) => host.indices.remove(kp.localIndex, (e) => e.kind === 'keypair' && e.keypair === kp));
    const u16 = randomU16Pool(host.rng);
    this.timers = new Timers(() => (u16() * REKEY_TIMEOUT_JITTER_MAX) / 65536);
    this.handshakeEntry = { kind: 'handshake', peer: this };
  }

  get persistentKeepalive(): number {
    return this.keepaliveSeconds;
  }

  set persistentKeepalive(seconds: number) {
    this.keepaliveSeconds = seconds;
    this.timers.persistentKeepaliveInterval = seconds * 1000;
    if (seconds === 0) this.timers.persistentKeepalive = Number.POSITIVE_INFINITY;
  }

  get stagedCount(): number {
    return this.staged.length;
  }

  // ---------------------------------------------------------------------------------------
  // Sending

  /**
   * Send an IP packet through the tunnel: encrypt it at once when a session is up and nothing
   * is waiting, else queue a copy (dropping the oldest beyond MAX_STAGED_PACKETS) and flush.
   */
  send(packet: Uint8Array): void {
    if (this.staged.length === 0 && this.endpoint) {
      const kp = this.keypairs.current;
      const now = this.host.clock.now();
      if (kp?.canSend(now)) {
        this.timers.anyAuthenticatedPacketTraversal(now);
        this.timers.anyAuthenticatedPacketSent();
        this.encryptAndTransmit(kp, packet, this.endpoint);
        if (packet.length > 0) this.timers.dataSent(now);
        this.keepKeyFreshSending(now);
        return;
      }
    }
    this.stage(packet.length === 0 ? EMPTY : packet.slice());
    this.sendStaged();
  }

  private stage(copy: Uint8Array): void {
    this.staged.push(copy);
    if (this.staged.length > MAX_STAGED_PACKETS) {
      this.staged.shift();
      this.host.drop('staged-overflow');
    }
  }

  /** Send an empty transport message (queued if there is no session), as wg_packet_send_keepalive. */
  sendKeepalive(): void {
    if (this.staged.length === 0) this.staged.push(EMPTY);
    this.sendStaged();
  }

  /** Flush the staged packets with the current keypair, or start a handshake for them. */
  sendStaged(): void {
    if (this.staged.length === 0 || this.removed) return;
    const now = this.host.clock.now();
    const kp = this.keypairs.current;
    const to = this.endpoint;
    if (kp === null || !kp.canSend(now) || to === null) {
      if (kp !== null && to !== null) kp.sendValid = false;
      this.initiateHandshake(false);
      return;
    }
    const packets = this.staged;
    this.staged = [];
    this.timers.anyAuthenticatedPacketTraversal(now);
    this.timers.anyAuthenticatedPacketSent();
    let dataSent = false;
    for (const p of packets) {
      this.encryptAndTransmit(kp, p, to);
      if (p.length > 0) dataSent = true;
    }
    if (dataSent) this.timers.dataSent(now);
    this.keepKeyFreshSending(now);
  }

  private encryptAndTransmit(kp: Keypair, packet: Uint8Array, to: Endpoint): void {
    const host = this.host;
    const n = packet.length;
    const pad = paddingFor(n, host.paddingLimit);
    const total = TRANSPORT_MIN_SIZE + n + pad;
    const out = host.txBuffer(total);
    const counter = kp.sendCounter++;
    writeTransportHeader(out, kp.remoteIndex, counter);
    host.crypto.aead.seal(kp.sendKey, counterNonce(counter, host.txNonce), packet, undefined, host.txSealView(total), pad);
    this.txBytes += total;
    host.transmit(out, to);
  }

  /** After sending with the current keypair: rekey when it is old or used a lot (keep_key_fresh). */
  private keepKeyFreshSending(now: number): void {
    const kp = this.keypairs.current;
    if (kp?.sendValid && (kp.sendCounter > REKEY_AFTER_MESSAGES || (kp.isInitiator && now - kp.birth >= REKEY_AFTER_TIME))) {
      this.initiateHandshake(false);
    }
  }

  /** After receiving: if we initiated the current session and it nears REJECT_AFTER_TIME, rekey once. */
  private keepKeyFreshReceiving(now: number): void {
    if (this.timers.sentLastMinuteHandshake) return;
    const kp = this.keypairs.current;
    if (kp?.sendValid && kp.isInitiator && now - kp.birth >= REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT) {
      this.timers.sentLastMinuteHandshake = true;
      this.initiateHandshake(false);
    }
  }

  /**
   * Send a handshake initiation, at most one per REKEY_TIMEOUT (the kernel's
   * wg_packet_send_queued_handshake_initiation). A retry keeps the attempt counter.
   * Nothing is sent without a private key, with a low-order peer key or without an endpoint.
   */
  initiateHandshake(isRetry: boolean): void {
    if (!isRetry) this.timers.handshakeAttempts = 0;
    const host = this.host;
    const now = host.clock.now();
    if (now - this.lastSentHandshake < REKEY_TIMEOUT || this.removed) return;
    const identity = host.identity;
    const to = this.endpoint;
    if (identity === null || to === null || !this.handshake.usable) return;
    const index = this.newHandshakeIndex();
    const msg = this.handshake.createInitiation(identity, index, host.rng, host.clock.wall());
    if (msg === null) {
      this.dropHandshakeIndex();
      return;
    }
    this.cookie.addMacs(msg, now);
    this.timers.anyAuthenticatedPacketTraversal(now);
    this.timers.anyAuthenticatedPacketSent();
    this.lastSentHandshake = now;
    this.txBytes += msg.length;
    host.transmit(msg, to);
    this.timers.handshakeInitiated(now);
  }

  private newHandshakeIndex(): number {
    this.dropHandshakeIndex();
    const index = this.host.indices.insert(this.handshakeEntry);
    this.handshakeIndex = index;
    return index;
  }

  private dropHandshakeIndex(): void {
    if (this.handshakeIndex !== null) {
      const entry = this.handshakeEntry;
      this.host.indices.remove(this.handshakeIndex, (e) => e === entry);
      this.handshakeIndex = null;
    }
  }

  /** Turn a finished handshake into a keypair; its index passes from the handshake to it. */
  private beginSession(now: number): boolean {
    const keys = this.handshake.beginSession();
    if (keys === null) return false;
    const kp = new Keypair(keys, now);
    this.host.indices.replace(keys.localIndex, { kind: 'keypair', peer: this, keypair: kp });
    this.handshakeIndex = null;
    this.keypairs.add(kp);
    return true;
  }

  // ---------------------------------------------------------------------------------------
  // Receiving (the device has checked the MACs, cookies and rate limits)

  /** The endpoint follows the latest authenticated packet (roaming). */
  private updateEndpoint(from: Endpoint): void {
    if (this.endpoint === null || !sameEndpoint(this.endpoint, from)) this.endpoint = from;
  }

  /** An initiation from this peer was consumed: answer it and derive the (unconfirmed) session. */
  initiationConsumed(from: Endpoint, size: number): void {
    const host = this.host;
    const now = host.clock.now();
    this.updateEndpoint(from);
    const index = this.newHandshakeIndex();
    const msg = this.handshake.createResponse(index, host.rng);
    if (msg === null) {
      this.dropHandshakeIndex();
    } else {
      this.cookie.addMacs(msg, now);
      if (this.beginSession(now)) this.timers.sessionDerived(now);
      this.timers.anyAuthenticatedPacketTraversal(now);
      this.timers.anyAuthenticatedPacketSent();
      this.lastSentHandshake = now;
      this.txBytes += msg.length;
      host.transmit(msg, from);
    }
    this.authenticatedHandshakeReceived(now, size);
  }

  /** A response routed here by its receiver index: false (nothing changed) if it does not authenticate. */
  responseReceived(msg: Response, from: Endpoint, size: number): boolean {
    const host = this.host;
    const identity = host.identity;
    if (identity === null || !this.handshake.consumeResponse(msg, identity)) return false;
    const now = host.clock.now();
    this.updateEndpoint(from);
    // The receive-side timer events come first: the kernel sends the keepalive below from a
    // worker, after them, so the data it sends must arm the new-handshake timer afterwards.
    this.authenticatedHandshakeReceived(now, size);
    if (this.beginSession(now)) {
      this.timers.sessionDerived(now);
      this.timers.handshakeComplete();
      this.lastHandshakeWall = host.clock.wall();
      // Sends the staged packets, or a keepalive to confirm the session at once.
      this.sendKeepalive();
    }
    return true;
  }

  private authenticatedHandshakeReceived(now: number, size: number): void {
    this.rxBytes += size;
    this.timers.anyAuthenticatedPacketReceived();
    this.timers.anyAuthenticatedPacketTraversal(now);
  }

  /** A cookie reply for one of our handshake messages. */
  cookieReplyReceived(reply: CookieReply): boolean {
    return this.cookie.consumeReply(reply, this.host.clock.now());
  }

  /**
   * A transport message under `kp` authenticated and passed the replay check (the kernel's
   * wg_packet_consume_data_done up to the keepalive test). `size` is the datagram size.
   */
  transportReceived(kp: Keypair, from: Endpoint, size: number, now: number): void {
    this.updateEndpoint(from);
    this.rxBytes += size;
    // Timer events of the reception first (see responseReceived): what we send below must
    // re-arm the timers after them, as the kernel's asynchronous send does.
    this.timers.anyAuthenticatedPacketReceived();
    this.timers.anyAuthenticatedPacketTraversal(now);
    if (this.keypairs.receivedWith(kp)) {
      this.timers.handshakeComplete();
      this.lastHandshakeWall = this.host.clock.wall();
      this.sendStaged();
    }
    this.keepKeyFreshReceiving(now);
  }

  // ---------------------------------------------------------------------------------------
  // Timers

  /** Run due timers; returns the next deadline (monotonic ms, Infinity if none). */
  tick(now: number): number {
    if (this.timers.next <= now) this.timers.run(now, this);
    return this.timers.next;
  }

  /**
   * Forget the sticky source address: the kernel does this before handshake retries, and the
   * device when the UDP layer reports that the address is gone.
   */
  clearEndpointSource(): void {
    const e = this.endpoint;
    if (e !== null && (e.localAddress !== undefined || e.ifindex !== undefined)) {
      this.endpoint = { address: e.address, port: e.port, family: e.family };
    }
  }

  retransmitHandshake(): void {
    this.clearEndpointSource();
    this.initiateHandshake(true);
  }

  giveUpHandshake(): void {
    this.purgeStaged();
  }

  newHandshake(): void {
    this.clearEndpointSource();
    this.initiateHandshake(false);
  }

  zeroKeyMaterial(): void {
    this.dropHandshakeIndex();
    this.handshake.zero();
    this.keypairs.clear();
  }

  private purgeStaged(): void {
    let n = 0;
    for (const p of this.staged) if (p.length > 0) n++;
    if (n > 0) this.host.drop('handshake-gave-up', n);
    this.staged = [];
  }

  // ---------------------------------------------------------------------------------------
  // Configuration

  /** The device's private key changed: recompute the static DH and stop sending on old keys. */
  identityChanged(identity: StaticIdentity | null): void {
    this.handshake.setIdentity(identity);
    // As wireguard-go's ExpireCurrentKeypairs: drop the handshake and allow a new one at once.
    this.dropHandshakeIndex();
    this.handshake.zero();
    this.lastSentHandshake = Number.NEGATIVE_INFINITY;
    this.keypairs.expireSending();
  }

  /** Remove the peer: zero everything, free its indices, disarm its timers. */
  destroy(): void {
    this.removed = true;
    this.timers.stop();
    this.purgeStaged();
    this.dropHandshakeIndex();
    this.handshake.destroy();
    this.keypairs.clear();
    this.cookie.zero();
  }
}
