/**
 * The test-vector generator: fixed inputs → the whitepaper's computation (whitepaper.ts) →
 * the same exchange run by the engine (engine-run.ts) → a check that the engine sent exactly
 * the computed bytes → the vector file (format.ts, documented in docs/VECTORS.md).
 *
 * Three handshakes: without a preshared key (with the first transport messages each way,
 * padding and a keepalive), with one, and under load (cookie reply, then mac2). Two counter
 * sequences on a fresh session: replay-window edges and the counter limits. Any difference
 * between the engine and the computation throws, so a file that exists was made by both.
 */
import type { CryptoSuite } from '../../crypto/suite.js';
import { jsSuite } from '../../crypto/suite.js';
import { clampPrivateKey } from '../../crypto/x25519.js';
import { KEEPALIVE_TIMEOUT, REKEY_TIMEOUT } from '../../noise/constants.js';
import { parseIpStrict } from '../../noise/iptext.js';
import { ENDPOINT, EnginePair, type Sent, TUNNEL } from './engine-run.js';
import {
  type CounterSequence,
  type CounterStep,
  fromHex,
  type HandshakeInputs,
  type HandshakeVector,
  type Outcome,
  type Party,
  type TimeInput,
  type TransportVector,
  toHex,
  type VectorFile,
} from './format.js';
import { icmpv4Echo, icmpv6EchoRequest } from './packets.js';
import * as wp from './whitepaper.js';

const enc = new TextEncoder();

export const REKEY_AFTER_MESSAGES = 2n ** 60n;
export const REJECT_AFTER_MESSAGES = 2n ** 64n - 2n ** 13n - 1n;

/** Every input is BLAKE2s-256("wireguard-ts test vector: " || label), private keys clamped. */
function fixedBytes(s: CryptoSuite, label: string, len = 32): Uint8Array {
  return s.blake2s.hash(enc.encode(`wireguard-ts test vector: ${label}`)).slice(0, len);
}
function fixedKey(s: CryptoSuite, label: string): Uint8Array {
  return clampPrivateKey(fixedBytes(s, label));
}

function time(ms: number): TimeInput {
  return { unixMilliseconds: ms, utc: new Date(ms).toISOString() };
}

/** Zero padding to a multiple of 16 (no MTU clamp: the devices have none). */
function paddingOf(n: number): number {
  return (16 - (n % 16)) % 16;
}

const PING_DATA = Uint8Array.from({ length: 56 }, (_, i) => i);
const IDENT = 0x7767;
const REQUEST = icmpv4Echo(TUNNEL.initiator.v4, TUNNEL.responder.v4, false, IDENT, 1, PING_DATA);
const REPLY = icmpv4Echo(TUNNEL.responder.v4, TUNNEL.initiator.v4, true, IDENT, 1, PING_DATA);
const REQUEST6 = icmpv6EchoRequest(TUNNEL.initiator.v6, TUNNEL.responder.v6, IDENT, 2, new Uint8Array(0));

interface Statics {
  S_i_priv: Uint8Array;
  S_i_pub: Uint8Array;
  S_r_priv: Uint8Array;
  S_r_pub: Uint8Array;
}

interface HandshakeSpec {
  name: string;
  description: string;
  E_i_priv: Uint8Array;
  E_r_priv: Uint8Array;
  I_i: number;
  I_r: number;
  Q: Uint8Array | null;
  wallMs: number;
}

