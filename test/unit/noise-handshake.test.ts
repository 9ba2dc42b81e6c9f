import { describe, expect, it } from 'vitest';
import { deterministicRng } from '../../crypto/random.js';
import { tai64n } from '../../crypto/tai64n.js';
import { generatePrivateKey } from '../../crypto/x25519.js';
import { INITIATION_SIZE, RESPONSE_SIZE } from '../../noise/constants.js';
import { CookieState, computeMac1 } from '../../noise/cookie.js';
import { consumeInitiation, Handshake, StaticIdentity } from '../../noise/handshake.js';
import { INITIATION, type Initiation, parseInitiation, parseResponse, RESPONSE } from '../../noise/messages.js';
import { keypair } from '../helpers/keys.js';
import { DH, H, KDF, MAC, open, refConsumeInitiation } from '../helpers/whitepaper.js';

const enc = new TextEncoder();
const WALL = Date.UTC(2024, 5, 1, 12, 0, 0);

function setup(psk?: Uint8Array) {
  const i = keypair(1);
  const r = keypair(2);
  const idI = new StaticIdentity(i.priv.slice());
  const idR = new StaticIdentity(r.priv.slice());
  const hsI = new Handshake(r.pub); // the initiator's state for peer R
  const hsR = new Handshake(i.pub); // the responder's state for peer I
  hsI.setIdentity(idI);
  hsR.setIdentity(idR);
  if (psk) {
    hsI.setPresharedKey(psk);
    hsR.setPresharedKey(psk);
  }
  return { i, r, idI, idR, hsI, hsR };
}

for (const withPsk of [false, true]) {
  describe(`handshake ${withPsk ? 'with' : 'without'} preshared key`, () => {
    const psk = withPsk ? deterministicRng(99)(new Uint8Array(32)) : undefined;

    it('produces messages of the right sizes and fields, and both sides derive the same keys', () => {
      const { i, r, idI, idR, hsI, hsR } = setup(psk);
      const rngI = deterministicRng(10);
      const rngR = deterministicRng(20);
      const init = hsI.createInitiation(idI, 0x11223344, rngI, WALL)!;
      expect(init.length).toBe(INITIATION_SIZE);
      expect([...init.subarray(0, 4)]).toEqual([1, 0, 0, 0]);
      expect([...init.subarray(4, 8)]).toEqual([0x44, 0x33, 0x22, 0x11]);
      expect(hsI.state).toBe('created-initiation');

      // MACs are the caller's: zero here, then mac1 verified independently.
      expect(init.subarray(INITIATION.mac1).every((b) => b === 0)).toBe(true);
      const cs = new CookieState(r.pub);
      cs.addMacs(init, 0);
      const mac1Key = H(enc.encode('mac1----'), r.pub);
      const expectedMac1 = MAC(mac1Key, init.subarray(0, 116));
      expect(init.subarray(116, 132)).toEqual(expectedMac1);
      expect(init.subarray(132, 148).every((b) => b === 0)).toBe(true);

      // The reference responder decrypts the initiator's static key and the timestamp.
      const m = parseInitiation(init) as Initiation;
      const ref = refConsumeInitiation(m, r.priv);
      expect(ref.staticI).toEqual(i.pub);
      expect(ref.timestamp).toEqual(tai64n(WALL));

      const got = consumeInitiation(m, idR, (pub) => (Buffer.from(pub).equals(Buffer.from(i.pub)) ? { peer: 'I', handshake: hsR } : undefined), 1000);
      expect(typeof got).toBe('object');
      expect(hsR.state).toBe('consumed-initiation');
      expect(hsR.remoteIndex).toBe(0x11223344);

      const resp = hsR.createResponse(0xaabbccdd, rngR)!;
      expect(resp.length).toBe(RESPONSE_SIZE);
      expect([...resp.subarray(0, 4)]).toEqual([2, 0, 0, 0]);
      const pr = parseResponse(resp);
      if (typeof pr === 'string') throw new Error(pr);
      expect(pr.sender).toBe(0xaabbccdd);
      expect(pr.receiver).toBe(0x11223344);
      expect(pr.encryptedNothing.length).toBe(16);

      // The reference initiator side of the response (independent), with our own ephemeral
      // recovered by replaying the deterministic RNG.
      const ephI = generatePrivateKey(deterministicRng(10));
      let ck = ref.ck;
      let h = ref.h;
      [ck] = KDF(1, ck, pr.ephemeral) as [Uint8Array];
      h = H(h, pr.ephemeral);
      [ck] = KDF(1, ck, DH(ephI, pr.ephemeral)) as [Uint8Array];
      [ck] = KDF(1, ck, DH(i.priv, pr.ephemeral)) as [Uint8Array];
      const [ck3, tau, k] = KDF(3, ck, psk ?? new Uint8Array(32)) as [Uint8Array, Uint8Array, Uint8Array];
      h = H(h, tau);
      expect(open(k, pr.encryptedNothing, h).length).toBe(0);
      const [t1, t2] = KDF(2, ck3, new Uint8Array(0)) as [Uint8Array, Uint8Array];

      expect(hsI.consumeResponse(pr, idI)).toBe(true);
      const kI = hsI.beginSession()!;
      const kR = hsR.beginSession()!;
      expect(kI.isInitiator).toBe(true);
      expect(kR.isInitiator).toBe(false);
      expect(kI.sendKey).toEqual(t1);
      expect(kI.recvKey).toEqual(t2);
      expect(kR.recvKey).toEqual(t1);
      expect(kR.sendKey).toEqual(t2);
      expect(kI.localIndex).toBe(0x11223344);
      expect(kI.remoteIndex).toBe(0xaabbccdd);
      expect(kR.localIndex).toBe(0xaabbccdd);
      expect(kR.remoteIndex).toBe(0x11223344);
      expect(hsI.state).toBe('zeroed');
      expect(hsR.state).toBe('zeroed');
    });

    it('is deterministic for fixed keys, rng and time', () => {
      const a = setup(psk);
      const b = setup(psk);
      const ia = a.hsI.createInitiation(a.idI, 7, deterministicRng(3), WALL)!;
      const ib = b.hsI.createInitiation(b.idI, 7, deterministicRng(3), WALL)!;
      expect(ia).toEqual(ib);
    });
  });
}

