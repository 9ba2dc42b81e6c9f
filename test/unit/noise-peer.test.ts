/**
 * One peer (noise/peer.ts) without a device: a fake PeerHost records what the peer transmits
 * and counts its drops, the clock is a FakeClock. Tables in the manner of the kernel's
 * self-tests: when an initiation goes out, what the staged queue keeps and drops, when a
 * keypair's age or use starts a new handshake (keep_key_fresh on send and receive), what
 * confirming a keypair sends, and the endpoint rules; then one handshake between two peers.
 */
import { describe, expect, it } from 'vitest';
import { counterNonce } from '../../crypto/aead.js';
import { deterministicRng } from '../../crypto/random.js';
import { jsSuite } from '../../crypto/suite.js';
import {
  KEEPALIVE_TIMEOUT,
  MAX_STAGED_PACKETS,
  MESSAGE_INITIATION,
  MESSAGE_RESPONSE,
  MESSAGE_TRANSPORT,
  REJECT_AFTER_TIME,
  REKEY_AFTER_MESSAGES,
  REKEY_AFTER_TIME,
  REKEY_TIMEOUT,
} from '../../noise/constants.js';
import type { DropReason } from '../../noise/drops.js';
import { consumeInitiation, StaticIdentity } from '../../noise/handshake.js';
import { IndexTable } from '../../noise/indextable.js';
import { Keypair } from '../../noise/keypair.js';
import { FakeClock } from '../../noise/memnet.js';
import { parseInitiation, parseResponse, readU32, TRANSPORT } from '../../noise/messages.js';
import { Peer, type PeerHost } from '../../noise/peer.js';
import type { Endpoint } from '../../noise/types.js';
import { keypair } from '../helpers/keys.js';

const EP_A: Endpoint = { address: '192.0.2.1', port: 51820, family: 4 };
const EP_B: Endpoint = { address: '198.51.100.2', port: 51821, family: 4, localAddress: '198.51.100.9', ifindex: 3 };

interface Sent {
  type: number;
  length: number;
  data: Uint8Array;
  to: Endpoint;
}

/** A PeerHost that keeps what is transmitted and counts drops. */
class FakeHost implements PeerHost {
  readonly clock = new FakeClock();
  readonly rng;
  readonly crypto = jsSuite;
  readonly logger = { verbose() {}, error() {} };
  readonly indices;
  readonly txNonce = new Uint8Array(12);
  paddingLimit = 1420;
  identity: StaticIdentity | null;
  readonly sent: Sent[] = [];
  readonly drops: Partial<Record<DropReason, number>> = {};
  private tx = new Uint8Array(0);

  constructor(seed: number, privateKey: Uint8Array | null) {
    this.rng = deterministicRng(seed);
    this.indices = new IndexTable<Peer>(this.rng);
    this.identity = privateKey ? new StaticIdentity(privateKey) : null;
  }

  txBuffer(n: number): Uint8Array {
    this.tx = new Uint8Array(n);
    return this.tx;
  }

  txSealView(n: number): Uint8Array {
    return this.tx.subarray(16, n);
  }

  transmit(data: Uint8Array, to: Endpoint): void {
    this.sent.push({ type: data[0]!, length: data.length, data: data.slice(), to });
  }

  drop(reason: DropReason, count = 1): void {
    this.drops[reason] = (this.drops[reason] ?? 0) + count;
  }

  types(): number[] {
    return this.sent.map((s) => s.type);
  }
}

const A = keypair(1);
const B = keypair(2);

/** Peer B as A's device sees it, with its endpoint known unless told otherwise. */
function setup(o: { identity?: boolean; endpoint?: boolean; peerKey?: Uint8Array } = {}) {
  const host = new FakeHost(7, o.identity === false ? null : A.priv);
  const peer = new Peer(host, o.peerKey ?? B.pub);
  if (o.endpoint !== false) peer.endpoint = EP_B;
  return { host, peer };
}

