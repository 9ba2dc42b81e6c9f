/**
 * The Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s handshake (whitepaper §5.4.2-5.4.5), both roles.
 *
 *   initiator                                     responder
 *   createInitiation()  ── initiation (148) ──►   consumeInitiation()
 *                                                 createResponse(), beginSession() → "next"
 *   consumeResponse()   ◄── response (92) ──
 *   beginSession() → "current"
 *
 * One `Handshake` per peer holds the in-progress state. Nothing here touches the network or
 * the clock: times, randomness and sender indices are passed in. Failed consumption never
 * changes state (everything is computed into locals first and committed at the end).
 * Messages are produced with zero MACs; the caller adds them (cookie.ts) before sending.
 */

import { aeadOpen, aeadSeal } from '../crypto/aead.js';
import { nodeBlake2s } from '../crypto/blake2s.js';
import { isZero } from '../crypto/keys.js';
import type { Rng } from '../crypto/random.js';
import { type CryptoSuite, jsSuite } from '../crypto/suite.js';
import { compareTai64n, tai64n } from '../crypto/tai64n.js';
import { generatePrivateKey } from '../crypto/x25519.js';
import { CONSTRUCTION_BYTES, IDENTIFIER_BYTES, INITIATIONS_PER_SECOND, KEY_LEN, TIMESTAMP_LEN } from './constants.js';
import { type Initiation, type Response, serializeInitiation, serializeResponse } from './messages.js';

const EMPTY = new Uint8Array(0);
const ZERO_MAC = new Uint8Array(16);

/** C0 = HASH(CONSTRUCTION); H0 = HASH(C0 || IDENTIFIER). Constants: any provider gives them. */
export const INITIAL_CHAINING_KEY = nodeBlake2s.hash(CONSTRUCTION_BYTES);
export const INITIAL_HASH = nodeBlake2s.hash(INITIAL_CHAINING_KEY, IDENTIFIER_BYTES);

/** The local static key pair, with the responder-side hash prefix precomputed. */
export class StaticIdentity {
  readonly publicKey: Uint8Array;
  /** HASH(H0 || Spub): the responder's starting hash. */
  readonly initialHash: Uint8Array;

  constructor(
    readonly privateKey: Uint8Array,
    suite: CryptoSuite = jsSuite,
  ) {
    this.publicKey = suite.x25519.publicKey(privateKey);
    this.initialHash = suite.blake2s.hash(INITIAL_HASH, this.publicKey);
  }

  zero(): void {
    this.privateKey.fill(0);
  }
}

export type HandshakeState = 'zeroed' | 'created-initiation' | 'consumed-initiation' | 'created-response' | 'consumed-response';

/** Transport keys derived at the end of a handshake. */
export interface SessionKeys {
  sendKey: Uint8Array;
  recvKey: Uint8Array;
  isInitiator: boolean;
  /** Our index: the peer puts it in the receiver field of its messages to us. */
  localIndex: number;
  /** The peer's index: we put it in the receiver field of ours. */
  remoteIndex: number;
}

/** Why consuming an initiation failed. */
export type InitiationError = 'invalid-initiation' | 'unknown-peer' | 'stale-timestamp' | 'initiation-flood';

function kdf1(s: CryptoSuite, key: Uint8Array, input: Uint8Array): Uint8Array {
  return s.blake2s.kdf(1, key, input)[0]!;
}

function kdf2(s: CryptoSuite, key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array] {
  const r = s.blake2s.kdf(2, key, input);
  return [r[0]!, r[1]!];
}

function kdf3(s: CryptoSuite, key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array, Uint8Array] {
  const r = s.blake2s.kdf(3, key, input);
  return [r[0]!, r[1]!, r[2]!];
}

/** (C, k) = KDF2(C, DH(...)); null when the DH is all zeros (a low-order point). */
function mixDh(s: CryptoSuite, ck: Uint8Array, shared: Uint8Array | null): [Uint8Array, Uint8Array] | null {
  if (!shared || isZero(shared)) return null;
  const r = kdf2(s, ck, shared);
  shared.fill(0);
  return r;
}

