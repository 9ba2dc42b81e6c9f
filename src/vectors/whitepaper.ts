/**
 * WireGuard's messages computed line by line as the whitepaper writes them (§5.4.2–§5.4.7),
 * straight from the primitives of a CryptoSuite, recording every intermediate value. The
 * generator (generate.ts) compares what this computes with the messages the engine really
 * sends; the tests compare both with an independent transcription (test/helpers/whitepaper.ts).
 *
 * Nothing here is the engine's protocol code: no noise/ import, messages are assembled from
 * their fields in wire order.
 */
import { xaeadSeal } from '../../crypto/aead.js';
import type { CryptoSuite } from '../../crypto/suite.js';
import { tai64n } from '../../crypto/tai64n.js';
import { type Hex, type Line, type MessageVector, toHex } from './format.js';

const enc = new TextEncoder();
const EMPTY = new Uint8Array(0);
export const CONSTRUCTION = 'Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s';
export const IDENTIFIER = 'WireGuard v1 zx2c4 Jason@zx2c4.com';
export const LABEL_MAC1 = 'mac1----';
export const LABEL_COOKIE = 'cookie--';

/** Records the lines of one computation. */
class Trace {
  readonly lines: Line[] = [];
  put(expr: string, values: Record<string, Uint8Array>): void {
    this.lines.push({ expr, values: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, toHex(v)])) });
  }
}

export function u32le(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}