/** The whitepaper's side of one handshake: inputs, both messages and the transport keys. */
function computeHandshake(s: CryptoSuite, st: Statics, h: HandshakeSpec, cookie: Uint8Array | null) {
  const Q = h.Q ?? new Uint8Array(32);
  const E_i_pub = s.x25519.publicKey(h.E_i_priv);
  const init = wp.initiation(s, { S_i_priv: st.S_i_priv, S_r_pub: st.S_r_pub, E_i_priv: h.E_i_priv, I_i: h.I_i, wallMs: h.wallMs, cookie });
  const resp = wp.response(s, { S_i_pub: st.S_i_pub, E_i_pub, E_r_priv: h.E_r_priv, I_r: h.I_r, I_i: h.I_i, Q }, init.C, init.H);
  const keys = wp.session(s, resp.C);
  const inputs: HandshakeInputs = {
    'S_i^priv': toHex(st.S_i_priv),
    'S_i^pub': toHex(st.S_i_pub),
    'S_r^priv': toHex(st.S_r_priv),
    'S_r^pub': toHex(st.S_r_pub),
    'E_i^priv': toHex(h.E_i_priv),
    'E_i^pub': toHex(E_i_pub),
    'E_r^priv': toHex(h.E_r_priv),
    'E_r^pub': toHex(s.x25519.publicKey(h.E_r_priv)),
    Q: toHex(Q),
    I_i: h.I_i,
    I_r: h.I_r,
    time: time(h.wallMs),
  };
  return { inputs, init, resp, keys };
}

type Computed = ReturnType<typeof computeHandshake>;

/** A transport message of the handshake `c`, computed, as a vector. */
function transportVector(
  s: CryptoSuite,
  c: Computed,
  h: HandshakeSpec,
  from: Party,
  counter: bigint,
  packet: Uint8Array,
  description: string,
): { vector: TransportVector; bytes: Uint8Array } {
  const key = from === 'initiator' ? c.keys.T_i_send : c.keys.T_i_recv;
  const receiver = from === 'initiator' ? h.I_r : h.I_i;
  const padding = paddingOf(packet.length);
  const t = wp.transport(s, key, receiver, counter, packet, padding);
  return {
    vector: {
      description,
      from,
      key: from === 'initiator' ? 'T_i^send' : 'T_r^send',
      receiver,
      counter: counter.toString(),
      packet: toHex(packet),
      padding,
      fields: t.fields,
      bytes: toHex(t.bytes),
    },
    bytes: t.bytes,
  };
}

/** Throws unless the engine sent exactly `expected` (who, what) in this order. */
function expectSent(what: string, got: Sent[], expected: { from: Party; bytes: Uint8Array; name: string }[]): void {
  const names = expected.map((e) => e.name).join(', ');
  if (got.length !== expected.length) throw new Error(`${what}: the engine sent ${got.length} datagrams, expected ${expected.length} (${names})`);
  expected.forEach((e, i) => {
    const g = got[i]!;
    if (g.from !== e.from) throw new Error(`${what}: datagram ${i} came from the ${g.from}, expected the ${e.from}'s ${e.name}`);
    if (toHex(g.data) !== toHex(e.bytes)) {
      const n = Math.min(g.data.length, e.bytes.length);
      let at = 0;
      while (at < n && g.data[at] === e.bytes[at]) at++;
      throw new Error(`${what}: the engine's ${e.name} (${g.data.length} bytes) differs from the whitepaper's (${e.bytes.length} bytes) at byte ${at}`);
    }
  });
}

function expectInbox(what: string, got: Uint8Array[], expected: Uint8Array[]): void {
  if (got.length !== expected.length || got.some((p, i) => toHex(p) !== toHex(expected[i]!))) {
    throw new Error(`${what}: the engine delivered ${got.length} packets, not the ${expected.length} sent`);
  }
}

function pairFor(
  s: CryptoSuite,
  st: Statics,
  h: HandshakeSpec,
  extra: { iScript?: Record<number, Uint8Array[]>; rScript?: Record<number, Uint8Array[]>; underLoad?: boolean; wallStart?: number } = {},
): EnginePair {
  return new EnginePair({
    suite: s,
    wallStart: extra.wallStart ?? h.wallMs,
    presharedKey: h.Q,
    initiator: { privateKey: st.S_i_priv, script: extra.iScript ?? { 4: [wp.u32le(h.I_i)], 32: [h.E_i_priv] } },
    responder: { privateKey: st.S_r_priv, script: extra.rScript ?? { 4: [wp.u32le(h.I_r)], 32: [h.E_r_priv] }, underLoad: extra.underLoad ?? false },
  });
}