describe('handshake failure cases leave state unchanged', () => {
  function initiated(psk?: Uint8Array) {
    const s = setup(psk);
    const init = s.hsI.createInitiation(s.idI, 1, deterministicRng(5), WALL)!;
    return { ...s, init };
  }
  const lookupOf = (s: ReturnType<typeof setup>) => (pub: Uint8Array) =>
    Buffer.from(pub).equals(Buffer.from(s.i.pub)) ? { peer: 'I', handshake: s.hsR } : undefined;

  it('rejects a replayed initiation (timestamp not newer) and a flood', () => {
    const s = initiated();
    const m = parseInitiation(s.init) as Initiation;
    expect(typeof consumeInitiation(m, s.idR, lookupOf(s), 1000)).toBe('object');
    // Same message again, much later: stale timestamp.
    expect(consumeInitiation(m, s.idR, lookupOf(s), 60_000)).toBe('stale-timestamp');
    // A newer initiation within 1/50 s of the last consumed one: flood.
    const init2 = s.hsI.createInitiation(s.idI, 2, deterministicRng(6), WALL + 1000)!;
    expect(consumeInitiation(parseInitiation(init2) as Initiation, s.idR, lookupOf(s), 1010)).toBe('initiation-flood');
    expect(typeof consumeInitiation(parseInitiation(init2) as Initiation, s.idR, lookupOf(s), 1021)).toBe('object');
  });

  it('rejects unknown peers, corrupted fields and low-order ephemerals', () => {
    const s = initiated();
    const m = parseInitiation(s.init) as Initiation;
    expect(consumeInitiation(m, s.idR, () => undefined, 0)).toBe('unknown-peer');
    for (const off of [INITIATION.ephemeral + 3, INITIATION.static + 5, INITIATION.timestamp + 1, INITIATION.timestamp + 27]) {
      const bad = s.init.slice();
      bad[off]! ^= 0x10;
      expect(consumeInitiation(parseInitiation(bad) as Initiation, s.idR, lookupOf(s), 0)).toBe('invalid-initiation');
    }
    const zeroEph = s.init.slice();
    zeroEph.fill(0, INITIATION.ephemeral, INITIATION.ephemeral + 32);
    expect(consumeInitiation(parseInitiation(zeroEph) as Initiation, s.idR, lookupOf(s), 0)).toBe('invalid-initiation');
    expect(s.hsR.state).toBe('zeroed');
  });

  it('rejects a response with a wrong PSK, wrong receiver, or tampering', () => {
    const s = initiated(new Uint8Array(32).fill(7));
    s.hsR.setPresharedKey(new Uint8Array(32).fill(8)); // mismatch
    const m = parseInitiation(s.init) as Initiation;
    // The initiation itself does not depend on the PSK.
    expect(typeof consumeInitiation(m, s.idR, lookupOf(s), 0)).toBe('object');
    const resp = s.hsR.createResponse(9, deterministicRng(8))!;
    expect(s.hsI.consumeResponse(parseResponse(resp) as never, s.idI)).toBe(false);
    expect(s.hsI.state).toBe('created-initiation');

    s.hsR.setPresharedKey(new Uint8Array(32).fill(7));
    const s2 = initiated(new Uint8Array(32).fill(7));
    consumeInitiation(parseInitiation(s2.init) as Initiation, s2.idR, lookupOf(s2), 0);
    const good = s2.hsR.createResponse(9, deterministicRng(8))!;
    const wrongRecv = good.slice();
    wrongRecv[RESPONSE.receiver]! ^= 1;
    expect(s2.hsI.consumeResponse(parseResponse(wrongRecv) as never, s2.idI)).toBe(false);
    const tampered = good.slice();
    tampered[RESPONSE.empty + 3]! ^= 1;
    expect(s2.hsI.consumeResponse(parseResponse(tampered) as never, s2.idI)).toBe(false);
    expect(s2.hsI.state).toBe('created-initiation');
    expect(s2.hsI.consumeResponse(parseResponse(good) as never, s2.idI)).toBe(true);
    // A second consumption of the same response fails (state moved on).
    expect(s2.hsI.consumeResponse(parseResponse(good) as never, s2.idI)).toBe(false);
  });

  it('refuses to handshake with a low-order peer key', () => {
    const idI = new StaticIdentity(keypair(1).priv);
    const hs = new Handshake(new Uint8Array(32)); // the all-zero point is of low order
    hs.setIdentity(idI);
    expect(hs.usable).toBe(false);
    expect(hs.createInitiation(idI, 1, deterministicRng(1), WALL)).toBeNull();
  });

  it('mac1 covers exactly the bytes before it', () => {
    const s = initiated();
    const key = H(enc.encode('mac1----'), s.r.pub);
    expect(computeMac1(key, s.init)).toEqual(MAC(key, s.init.subarray(0, 116)));
  });
});