/** A session keypair installed directly (keys are arbitrary: only the peer's bookkeeping is under test). */
function installKeypair(peer: Peer, o: { initiator: boolean; birth: number; counter?: number }): Keypair {
  const kp = new Keypair(
    { sendKey: new Uint8Array(32).fill(1), recvKey: new Uint8Array(32).fill(2), isInitiator: o.initiator, localIndex: 77, remoteIndex: 88 },
    o.birth,
  );
  if (o.counter !== undefined) kp.sendCounter = o.counter;
  peer.keypairs.add(kp);
  return kp;
}

const I = MESSAGE_INITIATION;
const T = MESSAGE_TRANSPORT;

describe('peer: when an initiation goes out', () => {
  const rows: Array<{ name: string; o?: Parameters<typeof setup>[0]; destroyed?: boolean; calls: number[]; sentAt: number[] }> = [
    {
      name: 'at most one per REKEY_TIMEOUT',
      calls: [0, 1, REKEY_TIMEOUT - 1, REKEY_TIMEOUT, 2 * REKEY_TIMEOUT + 1],
      sentAt: [0, REKEY_TIMEOUT, 2 * REKEY_TIMEOUT + 1],
    },
    { name: 'none without a private key', o: { identity: false }, calls: [0, REKEY_TIMEOUT], sentAt: [] },
    { name: 'none without an endpoint', o: { endpoint: false }, calls: [0, REKEY_TIMEOUT], sentAt: [] },
    { name: 'none to a low-order public key', o: { peerKey: new Uint8Array(32) }, calls: [0, REKEY_TIMEOUT], sentAt: [] },
    { name: 'none once the peer is removed', destroyed: true, calls: [0, REKEY_TIMEOUT], sentAt: [] },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const { host, peer } = setup(r.o);
      if (r.destroyed) peer.destroy();
      const at: number[] = [];
      for (const t of r.calls) {
        host.clock.advance(t - host.clock.now());
        const before = host.sent.length;
        peer.initiateHandshake(false);
        if (host.sent.length > before) at.push(t);
      }
      expect(at).toEqual(r.sentAt);
      expect(host.types().every((t) => t === I)).toBe(true);
      for (const s of host.sent) expect(s.length).toBe(148);
      // Each initiation arms the retransmission.
      if (r.sentAt.length > 0) expect(peer.timers.retransmitHandshake).toBeGreaterThanOrEqual(r.sentAt.at(-1)! + REKEY_TIMEOUT);
    });
  }

  it('a retry keeps the attempt count, a new handshake resets it', () => {
    const { peer } = setup();
    for (const [retry, attempts] of [
      [true, 3],
      [false, 0],
    ] as const) {
      peer.timers.handshakeAttempts = 3;
      peer.initiateHandshake(retry);
      expect(peer.timers.handshakeAttempts).toBe(attempts);
    }
  });

  it('timer-driven initiations forget the sticky source first', () => {
    for (const action of ['retransmitHandshake', 'newHandshake'] as const) {
      const { host, peer } = setup();
      peer[action]();
      expect(host.sent.map((s) => s.to)).toEqual([{ address: EP_B.address, port: EP_B.port, family: 4 }]);
    }
  });
});