function vectorOf(h: HandshakeSpec, c: Computed, transport: TransportVector[]): HandshakeVector {
  return {
    name: h.name,
    description: h.description,
    inputs: c.inputs,
    initiation: c.init.vector,
    response: c.resp.vector,
    session: { lines: c.keys.lines },
    transport,
  };
}

/** Without a preshared key: the handshake, data each way (padded and not) and a keepalive. */
function withoutPsk(s: CryptoSuite, st: Statics, h: HandshakeSpec): HandshakeVector {
  const c = computeHandshake(s, st, h, null);
  const t = [
    transportVector(
      s,
      c,
      h,
      'initiator',
      0n,
      REQUEST,
      "The initiator's first message: the packet that was waiting for the handshake (84 bytes, padded by 12).",
    ),
    transportVector(s, c, h, 'responder', 0n, REPLY, "The responder's first message, its reply (84 bytes, padded by 12)."),
    transportVector(s, c, h, 'initiator', 1n, REQUEST6, 'An IPv6 packet of 48 bytes: no padding.'),
    transportVector(
      s,
      c,
      h,
      'responder',
      1n,
      new Uint8Array(0),
      `A keepalive: the responder received data and sent nothing for KEEPALIVE_TIMEOUT (${KEEPALIVE_TIMEOUT / 1000} s).`,
    ),
  ];
  const e = pairFor(s, st, h);
  try {
    e.device.initiator.sendPacket(REQUEST);
    expectSent(h.name, e.pump(), [
      { from: 'initiator', bytes: c.init.bytes, name: 'initiation' },
      { from: 'responder', bytes: c.resp.bytes, name: 'response' },
      { from: 'initiator', bytes: t[0]!.bytes, name: 'first transport message' },
    ]);
    e.device.responder.sendPacket(REPLY);
    expectSent(h.name, e.pump(), [{ from: 'responder', bytes: t[1]!.bytes, name: 'first transport message' }]);
    e.device.initiator.sendPacket(REQUEST6);
    expectSent(h.name, e.pump(), [{ from: 'initiator', bytes: t[2]!.bytes, name: 'second transport message' }]);
    expectSent(h.name, e.advanceAndTick(KEEPALIVE_TIMEOUT, 'responder'), [{ from: 'responder', bytes: t[3]!.bytes, name: 'keepalive' }]);
    expectInbox(h.name, e.inbox('responder'), [REQUEST, REQUEST6]);
    expectInbox(h.name, e.inbox('initiator'), [REPLY]);
    e.checkClean();
  } finally {
    e.close();
  }
  return vectorOf(
    h,
    c,
    t.map((x) => x.vector),
  );
}

/** With a preshared key: the handshake and the initiator's first message; the responder sends nothing. */
function withPsk(s: CryptoSuite, st: Statics, h: HandshakeSpec): { vector: HandshakeVector; computed: Computed } {
  const c = computeHandshake(s, st, h, null);
  const t = transportVector(s, c, h, 'initiator', 0n, REQUEST, "The initiator's first message: the packet that was waiting for the handshake.");
  const e = pairFor(s, st, h);
  try {
    e.device.initiator.sendPacket(REQUEST);
    expectSent(h.name, e.pump(), [
      { from: 'initiator', bytes: c.init.bytes, name: 'initiation' },
      { from: 'responder', bytes: c.resp.bytes, name: 'response' },
      { from: 'initiator', bytes: t.bytes, name: 'first transport message' },
    ]);
    expectInbox(h.name, e.inbox('responder'), [REQUEST]);
    e.checkClean();
  } finally {
    e.close();
  }
  return { vector: vectorOf(h, c, [t.vector]), computed: c };
}

/**
 * Under load: the responder answers a first initiation with a cookie reply; REKEY_TIMEOUT
 * later the initiator retries with a new initiation whose mac2 is made from the cookie, and
 * the handshake completes. `first` gives the first initiation's ephemeral, index and time.
 */
