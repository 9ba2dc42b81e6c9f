/**
 * An independent transcription of the whitepaper (§5.4) with raw @noble primitives, for the
 * tests: nothing from crypto/, noise/ or src/. Used to check the engine's handshake
 * (noise-handshake.test.ts) and the published test vectors (vectors.test.ts), whose lines it
 * reproduces with the same names (docs/VECTORS.md).
 */

import { chacha20poly1305, xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { blake2s } from '@noble/hashes/blake2.js';
import { hmac } from '@noble/hashes/hmac.js';

const enc = new TextEncoder();
export const CONSTRUCTION = 'Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s';
export const IDENTIFIER = 'WireGuard v1 zx2c4 Jason@zx2c4.com';

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export const H = (...p: Uint8Array[]): Uint8Array => {
  const h = blake2s.create();
  for (const x of p) h.update(x);
  return h.digest();
};
export const HMAC = (k: Uint8Array, m: Uint8Array): Uint8Array => hmac(blake2s, k, m);
export function KDF(n: number, k: Uint8Array, x: Uint8Array): Uint8Array[] {
  const t0 = HMAC(k, x);
  const out: Uint8Array[] = [];
  let prev: Uint8Array = new Uint8Array(0);
  for (let i = 1; i <= n; i++) {
    prev = HMAC(t0, new Uint8Array([...prev, i]));
    out.push(prev);
  }
  return out;
}
export const MAC = (k: Uint8Array, m: Uint8Array): Uint8Array => blake2s(m, { key: k, dkLen: 16 });
export const DH = (priv: Uint8Array, pub: Uint8Array): Uint8Array => x25519.getSharedSecret(priv, pub);
export const PUB = (priv: Uint8Array): Uint8Array => x25519.getPublicKey(priv);

export const le32 = (v: number): Uint8Array => Uint8Array.of(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);
export function le64(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  for (let i = 0; i < 8; i++) b[i] = Number((v >> BigInt(8 * i)) & 0xffn);
  return b;
}
const nonce = (n: bigint): Uint8Array => concat(new Uint8Array(4), le64(n));
export const AEAD = (k: Uint8Array, n: bigint, p: Uint8Array, ad?: Uint8Array): Uint8Array => chacha20poly1305(k, nonce(n), ad).encrypt(p);
export const open = (k: Uint8Array, c: Uint8Array, ad: Uint8Array | undefined, n = 0n): Uint8Array => chacha20poly1305(k, nonce(n), ad).decrypt(c);
export const XAEAD = (k: Uint8Array, n: Uint8Array, p: Uint8Array, ad: Uint8Array): Uint8Array => xchacha20poly1305(k, n, ad).encrypt(p);
export const xopen = (k: Uint8Array, n: Uint8Array, c: Uint8Array, ad: Uint8Array): Uint8Array => xchacha20poly1305(k, n, ad).decrypt(c);

/** TAI64N of a Unix time in ms: label 2^62 + 10 + seconds, then nanoseconds rounded down to 2^24 (as the kernel and wireguard-go). */
export function TAI64N(ms: number): Uint8Array {
  const sec = Math.floor(ms / 1000);
  const ns = Math.round((ms - sec * 1000) * 1e6);
  const label = (1n << 62n) + 10n + BigInt(sec);
  const out = new Uint8Array(12);
  for (let i = 0; i < 8; i++) out[7 - i] = Number((label >> BigInt(8 * i)) & 0xffn);
  const n = ns - (ns % 2 ** 24);
  out.set([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff], 8);
  return out;
}

export interface Initiation {
  ephemeral: Uint8Array;
  encryptedStatic: Uint8Array;
  encryptedTimestamp: Uint8Array;
}

/** Responder-side processing of an initiation, straight from the whitepaper. */
export function refConsumeInitiation(m: Initiation, sprivR: Uint8Array): { ck: Uint8Array; h: Uint8Array; staticI: Uint8Array; timestamp: Uint8Array } {
  const spubR = PUB(sprivR);
  let ck: Uint8Array = H(enc.encode(CONSTRUCTION));
  let h: Uint8Array = H(ck, enc.encode(IDENTIFIER));
  h = H(h, spubR);
  [ck] = KDF(1, ck, m.ephemeral) as [Uint8Array];
  h = H(h, m.ephemeral);
  let k: Uint8Array;
  [ck, k] = KDF(2, ck, DH(sprivR, m.ephemeral)) as [Uint8Array, Uint8Array];
  const staticI = open(k, m.encryptedStatic, h);
  h = H(h, m.encryptedStatic);
  [ck, k] = KDF(2, ck, DH(sprivR, staticI)) as [Uint8Array, Uint8Array];
  const timestamp = open(k, m.encryptedTimestamp, h);
  h = H(h, m.encryptedTimestamp);
  return { ck, h, staticI, timestamp };
}

/** A line of the computation, as docs/VECTORS.md names it. */
export interface RefLine {
  expr: string;
  values: Record<string, Uint8Array>;
}

export interface RefMessage {
  lines: RefLine[];
  fields: [string, Uint8Array][];
  bytes: Uint8Array;
  C: Uint8Array;
  H: Uint8Array;
}

function macs(lines: RefLine[], alpha: Uint8Array, receiverPub: Uint8Array, receiverName: string, cookie: Uint8Array | null): [string, Uint8Array][] {
  const mac1key = H(enc.encode('mac1----'), receiverPub);
  lines.push({ expr: `mac1key = HASH(LABEL_MAC1 || ${receiverName})`, values: { mac1key } });
  const mac1 = MAC(mac1key, alpha);
  lines.push({ expr: 'msg.mac1 = MAC(mac1key, msg_α)', values: { 'msg.mac1': mac1 } });
  const mac2 = cookie ? MAC(cookie, concat(alpha, mac1)) : new Uint8Array(16);
  lines.push({ expr: cookie ? 'msg.mac2 = MAC(τ, msg_β)' : 'msg.mac2 = 0^16', values: { 'msg.mac2': mac2 } });
  return [
    ['mac1', mac1],
    ['mac2', mac2],
  ];
}

/** The initiation (§5.4.2, §5.4.4) with every intermediate value. */
export function refInitiation(i: {
  sprivI: Uint8Array;
  spubR: Uint8Array;
  eprivI: Uint8Array;
  sender: number;
  ms: number;
  cookie: Uint8Array | null;
}): RefMessage {
  const L: RefLine[] = [];
  const epubI = PUB(i.eprivI);
  let C = H(enc.encode(CONSTRUCTION));
  L.push({ expr: 'C_i = HASH(CONSTRUCTION)', values: { C_i: C } });
  let h = H(C, enc.encode(IDENTIFIER));
  L.push({ expr: 'H_i = HASH(C_i || IDENTIFIER)', values: { H_i: h } });
  h = H(h, i.spubR);
  L.push({ expr: 'H_i = HASH(H_i || S_r^pub)', values: { H_i: h } });
  C = KDF(1, C, epubI)[0]!;
  L.push({ expr: 'C_i = KDF1(C_i, E_i^pub)', values: { C_i: C } });
  h = H(h, epubI);
  L.push({ expr: 'H_i = HASH(H_i || msg.ephemeral)', values: { H_i: h } });
  const es = DH(i.eprivI, i.spubR);
  L.push({ expr: 'es = DH(E_i^priv, S_r^pub)', values: { es } });
  let [c, k] = KDF(2, C, es) as [Uint8Array, Uint8Array];
  L.push({ expr: '(C_i, κ) = KDF2(C_i, es)', values: { C_i: c, κ: k } });
  const st = AEAD(k, 0n, PUB(i.sprivI), h);
  L.push({ expr: 'msg.static = AEAD(κ, 0, S_i^pub, H_i)', values: { 'msg.static': st } });
  h = H(h, st);
  L.push({ expr: 'H_i = HASH(H_i || msg.static)', values: { H_i: h } });
  const ss = DH(i.sprivI, i.spubR);
  L.push({ expr: 'ss = DH(S_i^priv, S_r^pub)', values: { ss } });
  [c, k] = KDF(2, c, ss) as [Uint8Array, Uint8Array];
  L.push({ expr: '(C_i, κ) = KDF2(C_i, ss)', values: { C_i: c, κ: k } });
  const timestamp = TAI64N(i.ms);
  L.push({ expr: 'timestamp = TAI64N(time)', values: { timestamp } });
  const ts = AEAD(k, 0n, timestamp, h);
  L.push({ expr: 'msg.timestamp = AEAD(κ, 0, timestamp, H_i)', values: { 'msg.timestamp': ts } });
  h = H(h, ts);
  L.push({ expr: 'H_i = HASH(H_i || msg.timestamp)', values: { H_i: h } });
  const head: [string, Uint8Array][] = [
    ['type', Uint8Array.of(1, 0, 0, 0)],
    ['sender', le32(i.sender)],
    ['ephemeral', epubI],
    ['static', st],
    ['timestamp', ts],
  ];
  const fields = [...head, ...macs(L, concat(...head.map((f) => f[1])), i.spubR, 'S_r^pub', i.cookie)];
  return { lines: L, fields, bytes: concat(...fields.map((f) => f[1])), C: c, H: h };
}

/** The response (§5.4.3, §5.4.4), from the initiation's final chaining key and hash. */
export function refResponse(r: {
  spubI: Uint8Array;
  epubI: Uint8Array;
  eprivR: Uint8Array;
  sender: number;
  receiver: number;
  psk: Uint8Array;
  C: Uint8Array;
  H: Uint8Array;
}): RefMessage {
  const L: RefLine[] = [];
  L.push({ expr: '(C_r, H_r) = (C_i, H_i)', values: { C_r: r.C, H_r: r.H } });
  const epubR = PUB(r.eprivR);
  let C = KDF(1, r.C, epubR)[0]!;
  L.push({ expr: 'C_r = KDF1(C_r, E_r^pub)', values: { C_r: C } });
  let h = H(r.H, epubR);
  L.push({ expr: 'H_r = HASH(H_r || msg.ephemeral)', values: { H_r: h } });
  const ee = DH(r.eprivR, r.epubI);
  L.push({ expr: 'ee = DH(E_r^priv, E_i^pub)', values: { ee } });
  C = KDF(1, C, ee)[0]!;
  L.push({ expr: 'C_r = KDF1(C_r, ee)', values: { C_r: C } });
  const se = DH(r.eprivR, r.spubI);
  L.push({ expr: 'se = DH(E_r^priv, S_i^pub)', values: { se } });
  C = KDF(1, C, se)[0]!;
  L.push({ expr: 'C_r = KDF1(C_r, se)', values: { C_r: C } });
  const [c3, tau, k] = KDF(3, C, r.psk) as [Uint8Array, Uint8Array, Uint8Array];
  L.push({ expr: '(C_r, τ, κ) = KDF3(C_r, Q)', values: { C_r: c3, τ: tau, κ: k } });
  h = H(h, tau);
  L.push({ expr: 'H_r = HASH(H_r || τ)', values: { H_r: h } });
  const empty = AEAD(k, 0n, new Uint8Array(0), h);
  L.push({ expr: 'msg.empty = AEAD(κ, 0, ε, H_r)', values: { 'msg.empty': empty } });
  h = H(h, empty);
  L.push({ expr: 'H_r = HASH(H_r || msg.empty)', values: { H_r: h } });
  const head: [string, Uint8Array][] = [
    ['type', Uint8Array.of(2, 0, 0, 0)],
    ['sender', le32(r.sender)],
    ['receiver', le32(r.receiver)],
    ['ephemeral', epubR],
    ['empty', empty],
  ];
  const fields = [...head, ...macs(L, concat(...head.map((f) => f[1])), r.spubI, 'S_i^pub', null)];
  return { lines: L, fields, bytes: concat(...fields.map((f) => f[1])), C: c3, H: h };
}

/** The transport keys (§5.4.5). */
export function refSession(C: Uint8Array): { lines: RefLine[]; send: Uint8Array; recv: Uint8Array } {
  const [send, recv] = KDF(2, C, new Uint8Array(0)) as [Uint8Array, Uint8Array];
  return {
    lines: [
      { expr: '(T_i^send = T_r^recv, T_i^recv = T_r^send) = KDF2(C_r, ε)', values: { 'T_i^send': send, 'T_i^recv': recv, 'T_r^send': recv, 'T_r^recv': send } },
    ],
    send,
    recv,
  };
}

/** A transport message (§5.4.6). */
export function refTransport(key: Uint8Array, receiver: number, counter: bigint, packet: Uint8Array, padding: number): [string, Uint8Array][] {
  return [
    ['type', Uint8Array.of(4, 0, 0, 0)],
    ['receiver', le32(receiver)],
    ['counter', le64(counter)],
    ['packet', AEAD(key, counter, concat(packet, new Uint8Array(padding)))],
  ];
}

/** The cookie reply (§5.4.7) to a message whose mac1 is `M`. */
export function refCookieReply(c: { secret: Uint8Array; source: Uint8Array; spubR: Uint8Array; nonce: Uint8Array; M: Uint8Array; receiver: number }): {
  lines: RefLine[];
  fields: [string, Uint8Array][];
  cookie: Uint8Array;
} {
  const tau = MAC(c.secret, c.source);
  const cookiekey = H(enc.encode('cookie--'), c.spubR);
  const sealed = XAEAD(cookiekey, c.nonce, tau, c.M);
  return {
    lines: [
      { expr: 'τ = MAC(R_m, A_m)', values: { τ: tau } },
      { expr: 'cookiekey = HASH(LABEL_COOKIE || S_r^pub)', values: { cookiekey } },
      { expr: 'msg.cookie = XAEAD(cookiekey, msg.nonce, τ, M)', values: { 'msg.cookie': sealed } },
    ],
    fields: [
      ['type', Uint8Array.of(3, 0, 0, 0)],
      ['receiver', le32(c.receiver)],
      ['nonce', c.nonce],
      ['cookie', sealed],
    ],
    cookie: tau,
  };
}

/**
 * What a receiver with an RFC 6479 window of `window` counters does with `counter` (given the
 * counters it accepted so far): reject at or above REJECT_AFTER_MESSAGES or `limit`, further
 * than `window` behind the highest, or seen; accept otherwise.
 */
export class RefReplay {
  private highest = -1n;
  private readonly seen = new Set<bigint>();
  constructor(
    private readonly window: bigint,
    private readonly limit: bigint = 2n ** 64n - 2n ** 13n - 1n,
  ) {}
  /** Whether `counter` is accepted; `authentic` false (a bad tag) rejects without recording. */
  receive(counter: bigint, authentic = true): boolean {
    if (!authentic || counter >= this.limit) return false;
    if (this.highest >= 0n && counter + this.window < this.highest) return false;
    if (this.seen.has(counter)) return false;
    this.seen.add(counter);
    if (counter > this.highest) this.highest = counter;
    return true;
  }
}

/**
 * The initiator consuming a response (§5.4.3 from the initiator's side), after the initiation
 * that left `C` and `H`: the transport keys, or null when `msg.empty` does not authenticate.
 */
export function refConsumeResponse(
  msg: Uint8Array,
  i: { sprivI: Uint8Array; eprivI: Uint8Array; psk: Uint8Array; C: Uint8Array; H: Uint8Array },
): { send: Uint8Array; recv: Uint8Array } | null {
  const epubR = msg.subarray(12, 44);
  let C = KDF(1, i.C, epubR)[0]!;
  let h = H(i.H, epubR);
  C = KDF(1, C, DH(i.eprivI, epubR))[0]!;
  C = KDF(1, C, DH(i.sprivI, epubR))[0]!;
  const [c3, tau, k] = KDF(3, C, i.psk) as [Uint8Array, Uint8Array, Uint8Array];
  h = H(h, tau);
  try {
    if (open(k, msg.subarray(44, 60), h).length !== 0) return null;
  } catch {
    return null;
  }
  const [send, recv] = KDF(2, c3, new Uint8Array(0)) as [Uint8Array, Uint8Array];
  return { send, recv };
}