describe('peer: the staged queue without a session', () => {
  const rows: Array<{ packets: number; keepalive?: boolean; staged: number; overflow: number; gaveUp: number }> = [
    { packets: 1, staged: 1, overflow: 0, gaveUp: 1 },
    { packets: MAX_STAGED_PACKETS, staged: MAX_STAGED_PACKETS, overflow: 0, gaveUp: MAX_STAGED_PACKETS },
    { packets: MAX_STAGED_PACKETS + 1, staged: MAX_STAGED_PACKETS, overflow: 1, gaveUp: MAX_STAGED_PACKETS },
    { packets: 300, staged: MAX_STAGED_PACKETS, overflow: 300 - MAX_STAGED_PACKETS, gaveUp: MAX_STAGED_PACKETS },
    { packets: 0, keepalive: true, staged: 1, overflow: 0, gaveUp: 0 },
  ];
  for (const r of rows) {
    it(`${r.packets} packet(s)${r.keepalive ? ' and a keepalive' : ''}: ${r.staged} staged, ${r.overflow} dropped, ${r.gaveUp} counted on giving up`, () => {
      const { host, peer } = setup();
      for (let i = 0; i < r.packets; i++) peer.send(Uint8Array.of(0x45, i & 255));
      if (r.keepalive) peer.sendKeepalive();
      expect(peer.stagedCount).toBe(r.staged);
      expect(host.drops['staged-overflow'] ?? 0).toBe(r.overflow);
      // One initiation for all of them (the rest are paced).
      expect(host.types()).toEqual([I]);
      peer.giveUpHandshake();
      expect(peer.stagedCount).toBe(0);
      expect(host.drops['handshake-gave-up'] ?? 0).toBe(r.gaveUp);
    });
  }

  it('keeps the newest packets: after an overflow the oldest go out never', () => {
    const { host, peer } = setup();
    for (let i = 0; i < MAX_STAGED_PACKETS + 5; i++) peer.send(Uint8Array.of(0x45, i & 255, i >> 8));
    const kp = installKeypair(peer, { initiator: true, birth: 0 });
    peer.sendStaged();
    const transports = host.sent.filter((s) => s.type === T);
    expect(transports).toHaveLength(MAX_STAGED_PACKETS);
    // Counters 0.. in queue order, carrying packets 5..: the first five were the ones dropped.
    expect(transports.map((s) => readU32(s.data, TRANSPORT.counter))).toEqual(Array.from({ length: MAX_STAGED_PACKETS }, (_, i) => i));
    const carried = transports.map((s, i) => {
      const plain = new Uint8Array(s.length - 32);
      expect(host.crypto.aead.open(kp.sendKey, counterNonce(i), s.data.subarray(16), undefined, plain)).toBe(true);
      return plain[1]! | (plain[2]! << 8);
    });
    expect(carried).toEqual(Array.from({ length: MAX_STAGED_PACKETS }, (_, i) => i + 5));
    expect(kp.sendCounter).toBe(MAX_STAGED_PACKETS);
    expect(peer.stagedCount).toBe(0);
  });
});

describe('peer: keep_key_fresh after sending', () => {
  const rows: Array<{ name: string; initiator: boolean; age: number; counter?: number; sent: number[]; staged: number }> = [
    { name: 'fresh initiator keypair', initiator: true, age: 0, sent: [T], staged: 0 },
    { name: 'initiator just under REKEY_AFTER_TIME', initiator: true, age: REKEY_AFTER_TIME - 1, sent: [T], staged: 0 },
    { name: 'initiator at REKEY_AFTER_TIME: rekey', initiator: true, age: REKEY_AFTER_TIME, sent: [T, I], staged: 0 },
    { name: 'responder at REKEY_AFTER_TIME: only the initiator rekeys on age', initiator: false, age: REKEY_AFTER_TIME, sent: [T], staged: 0 },
    { name: 'responder past REKEY_AFTER_MESSAGES: rekey', initiator: false, age: 0, counter: 2 * REKEY_AFTER_MESSAGES, sent: [T, I], staged: 0 },
    { name: 'responder below REKEY_AFTER_MESSAGES', initiator: false, age: 0, counter: REKEY_AFTER_MESSAGES / 2, sent: [T], staged: 0 },
    { name: 'initiator at REJECT_AFTER_TIME: the packet waits for a new handshake', initiator: true, age: REJECT_AFTER_TIME, sent: [I], staged: 1 },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const { host, peer } = setup();
      const kp = installKeypair(peer, { initiator: r.initiator, birth: 0, ...(r.counter !== undefined ? { counter: r.counter } : {}) });
      // The responder's keypair becomes current only once confirmed.
      if (!r.initiator) peer.keypairs.receivedWith(kp);
      host.clock.advance(r.age);
      peer.send(Uint8Array.of(0x45, 0, 0, 20));
      expect(host.types()).toEqual(r.sent);
      expect(peer.stagedCount).toBe(r.staged);
      expect(kp.sendValid).toBe(r.staged === 0);
    });
  }
});