/** The handshake state of one peer. */
export class Handshake {
  /** The peer's static public key. */
  readonly remoteStatic: Uint8Array;
  /** Q: 32 zero bytes when there is no preshared key (as the protocol specifies). */
  readonly presharedKey = new Uint8Array(KEY_LEN);
  /** DH(Spriv_local, Spub_remote), or null with no identity or a low-order peer key. */
  private staticStatic: Uint8Array | null = null;
  /** HASH(H0 || Spub_remote): the initiator's starting hash. */
  private readonly remoteInitialHash: Uint8Array;

  state: HandshakeState = 'zeroed';
  localIndex = 0;
  remoteIndex = 0;
  private hash: Uint8Array = new Uint8Array(32);
  private chainingKey: Uint8Array = new Uint8Array(32);
  private ephemeralPrivate: Uint8Array = new Uint8Array(KEY_LEN);
  private remoteEphemeral = new Uint8Array(KEY_LEN);
  /** Greatest TAI64N timestamp accepted from this peer (zeros: none). Survives zeroing. */
  readonly latestTimestamp = new Uint8Array(TIMESTAMP_LEN);
  /** Monotonic ms of the last consumed initiation (flood protection). Survives zeroing. */
  lastInitiationConsumption = Number.NEGATIVE_INFINITY;

  constructor(
    remoteStatic: Uint8Array,
    private readonly suite: CryptoSuite = jsSuite,
  ) {
    this.remoteStatic = remoteStatic.slice();
    this.remoteInitialHash = suite.blake2s.hash(INITIAL_HASH, this.remoteStatic);
  }

  /** (Re)compute the static-static DH for a new local identity (or none). */
  setIdentity(identity: StaticIdentity | null): void {
    this.staticStatic?.fill(0);
    this.staticStatic = null;
    if (!identity) return;
    const s = this.suite.x25519.dh(identity.privateKey, this.remoteStatic);
    this.staticStatic = s && !isZero(s) ? s : null;
  }

  /** Whether handshakes with this peer are possible (we have a key; the peer's key is not low order). */
  get usable(): boolean {
    return this.staticStatic !== null;
  }

  setPresharedKey(key: Uint8Array | null | undefined): void {
    if (key && key.length === KEY_LEN) this.presharedKey.set(key);
    else this.presharedKey.fill(0);
  }

  get hasPresharedKey(): boolean {
    return !isZero(this.presharedKey);
  }

  /**
   * A handshake initiation (148 bytes, MACs zero) with sender index `localIndex` and the
   * TAI64N timestamp of `wallMs`, or null when no handshake is possible.
   */
  createInitiation(identity: StaticIdentity, localIndex: number, rng: Rng, wallMs: number): Uint8Array | null {
    if (!this.staticStatic) return null;
    const s = this.suite;
    const ephemeralPrivate = generatePrivateKey(rng);
    const ephemeral = s.x25519.publicKey(ephemeralPrivate);
    let ck = kdf1(s, INITIAL_CHAINING_KEY, ephemeral);
    let h = s.blake2s.hash(this.remoteInitialHash, ephemeral);
    const es = mixDh(s, ck, s.x25519.dh(ephemeralPrivate, this.remoteStatic));
    if (!es) return null;
    let key: Uint8Array;
    [ck, key] = es;
    const encryptedStatic = aeadSeal(s.aead, key, 0, identity.publicKey, h);
    h = s.blake2s.hash(h, encryptedStatic);
    [ck, key] = kdf2(s, ck, this.staticStatic);
    const encryptedTimestamp = aeadSeal(s.aead, key, 0, tai64n(wallMs), h);
    h = s.blake2s.hash(h, encryptedTimestamp);
    key.fill(0);

    this.clearSecrets();
    this.ephemeralPrivate = ephemeralPrivate;
    this.chainingKey = ck;
    this.hash = h;
    this.localIndex = localIndex;
    this.remoteIndex = 0;
    this.state = 'created-initiation';
    return serializeInitiation({ sender: localIndex, ephemeral, encryptedStatic, encryptedTimestamp, mac1: ZERO_MAC, mac2: ZERO_MAC });
  }

