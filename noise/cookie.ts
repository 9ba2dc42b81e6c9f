/**
 * MACs and cookies (whitepaper §5.4.4, §5.4.7; the kernel's cookie.c).
 *
 * Every handshake message ends with mac1 and mac2:
 *   mac1 = MAC(HASH("mac1----" || Spub_receiver), msg[0 : mac1 offset])
 *   mac2 = MAC(cookie, msg[0 : mac2 offset])  when a fresh cookie is held, else zeros.
 *
 * The responder side (`CookieChecker`, one per device) always verifies mac1; under load it
 * also wants a valid mac2 and otherwise answers with a cookie reply:
 *   cookie = MAC(secret, source IP bytes || source port, big endian)   (as the kernel)
 *   reply  = XAEAD(HASH("cookie--" || Spub_responder), random 24-byte nonce, cookie, AAD = mac1)
 * with `secret` random and replaced when older than COOKIE_SECRET_MAX_AGE (2 minutes).
 *
 * The initiator side (`CookieState`, one per peer) remembers the mac1 it last sent, accepts a
 * cookie reply for it once, and uses the cookie for mac2 for COOKIE_SECRET_MAX_AGE minus
 * COOKIE_SECRET_LATENCY.
 */

import { type AeadProvider, xaeadOpen, xaeadSeal } from '../crypto/aead.js';
import { type Blake2sProvider, nodeBlake2s } from '../crypto/blake2s.js';
import type { Rng } from '../crypto/random.js';
import { COOKIE_LEN, COOKIE_NONCE_LEN, COOKIE_SECRET_LATENCY, COOKIE_SECRET_MAX_AGE, HASH_LEN, LABEL_COOKIE_BYTES, LABEL_MAC1_BYTES } from './constants.js';
import { type CookieReply, serializeCookieReply } from './messages.js';
import { xaeadSealWith } from './xaead.js';

/** HASH("mac1----" || publicKey): the key of mac1 for messages sent to `publicKey`. */
export function mac1Key(publicKey: Uint8Array, b2: Blake2sProvider = nodeBlake2s): Uint8Array {
  return b2.hash(LABEL_MAC1_BYTES, publicKey);
}

/** HASH("cookie--" || publicKey): the key of cookie replies sent by `publicKey`. */
export function cookieKey(publicKey: Uint8Array, b2: Blake2sProvider = nodeBlake2s): Uint8Array {
  return b2.hash(LABEL_COOKIE_BYTES, publicKey);
}

/** mac1 of a whole handshake message (initiation or response): it covers everything before it. */
export function computeMac1(key: Uint8Array, msg: Uint8Array, b2: Blake2sProvider = nodeBlake2s): Uint8Array {
  return b2.mac(key, msg.subarray(0, msg.length - 2 * COOKIE_LEN));
}

/** mac2 of a whole handshake message: it covers everything before it, mac1 included. */
export function computeMac2(cookie: Uint8Array, msg: Uint8Array, b2: Blake2sProvider = nodeBlake2s): Uint8Array {
  return b2.mac(cookie, msg.subarray(0, msg.length - COOKIE_LEN));
}

export function mac1Of(msg: Uint8Array): Uint8Array {
  return msg.subarray(msg.length - 2 * COOKIE_LEN, msg.length - COOKIE_LEN);
}

export function mac2Of(msg: Uint8Array): Uint8Array {
  return msg.subarray(msg.length - COOKIE_LEN);
}

/**
 * A source's cookie kept between messages (the cookie is a MAC of the source under the current
 * secret, so it holds until the secret rotates): a responder under a flood saves a keyed hash
 * per message from a source it has seen. `secret` numbers the secret it was made under (0: none).
 */
export interface CookieCache {
  readonly cookie: Uint8Array;
  secret: number;
}

export function newCookieCache(): CookieCache {
  return { cookie: new Uint8Array(COOKIE_LEN), secret: 0 };
}

/** Whether `mac` equals the 16 bytes of `msg` at `off`, in constant time. */
function equalAt(mac: Uint8Array, msg: Uint8Array, off: number): boolean {
  let d = 0;
  for (let i = 0; i < COOKIE_LEN; i++) d |= mac[i]! ^ msg[off + i]!;
  return d === 0;
}

/** The responder's MAC checker and cookie maker (one per device). */
export class CookieChecker {
  private mac1Key: Uint8Array | null = null;
  private cookieKey: Uint8Array | null = null;
  private readonly secret = new Uint8Array(HASH_LEN);
  private secretBirth = Number.NEGATIVE_INFINITY;
  /** Counts the secrets made, so that a CookieCache knows whether its cookie is current. */
  private secretNumber = 0;

  /** `aead`, when given, seals cookie replies (see xaead.ts; the same bytes as without). */
  constructor(
    private readonly rng: Rng,
    private readonly b2: Blake2sProvider = nodeBlake2s,
    private readonly aead?: AeadProvider,
  ) {}