export function u64le(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** The message of `fields` (in wire order) as a MessageVector with its lines. */
function message(t: Trace, fields: [string, Uint8Array][]): { vector: MessageVector; bytes: Uint8Array } {
  const bytes = concat(...fields.map(([, v]) => v));
  return { vector: { lines: t.lines, fields: Object.fromEntries(fields.map(([k, v]) => [k, toHex(v)])), bytes: toHex(bytes) }, bytes };
}

/** The primitives of the whitepaper over one suite. */
class Primitives {
  constructor(private readonly s: CryptoSuite) {}
  hash(a: Uint8Array, b?: Uint8Array): Uint8Array {
    return this.s.blake2s.hash(a, b);
  }
  kdf(n: 1 | 2 | 3, key: Uint8Array, input: Uint8Array): Uint8Array[] {
    return this.s.blake2s.kdf(n, key, input);
  }
  mac(key: Uint8Array, input: Uint8Array): Uint8Array {
    return this.s.blake2s.mac(key, input);
  }
  dh(priv: Uint8Array, pub: Uint8Array): Uint8Array {
    const r = this.s.x25519.dh(priv, pub);
    if (r === null) throw new Error('a vector input gives an all-zero DH');
    return r;
  }
  publicKey(priv: Uint8Array): Uint8Array {
    return this.s.x25519.publicKey(priv);
  }
  /** AEAD(key, counter, plaintext, aad): ChaCha20-Poly1305 with nonce 0^32 || LE64(counter). */
  aead(key: Uint8Array, counter: bigint, plaintext: Uint8Array, aad: Uint8Array | undefined): Uint8Array {
    const nonce = concat(new Uint8Array(4), u64le(counter));
    const out = new Uint8Array(plaintext.length + 16);
    this.s.aead.seal(key, nonce, plaintext, aad, out);
    return out;
  }
}

export interface InitiationInputs {
  S_i_priv: Uint8Array;
  S_r_pub: Uint8Array;
  E_i_priv: Uint8Array;
  I_i: number;
  wallMs: number;
  /** The cookie for mac2 (τ of a cookie reply), or null: mac2 is zero. */
  cookie: Uint8Array | null;
}

export interface Computed {
  vector: MessageVector;
  bytes: Uint8Array;
  /** The chaining key and hash after the message. */
  C: Uint8Array;
  H: Uint8Array;
}

/** The initiator's first message (§5.4.2) and its MACs (§5.4.4). */
export function initiation(suite: CryptoSuite, inp: InitiationInputs): Computed {
  const p = new Primitives(suite);
  const t = new Trace();
  const S_i_pub = p.publicKey(inp.S_i_priv);
  const E_i_pub = p.publicKey(inp.E_i_priv);
  let C = p.hash(enc.encode(CONSTRUCTION));
  t.put('C_i = HASH(CONSTRUCTION)', { C_i: C });
  let H = p.hash(C, enc.encode(IDENTIFIER));
  t.put('H_i = HASH(C_i || IDENTIFIER)', { H_i: H });
  H = p.hash(H, inp.S_r_pub);
  t.put('H_i = HASH(H_i || S_r^pub)', { H_i: H });
  [C] = p.kdf(1, C, E_i_pub) as [Uint8Array];
  t.put('C_i = KDF1(C_i, E_i^pub)', { C_i: C });
  H = p.hash(H, E_i_pub);
  t.put('H_i = HASH(H_i || msg.ephemeral)', { H_i: H });
  const es = p.dh(inp.E_i_priv, inp.S_r_pub);
  t.put('es = DH(E_i^priv, S_r^pub)', { es });
  let k: Uint8Array;
  [C, k] = p.kdf(2, C, es) as [Uint8Array, Uint8Array];
  t.put('(C_i, κ) = KDF2(C_i, es)', { C_i: C, κ: k });
  const encStatic = p.aead(k, 0n, S_i_pub, H);
  t.put('msg.static = AEAD(κ, 0, S_i^pub, H_i)', { 'msg.static': encStatic });
  H = p.hash(H, encStatic);
  t.put('H_i = HASH(H_i || msg.static)', { H_i: H });
  const ss = p.dh(inp.S_i_priv, inp.S_r_pub);
  t.put('ss = DH(S_i^priv, S_r^pub)', { ss });
  [C, k] = p.kdf(2, C, ss) as [Uint8Array, Uint8Array];
  t.put('(C_i, κ) = KDF2(C_i, ss)', { C_i: C, κ: k });
  const timestamp = tai64n(inp.wallMs);
  t.put('timestamp = TAI64N(time)', { timestamp });
  const encTimestamp = p.aead(k, 0n, timestamp, H);
  t.put('msg.timestamp = AEAD(κ, 0, timestamp, H_i)', { 'msg.timestamp': encTimestamp });
  H = p.hash(H, encTimestamp);
  t.put('H_i = HASH(H_i || msg.timestamp)', { H_i: H });
  const head: [string, Uint8Array][] = [
    ['type', Uint8Array.of(1, 0, 0, 0)],
    ['sender', u32le(inp.I_i)],
    ['ephemeral', E_i_pub],
    ['static', encStatic],
    ['timestamp', encTimestamp],
  ];
  const macs = addMacs(p, t, head, inp.S_r_pub, 'S_r^pub', inp.cookie);
  const { vector, bytes } = message(t, [...head, ...macs]);
  return { vector, bytes, C, H };
}

/** mac1 and mac2 of a handshake message whose other fields are `head` (§5.4.4). */
function addMacs(
  p: Primitives,
  t: Trace,
  head: [string, Uint8Array][],
  receiverPub: Uint8Array,
  receiverName: string,
  cookie: Uint8Array | null,
): [string, Uint8Array][] {
  const mac1key = p.hash(enc.encode(LABEL_MAC1), receiverPub);
  t.put(`mac1key = HASH(LABEL_MAC1 || ${receiverName})`, { mac1key });
  const alpha = concat(...head.map(([, v]) => v));
  const mac1 = p.mac(mac1key, alpha);
  t.put('msg.mac1 = MAC(mac1key, msg_α)', { 'msg.mac1': mac1 });
  let mac2: Uint8Array;
  if (cookie) {
    mac2 = p.mac(cookie, concat(alpha, mac1));
    t.put('msg.mac2 = MAC(τ, msg_β)', { 'msg.mac2': mac2 });
  } else {
    mac2 = new Uint8Array(16);
    t.put('msg.mac2 = 0^16', { 'msg.mac2': mac2 });
  }
  return [
    ['mac1', mac1],
    ['mac2', mac2],
  ];
}

export interface ResponseInputs {
  S_i_pub: Uint8Array;
  E_i_pub: Uint8Array;
  E_r_priv: Uint8Array;
  I_r: number;
  I_i: number;
  Q: Uint8Array;
}

/** The responder's message (§5.4.3), continuing from the initiation's C_i and H_i. */
export function response(suite: CryptoSuite, inp: ResponseInputs, C_i: Uint8Array, H_i: Uint8Array): Computed {
  const p = new Primitives(suite);
  const t = new Trace();
  const E_r_pub = p.publicKey(inp.E_r_priv);
  let C = C_i;
  let H = H_i;
  t.put('(C_r, H_r) = (C_i, H_i)', { C_r: C, H_r: H });
  [C] = p.kdf(1, C, E_r_pub) as [Uint8Array];
  t.put('C_r = KDF1(C_r, E_r^pub)', { C_r: C });
  H = p.hash(H, E_r_pub);
  t.put('H_r = HASH(H_r || msg.ephemeral)', { H_r: H });
  const ee = p.dh(inp.E_r_priv, inp.E_i_pub);
  t.put('ee = DH(E_r^priv, E_i^pub)', { ee });
  [C] = p.kdf(1, C, ee) as [Uint8Array];
  t.put('C_r = KDF1(C_r, ee)', { C_r: C });
  const se = p.dh(inp.E_r_priv, inp.S_i_pub);
  t.put('se = DH(E_r^priv, S_i^pub)', { se });
  [C] = p.kdf(1, C, se) as [Uint8Array];
  t.put('C_r = KDF1(C_r, se)', { C_r: C });
  const [C3, tau, k] = p.kdf(3, C, inp.Q) as [Uint8Array, Uint8Array, Uint8Array];
  C = C3;
  t.put('(C_r, τ, κ) = KDF3(C_r, Q)', { C_r: C, τ: tau, κ: k });
  H = p.hash(H, tau);
  t.put('H_r = HASH(H_r || τ)', { H_r: H });
  const empty = p.aead(k, 0n, EMPTY, H);
  t.put('msg.empty = AEAD(κ, 0, ε, H_r)', { 'msg.empty': empty });
  H = p.hash(H, empty);
  t.put('H_r = HASH(H_r || msg.empty)', { H_r: H });
  const head: [string, Uint8Array][] = [
    ['type', Uint8Array.of(2, 0, 0, 0)],
    ['sender', u32le(inp.I_r)],
    ['receiver', u32le(inp.I_i)],
    ['ephemeral', E_r_pub],
    ['empty', empty],
  ];
  const macs = addMacs(p, t, head, inp.S_i_pub, 'S_i^pub', null);
  const { vector, bytes } = message(t, [...head, ...macs]);
  return { vector, bytes, C, H };
}

export interface SessionKeys {
  lines: Line[];
  T_i_send: Uint8Array;
  T_i_recv: Uint8Array;
}

/** The transport keys (§5.4.5) from the final chaining key. */
export function session(suite: CryptoSuite, C: Uint8Array): SessionKeys {
  const p = new Primitives(suite);
  const t = new Trace();
  const [send, recv] = p.kdf(2, C, EMPTY) as [Uint8Array, Uint8Array];
  t.put('(T_i^send = T_r^recv, T_i^recv = T_r^send) = KDF2(C_r, ε)', { 'T_i^send': send, 'T_i^recv': recv, 'T_r^send': recv, 'T_r^recv': send });
  return { lines: t.lines, T_i_send: send, T_i_recv: recv };
}

export interface Transport {
  fields: Record<string, Hex>;
  bytes: Uint8Array;
}

/** A transport message (§5.4.6): `packet` padded with `padding` zeros, sealed under `key` at `counter`. */
export function transport(suite: CryptoSuite, key: Uint8Array, receiver: number, counter: bigint, packet: Uint8Array, padding: number): Transport {
  const p = new Primitives(suite);
  const padded = new Uint8Array(packet.length + padding);
  padded.set(packet);
  const fields: [string, Uint8Array][] = [
    ['type', Uint8Array.of(4, 0, 0, 0)],
    ['receiver', u32le(receiver)],
    ['counter', u64le(counter)],
    ['packet', p.aead(key, counter, padded, undefined)],
  ];
  return { fields: Object.fromEntries(fields.map(([k, v]) => [k, toHex(v)])), bytes: concat(...fields.map(([, v]) => v)) };
}

export interface CookieInputs {
  R_m: Uint8Array;
  A_m: Uint8Array;
  S_r_pub: Uint8Array;
  nonce: Uint8Array;
  /** mac1 of the message answered (M in the whitepaper). */
  mac1: Uint8Array;
  /** The answered message's sender index. */
  receiver: number;
}

/** The cookie reply (§5.4.7) and the cookie τ the initiator then uses for mac2. */
export function cookieReply(suite: CryptoSuite, inp: CookieInputs): { vector: MessageVector; bytes: Uint8Array; cookie: Uint8Array } {
  const p = new Primitives(suite);
  const t = new Trace();
  const tau = p.mac(inp.R_m, inp.A_m);
  t.put('τ = MAC(R_m, A_m)', { τ: tau });
  const cookiekey = p.hash(enc.encode(LABEL_COOKIE), inp.S_r_pub);
  t.put('cookiekey = HASH(LABEL_COOKIE || S_r^pub)', { cookiekey });
  const sealed = xaeadSeal(cookiekey, inp.nonce, tau, inp.mac1);
  t.put('msg.cookie = XAEAD(cookiekey, msg.nonce, τ, M)', { 'msg.cookie': sealed });
  const { vector, bytes } = message(t, [
    ['type', Uint8Array.of(3, 0, 0, 0)],
    ['receiver', u32le(inp.receiver)],
    ['nonce', inp.nonce],
    ['cookie', sealed],
  ]);
  return { vector, bytes, cookie: tau };
}