function underLoad(
  s: CryptoSuite,
  st: Statics,
  h: HandshakeSpec,
  first: { E_i_priv: Uint8Array; I_i: number; wallMs: number },
  R_m: Uint8Array,
  nonce: Uint8Array,
): HandshakeVector {
  const source = ENDPOINT.initiator;
  const A_m = Uint8Array.from([...parseIpStrict(source.address).bytes, source.port >>> 8, source.port & 0xff]);
  const init1 = wp.initiation(s, { S_i_priv: st.S_i_priv, S_r_pub: st.S_r_pub, E_i_priv: first.E_i_priv, I_i: first.I_i, wallMs: first.wallMs, cookie: null });
  const mac1 = fromHex(init1.vector.fields.mac1!);
  const reply = wp.cookieReply(s, { R_m, A_m, S_r_pub: st.S_r_pub, nonce, mac1, receiver: first.I_i });
  if (h.wallMs !== first.wallMs + REKEY_TIMEOUT) throw new Error('the retry comes REKEY_TIMEOUT after the first initiation');
  const c = computeHandshake(s, st, h, reply.cookie);
  const t = transportVector(s, c, h, 'initiator', 0n, REQUEST, "The initiator's first message: the packet that was waiting for the handshake.");
  const e = pairFor(s, st, h, {
    wallStart: first.wallMs,
    underLoad: true,
    iScript: { 4: [wp.u32le(first.I_i), wp.u32le(h.I_i)], 32: [first.E_i_priv, h.E_i_priv] },
    rScript: { 4: [wp.u32le(h.I_r)], 32: [R_m, h.E_r_priv], 24: [nonce] },
  });
  try {
    e.device.initiator.sendPacket(REQUEST);
    expectSent(h.name, e.pump(), [
      { from: 'initiator', bytes: init1.bytes, name: 'first initiation' },
      { from: 'responder', bytes: reply.bytes, name: 'cookie reply' },
    ]);
    expectSent(h.name, e.advanceAndTick(REKEY_TIMEOUT, 'initiator'), [
      { from: 'initiator', bytes: c.init.bytes, name: 'retried initiation (with mac2)' },
      { from: 'responder', bytes: c.resp.bytes, name: 'response' },
      { from: 'initiator', bytes: t.bytes, name: 'first transport message' },
    ]);
    expectInbox(h.name, e.inbox('responder'), [REQUEST]);
    e.checkClean({ 'cookie-sent': 1 });
  } finally {
    e.close();
  }
  return {
    ...vectorOf(h, c, [t.vector]),
    cookie: {
      inputs: {
        R_m: toHex(R_m),
        source: { address: source.address, port: source.port },
        A_m: toHex(A_m),
        'msg.nonce': toHex(nonce),
        'E_i^priv': toHex(first.E_i_priv),
        'E_i^pub': toHex(s.x25519.publicKey(first.E_i_priv)),
        I_i: first.I_i,
        time: time(first.wallMs),
      },
      initiation: init1.vector,
      reply: reply.vector,
    },
  };
}

interface StepSpec {
  counter: bigint;
  expect: Outcome | 'window-dependent';
  engine: Outcome;
  note?: string;
  /** Flip the low bit of the tag's last byte. */
  tamper?: boolean;
}

/**
 * Deliver the steps, as keepalives from the responder of handshake `h` (with-psk), to an
 * initiator that has received nothing from it yet, and check the engine's outcome of each.
 */
function counterSequence(s: CryptoSuite, st: Statics, h: HandshakeSpec, c: Computed, name: string, description: string, specs: StepSpec[]): CounterSequence {
  const e = pairFor(s, st, h);
  const steps: CounterStep[] = [];
  try {
    e.device.initiator.sendPacket(REQUEST);
    e.pump();
    const dev = e.device.initiator;
    for (const sp of specs) {
      const bytes = transportVector(s, c, h, 'responder', sp.counter, new Uint8Array(0), '').bytes;
      if (sp.tamper) bytes[bytes.length - 1]! ^= 1;
      const before = dev.stats.keepalivesIn;
      dev.receiveDatagram(bytes, ENDPOINT.responder);
      const got: Outcome = dev.stats.keepalivesIn === before + 1 ? 'accept' : 'reject';
      if (got !== sp.engine) throw new Error(`${name}: the engine does ${got} counter ${sp.counter}, the vectors say it does ${sp.engine}`);
      if (e.pump().length !== 0) throw new Error(`${name}: the engine answered a keepalive`);
      steps.push({ counter: sp.counter.toString(), bytes: toHex(bytes), expect: sp.expect, engine: got, ...(sp.note ? { note: sp.note } : {}) });
    }
  } finally {
    e.close();
  }
  return { name, description, handshake: h.name, from: 'responder', key: 'T_r^send', receiver: h.I_i, steps };
}