describe('peer: keep_key_fresh after receiving', () => {
  const LAST_MINUTE = REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT;
  // `first`: initiations after a packet at `age`; `total`: after one more REKEY_TIMEOUT later
  // (the last-minute handshake is started once per session, whatever the pacing allows).
  const rows: Array<{ initiator: boolean; age: number; first: number; total: number }> = [
    { initiator: true, age: LAST_MINUTE - REKEY_TIMEOUT - 1, first: 0, total: 0 },
    { initiator: true, age: LAST_MINUTE - 1, first: 0, total: 1 },
    { initiator: true, age: LAST_MINUTE, first: 1, total: 1 },
    { initiator: false, age: LAST_MINUTE, first: 0, total: 0 },
  ];
  for (const r of rows) {
    it(`${r.initiator ? 'initiator' : 'responder'} keypair aged ${r.age} ms: ${r.first} initiation(s), ${r.total} after another packet`, () => {
      const { host, peer } = setup();
      const kp = installKeypair(peer, { initiator: r.initiator, birth: 0 });
      if (!r.initiator) peer.keypairs.receivedWith(kp);
      const initiations = () => host.types().filter((t) => t === I).length;
      host.clock.advance(r.age);
      peer.transportReceived(kp, EP_B, 32, host.clock.now());
      expect(initiations()).toBe(r.first);
      host.clock.advance(REKEY_TIMEOUT);
      peer.transportReceived(kp, EP_B, 32, host.clock.now());
      expect(initiations()).toBe(r.total);
      expect(peer.timers.sentLastMinuteHandshake).toBe(r.total > 0);
    });
  }
});

describe('peer: confirming a responder keypair', () => {
  it('promotes it, completes the handshake and sends what was staged under it', () => {
    const { host, peer } = setup();
    for (let i = 0; i < 3; i++) peer.send(Uint8Array.of(0x45, i));
    host.sent.length = 0;
    const kp = installKeypair(peer, { initiator: false, birth: 0 });
    expect(peer.keypairs.next).toBe(kp);
    host.clock.advance(100);
    peer.transportReceived(kp, EP_B, 48, host.clock.now());
    expect(peer.keypairs.current).toBe(kp);
    expect(host.types()).toEqual([T, T, T]);
    expect(peer.stagedCount).toBe(0);
    expect(peer.timers.retransmitHandshake).toBe(Infinity);
    expect(peer.lastHandshakeWall).toBe(host.clock.wall());
    expect(peer.rxBytes).toBe(48);
  });
});

