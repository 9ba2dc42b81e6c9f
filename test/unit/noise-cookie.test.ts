import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { blake2s } from '@noble/hashes/blake2.js';
import { describe, expect, it } from 'vitest';
import { deterministicRng } from '../../crypto/random.js';
import { COOKIE_SECRET_LATENCY, COOKIE_SECRET_MAX_AGE } from '../../noise/constants.js';
import { CookieChecker, CookieState } from '../../noise/cookie.js';
import { type CookieReply, parseCookieReply } from '../../noise/messages.js';

const enc = new TextEncoder();
const H = (...p: Uint8Array[]) => {
  const h = blake2s.create();
  for (const x of p) h.update(x);
  return h.digest();
};

function fakeInitiation(seed: number): Uint8Array {
  const m = deterministicRng(seed)(new Uint8Array(148));
  m[0] = 1;
  m[1] = m[2] = m[3] = 0;
  return m;
}

describe('cookies', () => {
  const responderPub = deterministicRng(42)(new Uint8Array(32));
  const source = new Uint8Array([192, 0, 2, 1, 0xca, 0x6c]); // 192.0.2.1 port 51820, big endian

  it('makes a cookie reply an independent implementation can open, and the initiator uses it for mac2', () => {
    const checker = new CookieChecker(deterministicRng(7));
    checker.setPublicKey(responderPub);
    const initiator = new CookieState(responderPub);
    const msg = fakeInitiation(1);
    initiator.addMacs(msg, 0);
    expect(checker.checkMac1(msg)).toBe(true);
    expect(msg.subarray(132).every((b) => b === 0)).toBe(true);
    expect(checker.checkMac2(msg, source, 0)).toBe(false);

    const fresh = new CookieChecker(deterministicRng(7));
    fresh.setPublicKey(responderPub);
    const replyBytes = fresh.createReply(msg, 0x01020304, source, 0)!;
    expect(replyBytes.length).toBe(64);
    expect([...replyBytes.subarray(0, 8)]).toEqual([3, 0, 0, 0, 4, 3, 2, 1]);
    const reply = parseCookieReply(replyBytes) as CookieReply;

    // Reproduce the responder's randomness: the nonce is drawn first, then the secret.
    const r = deterministicRng(7);
    const nonce = r(new Uint8Array(24));
    const secret = r(new Uint8Array(32));
    expect(reply.nonce).toEqual(nonce);
    const cookieKey = H(enc.encode('cookie--'), responderPub);
    const cookie = xchacha20poly1305(cookieKey, nonce, msg.subarray(116, 132)).decrypt(reply.encryptedCookie);
    expect(cookie).toEqual(blake2s(source, { key: secret, dkLen: 16 }));

    expect(initiator.consumeReply(reply, 1000)).toBe(true);
    // Only once per mac1 sent.
    expect(initiator.consumeReply(reply, 1000)).toBe(false);
    const msg2 = fakeInitiation(2);
    initiator.addMacs(msg2, 2000);
    expect(msg2.subarray(132)).toEqual(blake2s(msg2.subarray(0, 132), { key: cookie, dkLen: 16 }));
    expect(fresh.checkMac2(msg2, source, 2000)).toBe(true);
    // Another source (port) has another cookie.
    expect(fresh.checkMac2(msg2, new Uint8Array([192, 0, 2, 1, 0xca, 0x6d]), 2000)).toBe(false);
  });

  it('rejects replies not made for our last mac1', () => {
    const checker = new CookieChecker(deterministicRng(8));
    checker.setPublicKey(responderPub);
    const initiator = new CookieState(responderPub);
    const other = fakeInitiation(3);
    initiator.addMacs(other, 0);
    const msg = fakeInitiation(4);
    initiator.addMacs(msg, 0);
    const forOther = parseCookieReply(checker.createReply(other, 1, source, 0)!) as CookieReply;
    expect(initiator.consumeReply(forOther, 0)).toBe(false);
    const tampered = checker.createReply(msg, 1, source, 0)!;
    tampered[40]! ^= 1;
    expect(initiator.consumeReply(parseCookieReply(tampered) as CookieReply, 0)).toBe(false);
    expect(initiator.hasCookie(0)).toBe(false);
    expect(new CookieState(responderPub).consumeReply(parseCookieReply(checker.createReply(msg, 1, source, 0)!) as CookieReply, 0)).toBe(false);
  });

  it('expires the initiator cookie before the secret rotates, and rotates the secret every 2 minutes', () => {
    const checker = new CookieChecker(deterministicRng(9));
    checker.setPublicKey(responderPub);
    const initiator = new CookieState(responderPub);
    const msg = fakeInitiation(5);
    initiator.addMacs(msg, 0);
    expect(initiator.consumeReply(parseCookieReply(checker.createReply(msg, 1, source, 0)!) as CookieReply, 0)).toBe(true);
    const limit = COOKIE_SECRET_MAX_AGE - COOKIE_SECRET_LATENCY;
    expect(initiator.hasCookie(limit - 1)).toBe(true);
    expect(initiator.hasCookie(limit)).toBe(false);
    const m2 = fakeInitiation(6);
    initiator.addMacs(m2, limit - 1);
    expect(checker.checkMac2(m2, source, limit - 1)).toBe(true);
    expect(checker.checkMac2(m2, source, COOKIE_SECRET_MAX_AGE)).toBe(false); // new secret
    const m3 = fakeInitiation(7);
    initiator.addMacs(m3, limit);
    expect(m3.subarray(132).every((b) => b === 0)).toBe(true);
  });

  it('has no mac1 key without a public key', () => {
    const checker = new CookieChecker(deterministicRng(1));
    expect(checker.checkMac1(fakeInitiation(1))).toBe(false);
    expect(checker.createReply(fakeInitiation(1), 0, source, 0)).toBeNull();
  });
});