const WINDOWS =
  'the reference implementations keep 8128 counters behind the highest (the Linux kernel on 64-bit, wireguard-go) or 8160 (this engine, the kernel on 32-bit)';
const BEYOND =
  'this engine keeps counters as JavaScript numbers and rejects any above 2^53 − 1 (docs/ENGINE.md); no session gets there before REJECT_AFTER_TIME';

const REPLAY_STEPS: StepSpec[] = [
  { counter: 0n, expect: 'accept', engine: 'accept' },
  { counter: 0n, expect: 'reject', engine: 'reject', note: 'a replay' },
  { counter: 2n, expect: 'accept', engine: 'accept' },
  { counter: 1n, expect: 'accept', engine: 'accept', note: 'late, inside the window' },
  { counter: 1n, expect: 'reject', engine: 'reject', note: 'a replay' },
  {
    counter: 3n,
    expect: 'reject',
    engine: 'reject',
    tamper: true,
    note: "the tag's last byte XOR 0x01: fails authentication, and must not mark counter 3 as seen",
  },
  { counter: 3n, expect: 'accept', engine: 'accept', note: 'the same counter with its real tag' },
  { counter: 9000n, expect: 'accept', engine: 'accept', note: 'a jump ahead' },
  { counter: 8999n, expect: 'accept', engine: 'accept' },
  { counter: 872n, expect: 'accept', engine: 'accept', note: `9000 − 8128: inside every window (${WINDOWS})` },
  { counter: 871n, expect: 'window-dependent', engine: 'accept', note: `9000 − 8129: rejected with an 8128-counter window, accepted with 8160 (${WINDOWS})` },
  { counter: 840n, expect: 'window-dependent', engine: 'accept', note: '9000 − 8160: the last counter an 8160-counter window accepts' },
  { counter: 839n, expect: 'reject', engine: 'reject', note: `9000 − 8161: behind every window (${WINDOWS})` },
  { counter: 30000n, expect: 'accept', engine: 'accept', note: 'a jump of more than the whole ring of 8192 bits' },
  { counter: 9000n, expect: 'reject', engine: 'reject', note: 'seen before, and far behind' },
  { counter: 29999n, expect: 'accept', engine: 'accept' },
];

const LIMIT_STEPS: StepSpec[] = [
  { counter: 2n ** 32n - 1n, expect: 'accept', engine: 'accept', note: "2^32 − 1: the nonce's low 32-bit word at its maximum" },
  { counter: 2n ** 32n, expect: 'accept', engine: 'accept', note: '2^32: carries into the high word' },
  { counter: 2n ** 53n - 1n, expect: 'accept', engine: 'accept', note: '2^53 − 1' },
  { counter: 2n ** 53n, expect: 'accept', engine: 'reject', note: `2^53: ${BEYOND}` },
  { counter: REKEY_AFTER_MESSAGES - 1n, expect: 'accept', engine: 'reject', note: `REKEY_AFTER_MESSAGES − 1; ${BEYOND}` },
  {
    counter: REKEY_AFTER_MESSAGES,
    expect: 'accept',
    engine: 'reject',
    note: `REKEY_AFTER_MESSAGES (2^60): the sender should start a new handshake, the receiver still accepts; ${BEYOND}`,
  },
  { counter: REKEY_AFTER_MESSAGES + 1n, expect: 'accept', engine: 'reject', note: `REKEY_AFTER_MESSAGES + 1; ${BEYOND}` },
  { counter: REJECT_AFTER_MESSAGES - 1n, expect: 'accept', engine: 'reject', note: `REJECT_AFTER_MESSAGES − 1: the last counter a session may use; ${BEYOND}` },
  { counter: REJECT_AFTER_MESSAGES, expect: 'reject', engine: 'reject', note: 'REJECT_AFTER_MESSAGES (2^64 − 2^13 − 1)' },
  { counter: 2n ** 64n - 1n, expect: 'reject', engine: 'reject', note: '2^64 − 1' },
];