  /**
   * A handshake response (92 bytes, MACs zero) to the initiation consumed last, with sender
   * index `localIndex`; null unless an initiation was just consumed.
   */
  createResponse(localIndex: number, rng: Rng): Uint8Array | null {
    if (this.state !== 'consumed-initiation') return null;
    const s = this.suite;
    const ephemeralPrivate = generatePrivateKey(rng);
    const ephemeral = s.x25519.publicKey(ephemeralPrivate);
    let ck = kdf1(s, this.chainingKey, ephemeral);
    let h = s.blake2s.hash(this.hash, ephemeral);
    const ee = s.x25519.dh(ephemeralPrivate, this.remoteEphemeral);
    const se = s.x25519.dh(ephemeralPrivate, this.remoteStatic);
    if (!ee || isZero(ee) || !se || isZero(se)) return null;
    ck = kdf1(s, ck, ee);
    ck = kdf1(s, ck, se);
    ee.fill(0);
    se.fill(0);
    const [ck2, tau, key] = kdf3(s, ck, this.presharedKey);
    h = s.blake2s.hash(h, tau);
    const encryptedNothing = aeadSeal(s.aead, key, 0, EMPTY, h);
    h = s.blake2s.hash(h, encryptedNothing);
    tau.fill(0);
    key.fill(0);

    this.ephemeralPrivate.fill(0);
    this.ephemeralPrivate = ephemeralPrivate;
    this.chainingKey = ck2;
    this.hash = h;
    this.localIndex = localIndex;
    this.state = 'created-response';
    return serializeResponse({ sender: localIndex, receiver: this.remoteIndex, ephemeral, encryptedNothing, mac1: ZERO_MAC, mac2: ZERO_MAC });
  }

  /**
   * Consume a response addressed to our pending initiation (the caller routed it here by its
   * receiver index). False, with nothing changed, when it does not authenticate.
   */
  consumeResponse(msg: Response, identity: StaticIdentity): boolean {
    if (this.state !== 'created-initiation' || msg.receiver !== this.localIndex) return false;
    const s = this.suite;
    let ck = kdf1(s, this.chainingKey, msg.ephemeral);
    let h = s.blake2s.hash(this.hash, msg.ephemeral);
    const ee = s.x25519.dh(this.ephemeralPrivate, msg.ephemeral);
    const se = s.x25519.dh(identity.privateKey, msg.ephemeral);
    if (!ee || isZero(ee) || !se || isZero(se)) return false;
    ck = kdf1(s, ck, ee);
    ck = kdf1(s, ck, se);
    ee.fill(0);
    se.fill(0);
    const [ck2, tau, key] = kdf3(s, ck, this.presharedKey);
    h = s.blake2s.hash(h, tau);
    const ok = aeadOpen(s.aead, key, 0, msg.encryptedNothing, h);
    tau.fill(0);
    key.fill(0);
    if (!ok) {
      ck2.fill(0);
      return false;
    }
    h = s.blake2s.hash(h, msg.encryptedNothing);

    this.remoteEphemeral.set(msg.ephemeral);
    this.chainingKey.fill(0);
    this.chainingKey = ck2;
    this.hash = h;
    this.remoteIndex = msg.sender;
    this.state = 'consumed-response';
    return true;
  }

  /**
   * Derive the transport keys once the handshake is complete (initiator: after
   * consumeResponse; responder: after createResponse) and zero the handshake state.
   * Returns null in any other state.
   */
  beginSession(): SessionKeys | null {
    let isInitiator: boolean;
    if (this.state === 'consumed-response') isInitiator = true;
    else if (this.state === 'created-response') isInitiator = false;
    else return null;
    const [first, second] = kdf2(this.suite, this.chainingKey, EMPTY);
    const keys: SessionKeys = {
      sendKey: isInitiator ? first : second,
      recvKey: isInitiator ? second : first,
      isInitiator,
      localIndex: this.localIndex,
      remoteIndex: this.remoteIndex,
    };
    this.zero();
    return keys;
  }