  /** Set (or clear) the device's public key, from which the mac1 and cookie keys derive. */
  setPublicKey(publicKey: Uint8Array | null): void {
    this.mac1Key?.fill(0);
    this.cookieKey?.fill(0);
    this.mac1Key = publicKey ? mac1Key(publicKey, this.b2) : null;
    this.cookieKey = publicKey ? cookieKey(publicKey, this.b2) : null;
  }

  /** Whether mac1 of the handshake message `msg` is right (false with no key). */
  checkMac1(msg: Uint8Array): boolean {
    if (!this.mac1Key) return false;
    return equalAt(computeMac1(this.mac1Key, msg, this.b2), msg, msg.length - 2 * COOKIE_LEN);
  }

  /**
   * Whether mac2 of `msg` was made with the cookie of `source` (its IP bytes || BE port).
   * With `cache` (the source's), the cookie is taken from it or made into it.
   */
  checkMac2(msg: Uint8Array, source: Uint8Array, now: number, cache?: CookieCache): boolean {
    const cookie = this.cookieOf(source, now, cache);
    const ok = equalAt(computeMac2(cookie, msg, this.b2), msg, msg.length - COOKIE_LEN);
    if (cache === undefined) cookie.fill(0);
    return ok;
  }

  /** The cookie reply to the handshake message `msg` (whose sender index is `receiver`); `cache` as in checkMac2. */
  createReply(msg: Uint8Array, receiver: number, source: Uint8Array, now: number, cache?: CookieCache): Uint8Array | null {
    if (!this.cookieKey) return null;
    const nonce = this.rng(new Uint8Array(COOKIE_NONCE_LEN));
    const cookie = this.cookieOf(source, now, cache);
    const aad = mac1Of(msg);
    const encryptedCookie = this.aead ? xaeadSealWith(this.aead, this.cookieKey, nonce, cookie, aad) : xaeadSeal(this.cookieKey, nonce, cookie, aad);
    const reply: CookieReply = { receiver, nonce, encryptedCookie };
    if (cache === undefined) cookie.fill(0);
    return serializeCookieReply(reply);
  }

  private cookieOf(source: Uint8Array, now: number, cache: CookieCache | undefined): Uint8Array {
    if (now - this.secretBirth >= COOKIE_SECRET_MAX_AGE) {
      this.rng(this.secret);
      this.secretBirth = now;
      this.secretNumber++;
    }
    if (cache === undefined) return this.b2.mac(this.secret, source);
    if (cache.secret !== this.secretNumber) {
      const c = this.b2.mac(this.secret, source);
      cache.cookie.set(c);
      c.fill(0);
      cache.secret = this.secretNumber;
    }
    return cache.cookie;
  }

  zero(): void {
    this.secret.fill(0);
    this.secretBirth = Number.NEGATIVE_INFINITY;
    this.setPublicKey(null);
  }
}

/** The initiator's cookie state for one peer (the kernel's `struct cookie`). */
export class CookieState {
  private readonly mac1Key: Uint8Array;
  private readonly cookieKey: Uint8Array;
  private readonly cookie = new Uint8Array(COOKIE_LEN);
  private birth = Number.NEGATIVE_INFINITY;
  private valid = false;
  private readonly lastMac1Sent = new Uint8Array(COOKIE_LEN);
  private haveSentMac1 = false;

  /** `peerPublicKey`: the static key of the peer the handshake messages go to. */
  constructor(
    peerPublicKey: Uint8Array,
    private readonly b2: Blake2sProvider = nodeBlake2s,
  ) {
    this.mac1Key = mac1Key(peerPublicKey, b2);
    this.cookieKey = cookieKey(peerPublicKey, b2);
  }

  /** Whether a cookie is held that is still fresh enough to send as mac2. */
  hasCookie(now: number): boolean {
    return this.valid && now - this.birth < COOKIE_SECRET_MAX_AGE - COOKIE_SECRET_LATENCY;
  }

  /** Fill in mac1 and mac2 of the handshake message `msg` in place. */
  addMacs(msg: Uint8Array, now: number): void {
    const m1 = computeMac1(this.mac1Key, msg, this.b2);
    mac1Of(msg).set(m1);
    this.lastMac1Sent.set(m1);
    this.haveSentMac1 = true;
    if (this.hasCookie(now)) mac2Of(msg).set(computeMac2(this.cookie, msg, this.b2));
    else mac2Of(msg).fill(0);
  }

  /** Take the cookie from a reply to our last message; false (state unchanged) if it does not open. */
  consumeReply(reply: CookieReply, now: number): boolean {
    if (!this.haveSentMac1) return false;
    const cookie = xaeadOpen(this.cookieKey, reply.nonce, reply.encryptedCookie, this.lastMac1Sent);
    if (!cookie) return false;
    this.cookie.set(cookie);
    cookie.fill(0);
    this.birth = now;
    this.valid = true;
    this.haveSentMac1 = false;
    return true;
  }

  zero(): void {
    this.cookie.fill(0);
    this.valid = false;
    this.birth = Number.NEGATIVE_INFINITY;
    this.haveSentMac1 = false;
  }
}