/** The whole vector file, made with `suite` (every suite gives the same bytes). */
export function generateVectors(suite: CryptoSuite = jsSuite): VectorFile {
  const s = suite;
  const S_i_priv = fixedKey(s, 'S_i^priv');
  const S_r_priv = fixedKey(s, 'S_r^priv');
  const st: Statics = { S_i_priv, S_r_priv, S_i_pub: s.x25519.publicKey(S_i_priv), S_r_pub: s.x25519.publicKey(S_r_priv) };
  const spec = (name: string, description: string, I_i: number, I_r: number, Q: Uint8Array | null, wallMs: number): HandshakeSpec => ({
    name,
    description,
    E_i_priv: fixedKey(s, `${name} E_i^priv`),
    E_r_priv: fixedKey(s, `${name} E_r^priv`),
    I_i,
    I_r,
    Q,
    wallMs,
  });
  const t0 = Date.UTC(2025, 0, 1, 0, 0, 0, 500);
  const noPsk = spec(
    'without-psk',
    'A handshake without a preshared key (Q is zero), then the first transport messages each way.',
    0x1a2b3c4d,
    0x5e6f7081,
    null,
    t0,
  );
  const psk = spec(
    'with-psk',
    "A handshake with a preshared key, then the initiator's first transport message.",
    0x01234567,
    0x89abcdef,
    fixedBytes(s, 'Q'),
    t0 + 60_250,
  );
  const loadedFirst = { E_i_priv: fixedKey(s, 'under-load first E_i^priv'), I_i: 0xdeadbeef, wallMs: t0 + 120_000 };
  const loaded = spec(
    'under-load',
    'The responder is under load: it answers a first initiation (cookie.initiation) with a cookie reply (cookie.reply); REKEY_TIMEOUT later the initiator sends this initiation, with mac2 made from the cookie, and the handshake completes.',
    0xfeedf00d,
    0x0badcafe,
    null,
    loadedFirst.wallMs + REKEY_TIMEOUT,
  );
  const withPskResult = withPsk(s, st, psk);
  return {
    about:
      'Deterministic WireGuard test vectors: fixed static keys, ephemeral keys, indices and timestamps; every intermediate value of the whitepaper computation; messages byte for byte as the wireguard-ts engine sends them. Made by `npm run vectors` (src/vectors/).',
    format: 'docs/VECTORS.md',
    version: 1,
    constants: {
      CONSTRUCTION: wp.CONSTRUCTION,
      IDENTIFIER: wp.IDENTIFIER,
      LABEL_MAC1: wp.LABEL_MAC1,
      LABEL_COOKIE: wp.LABEL_COOKIE,
      REKEY_AFTER_MESSAGES: REKEY_AFTER_MESSAGES.toString(),
      REJECT_AFTER_MESSAGES: REJECT_AFTER_MESSAGES.toString(),
    },
    handshakes: [withoutPsk(s, st, noPsk), withPskResult.vector, underLoad(s, st, loaded, loadedFirst, fixedBytes(s, 'R_m'), fixedBytes(s, 'msg.nonce', 24))],
    counters: [
      counterSequence(
        s,
        st,
        psk,
        withPskResult.computed,
        'replay-window',
        'Out-of-order delivery, replays, a forged tag and the edges of the replay window.',
        REPLAY_STEPS,
      ),
      counterSequence(
        s,
        st,
        psk,
        withPskResult.computed,
        'limits',
        'Counters at the nonce word boundary, REKEY_AFTER_MESSAGES and REJECT_AFTER_MESSAGES.',
        LIMIT_STEPS,
      ),
    ],
  };
}