  /** Forget the in-progress handshake (not the replay/flood state). The index is the caller's. */
  zero(): void {
    this.clearSecrets();
    this.remoteEphemeral.fill(0);
    this.remoteIndex = 0;
    this.state = 'zeroed';
  }

  /** Zero everything, key material included: for removal of the peer. */
  destroy(): void {
    this.zero();
    this.presharedKey.fill(0);
    this.staticStatic?.fill(0);
    this.staticStatic = null;
  }

  private clearSecrets(): void {
    this.ephemeralPrivate.fill(0);
    this.hash.fill(0);
    this.chainingKey.fill(0);
  }

  /** Commit a consumed initiation (see consumeInitiation). @internal */
  acceptInitiation(ck: Uint8Array, h: Uint8Array, remoteEphemeral: Uint8Array, sender: number, timestamp: Uint8Array, now: number): void {
    this.clearSecrets();
    this.chainingKey = ck;
    this.hash = h;
    this.remoteEphemeral.set(remoteEphemeral);
    this.remoteIndex = sender;
    this.latestTimestamp.set(timestamp);
    this.lastInitiationConsumption = now;
    this.state = 'consumed-initiation';
  }

  /** @internal */
  get precomputedStaticStatic(): Uint8Array | null {
    return this.staticStatic;
  }
}

/** Result of consuming an initiation: the peer's handshake now in 'consumed-initiation'. */
export interface ConsumedInitiation<P> {
  peer: P;
  handshake: Handshake;
}

/**
 * Consume a handshake initiation addressed to `identity`. `lookup` maps the initiator's
 * decrypted static key to its peer and handshake. Checks, in order: the ephemeral and static
 * decrypt, the peer is known and usable, the timestamp decrypts and is strictly newer than the
 * last one accepted from that peer, and no initiation from that peer was consumed in the last
 * 1/INITIATIONS_PER_SECOND. Only on success is the handshake state changed.
 */
export function consumeInitiation<P>(
  msg: Initiation,
  identity: StaticIdentity,
  lookup: (staticPublic: Uint8Array) => { peer: P; handshake: Handshake } | undefined,
  now: number,
  s: CryptoSuite = jsSuite,
): ConsumedInitiation<P> | InitiationError {
  let ck = kdf1(s, INITIAL_CHAINING_KEY, msg.ephemeral);
  let h = s.blake2s.hash(identity.initialHash, msg.ephemeral);
  const es = mixDh(s, ck, s.x25519.dh(identity.privateKey, msg.ephemeral));
  if (!es) return 'invalid-initiation';
  let key: Uint8Array;
  [ck, key] = es;
  const staticPublic = aeadOpen(s.aead, key, 0, msg.encryptedStatic, h);
  key.fill(0);
  if (!staticPublic) return 'invalid-initiation';
  h = s.blake2s.hash(h, msg.encryptedStatic);
  const found = lookup(staticPublic);
  if (!found) return 'unknown-peer';
  const hs = found.handshake;
  const ss = hs.precomputedStaticStatic;
  if (!ss) return 'invalid-initiation';
  [ck, key] = kdf2(s, ck, ss);
  const timestamp = aeadOpen(s.aead, key, 0, msg.encryptedTimestamp, h);
  key.fill(0);
  if (!timestamp) return 'invalid-initiation';
  h = s.blake2s.hash(h, msg.encryptedTimestamp);
  if (compareTai64n(timestamp, hs.latestTimestamp) <= 0) return 'stale-timestamp';
  if (hs.lastInitiationConsumption + 1000 / INITIATIONS_PER_SECOND > now) return 'initiation-flood';
  hs.acceptInitiation(ck, h, msg.ephemeral, msg.sender, timestamp, now);
  return { peer: found.peer, handshake: hs };
}