describe('peer: endpoints', () => {
  const sticky: Array<[Endpoint, Endpoint]> = [
    [EP_B, { address: EP_B.address, port: EP_B.port, family: 4 }],
    [
      { address: '2001:db8::1', port: 9, family: 6, ifindex: 4 },
      { address: '2001:db8::1', port: 9, family: 6 },
    ],
    [
      { address: '192.0.2.7', port: 9, family: 4, localAddress: '192.0.2.1' },
      { address: '192.0.2.7', port: 9, family: 4 },
    ],
  ];
  for (const [before, after] of sticky) {
    it(`clearEndpointSource: ${JSON.stringify(before)} -> ${JSON.stringify(after)}`, () => {
      const { peer } = setup();
      peer.endpoint = before;
      peer.clearEndpointSource();
      expect(peer.endpoint).toEqual(after);
    });
  }

  it('clearEndpointSource keeps an endpoint without a source as the same object', () => {
    const { peer } = setup();
    peer.endpoint = EP_A;
    peer.clearEndpointSource();
    expect(peer.endpoint).toBe(EP_A);
  });

  const roaming: Array<{ from: Endpoint; same: boolean }> = [
    { from: { ...EP_B }, same: true },
    { from: { ...EP_B, port: 1 }, same: false },
    { from: { ...EP_B, address: '198.51.100.3' }, same: false },
    { from: { ...EP_B, localAddress: '198.51.100.10' }, same: false },
  ];
  for (const r of roaming) {
    it(`an authenticated packet from ${JSON.stringify(r.from)} ${r.same ? 'keeps' : 'replaces'} the endpoint`, () => {
      const { host, peer } = setup();
      const kp = installKeypair(peer, { initiator: true, birth: 0 });
      peer.transportReceived(kp, r.from, 32, host.clock.now());
      expect(peer.endpoint).toBe(r.same ? EP_B : r.from);
    });
  }

  const keepalives: Array<[number, number]> = [
    [25, 25_000],
    [1, 1000],
    [0, 0],
  ];
  for (const [seconds, ms] of keepalives) {
    it(`persistent keepalive ${seconds} s: interval ${ms} ms`, () => {
      const { host, peer } = setup();
      peer.persistentKeepalive = 25;
      peer.timers.anyAuthenticatedPacketTraversal(host.clock.now());
      peer.persistentKeepalive = seconds;
      expect([peer.persistentKeepalive, peer.timers.persistentKeepaliveInterval]).toEqual([seconds, ms]);
      expect(peer.timers.persistentKeepalive).toBe(seconds === 0 ? Infinity : 25_000);
    });
  }
});

describe('peer: one handshake between two peers', () => {
  it('initiation, response, confirming keepalive: both sides end with the same session', () => {
    const a = new FakeHost(1, A.priv);
    const b = new FakeHost(2, B.priv);
    const pa = new Peer(a, B.pub);
    const pb = new Peer(b, A.pub);
    pa.endpoint = EP_B;

    pa.initiateHandshake(false);
    expect(a.types()).toEqual([I]);
    const init = a.sent[0]!.data;
    const consumed = consumeInitiation(
      parseInitiation(init) as Exclude<ReturnType<typeof parseInitiation>, string>,
      b.identity!,
      () => ({ peer: pb, handshake: pb.handshake }),
      b.clock.now(),
    );
    expect(typeof consumed).toBe('object');
    pb.initiationConsumed(EP_A, init.length);
    expect(b.types()).toEqual([MESSAGE_RESPONSE]);
    expect(pb.endpoint).toBe(EP_A);
    expect(pb.keypairs.next).not.toBeNull();
    expect(pb.keypairs.current).toBeNull();

    const resp = b.sent[0]!.data;
    expect(pa.responseReceived(parseResponse(resp) as Exclude<ReturnType<typeof parseResponse>, string>, EP_B, resp.length)).toBe(true);
    // The initiator's session is current at once and confirmed by a keepalive.
    expect(pa.keypairs.current?.isInitiator).toBe(true);
    expect(a.types()).toEqual([I, T]);
    expect(a.sent[1]!.length).toBe(32);

    const keepalive = a.sent[1]!.data;
    const entry = b.indices.get(readU32(keepalive, TRANSPORT.receiver));
    expect(entry?.kind).toBe('keypair');
    if (entry?.kind !== 'keypair') return;
    pb.transportReceived(entry.keypair, EP_A, keepalive.length, b.clock.now());
    expect(pb.keypairs.current).toBe(entry.keypair);
    expect(pb.keypairs.next).toBeNull();
    expect(entry.keypair.sendKey).toEqual(pa.keypairs.current!.recvKey);
    expect(entry.keypair.recvKey).toEqual(pa.keypairs.current!.sendKey);
    expect([pa.txBytes, pa.rxBytes, pb.txBytes, pb.rxBytes]).toEqual([148 + 32, 92, 92, 148 + 32]);
  });
});
