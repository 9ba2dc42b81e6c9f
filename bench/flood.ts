/**
 * Handshake flood generator: as many handshake initiations as one process can push through
 * loopback, from many source addresses, at a WireGuard responder whose public key is known.
 *
 *   node dist/bench/flood.js --to 127.0.0.1:51820 --pub BASE64 [--seconds 10] [--sources 254]
 *                            [--mix random=1,mac1=1,cookie=1] [--rate 0] [--json]
 *
 * Three kinds of initiation, mixed by the given weights, each from one of `sources` addresses
 * 127.0.0.2, 127.0.0.3, ... (one socket bound to the wildcard address; every datagram names its
 * source address with IP_PKTINFO, so the kernel sends it from there):
 *   random  148 random bytes behind the initiation header: mac1 is wrong
 *   mac1    a random body with a valid mac1 and no mac2: under load the responder owes a cookie
 *   cookie  a random body with a valid mac1 and a valid mac2 made with the cookie the responder
 *           gave that source (until one arrives they are sent without mac2, as `mac1`), so they
 *           pass the MAC checks and cost the responder a Diffie-Hellman each
 * The messages are built once (a pool per source) and sent in prebuilt sendmmsg batches, so the
 * sending costs no JavaScript per datagram; the cookie replies coming back are read on the event
 * loop between bursts, and a source's `cookie` messages are re-MACed when its cookie changes.
 * Needs nothing but the addon; run it inside the namespace whose loopback the responder uses.
 * --rate limits datagrams per second (0: as fast as possible). At the end it prints what it
 * sent and received (one line, or JSON with --json). SIGTERM/SIGINT end it early, with the report.
 */

import { pathToFileURL } from 'node:url';
import { xaeadOpen } from '../crypto/aead.js';
import { decodeBase64Key } from '../crypto/keys.js';
import { systemRng } from '../crypto/random.js';
import { COOKIE_LEN, INITIATION_SIZE, MESSAGE_COOKIE_REPLY, MESSAGE_INITIATION } from '../noise/constants.js';
import { computeMac1, computeMac2, cookieKey, mac1Key } from '../noise/cookie.js';
import { parseIp } from '../noise/iptext.js';
import { parseCookieReply, readU32, writeU32 } from '../noise/messages.js';
import {
  native,
  POLL_UDP,
  UDP_M_ADDR_BYTE,
  UDP_M_FAMILY,
  UDP_M_HASLOCAL,
  UDP_M_IFINDEX,
  UDP_M_LEN,
  UDP_M_LOCAL_BYTE,
  UDP_M_OFF,
  UDP_M_PORT,
  UDP_M_STATUS,
  UDP_META_STRIDE,
  UDP_SLOT,
} from '../tun/addon.js';
import { opensslSuite } from '../tun/openssl.js';

const BATCH = 64;
/** Messages prepared per source and kind (distinct sender indices and bodies). */
const PER_SOURCE = 4;
/** A source's cookie is asked for again (its replies decrypted) once it is this old (ms). */
const COOKIE_REFRESH = 10_000;

type Kind = 'random' | 'mac1' | 'cookie';
const KINDS: readonly Kind[] = ['random', 'mac1', 'cookie'];

export interface FloodOptions {
  to: { address: string; port: number };
  /** The responder's static public key (32 bytes). */
  publicKey: Uint8Array;
  seconds: number;
  /** Source addresses 127.0.0.2 .. 127.0.0.(1 + sources), at most 254. */
  sources: number;
  /** Relative weights of the kinds. */
  mix: Record<Kind, number>;
  /** Datagrams per second; 0 = as fast as possible. */
  rate: number;
}

export interface FloodReport {
  seconds: number;
  sent: number;
  sendErrors: number;
  perSecond: number;
  byKind: Record<Kind, number>;
  cookieRepliesIn: number;
  /** Sources whose `cookie` messages carry a valid-looking mac2 at the end. */
  sourcesWithCookie: number;
}

interface Message {
  kind: Kind;
  source: number;
  /** The message inside the send area. */
  bytes: Uint8Array;
}

function usage(msg: string): never {
  process.stderr.write(
    `flood: ${msg}\nusage: flood --to ADDR:PORT --pub BASE64 [--seconds N] [--sources N] [--mix random=1,mac1=1,cookie=1] [--rate PPS] [--json]\n`,
  );
  process.exit(1);
}

export function parseArgs(argv: readonly string[]): FloodOptions & { json: boolean } {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (v === undefined) usage(`${name} needs a value`);
    return v;
  };
  const to = get('--to') ?? usage('--to ADDR:PORT is required');
  const m = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(to);
  if (!m || parseIp(m[1]!)?.family !== 4 || Number(m[2]) < 1 || Number(m[2]) > 65535) usage(`bad --to '${to}' (an IPv4 address and port)`);
  const pubText = get('--pub') ?? usage('--pub BASE64 is required');
  let publicKey: Uint8Array;
  try {
    publicKey = decodeBase64Key(pubText, 'public key');
  } catch (e) {
    usage((e as Error).message);
  }
  const num = (name: string, def: number, min: number, max: number): number => {
    const v = get(name);
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) usage(`bad ${name} '${v}' (${min}..${max})`);
    return n;
  };
  const mix: Record<Kind, number> = { random: 1, mac1: 1, cookie: 1 };
  const mixText = get('--mix');
  if (mixText !== undefined) {
    for (const k of KINDS) mix[k] = 0;
    for (const part of mixText.split(',')) {
      const [k, w] = part.split('=');
      if (!KINDS.includes(k as Kind) || w === undefined || !/^\d+$/.test(w)) usage(`bad --mix part '${part}' (random|mac1|cookie=WEIGHT)`);
      mix[k as Kind] = Number(w);
    }
    if (KINDS.every((k) => mix[k] === 0)) usage('--mix gives every kind weight 0');
  }
  return {
    to: { address: m[1]!, port: Number(m[2]) },
    publicKey,
    seconds: num('--seconds', 10, 0.1, 86_400),
    sources: num('--sources', 254, 1, 254),
    mix,
    rate: num('--rate', 0, 0, 100_000_000),
    json: argv.includes('--json'),
  };
}

export async function flood(opts: FloodOptions, stop: { requested: boolean } = { requested: false }): Promise<FloodReport> {
  const b2 = (opensslSuite() ?? (await import('../crypto/suite.js')).jsSuite).blake2s;
  const addon = native();
  const [fd4, fd6] = addon.udpOpen(0, 0, false);
  if (fd6 >= 0) addon.fdClose(fd6);
  if (fd4 < 0) throw new Error('no IPv4 socket');
  const k1 = mac1Key(opts.publicKey, b2);
  const kc = cookieKey(opts.publicKey, b2);
  const dst = parseIp(opts.to.address)!.bytes;

  // The pool: PER_SOURCE messages of every kind with a non-zero weight, per source, in an
  // order that interleaves kinds and sources by weight.
  const weights = KINDS.map((k) => opts.mix[k]);
  const kindsPerRound: Kind[] = [];
  for (const [i, k] of KINDS.entries()) for (let w = 0; w < weights[i]!; w++) kindsPerRound.push(k);
  const total = PER_SOURCE * opts.sources * kindsPerRound.length;
  const count = Math.ceil(total / BATCH) * BATCH;
  const area = new Uint8Array(count * INITIATION_SIZE);
  const meta = new Int32Array(count * UDP_META_STRIDE);
  const meta8 = new Uint8Array(meta.buffer);
  const messages: Message[] = [];
  const bySource: Message[][] = Array.from({ length: opts.sources }, () => []);
  for (let i = 0; i < count; i++) {
    const kind = kindsPerRound[Math.floor(i / opts.sources) % kindsPerRound.length]!;
    const source = i % opts.sources;
    const bytes = area.subarray(i * INITIATION_SIZE, (i + 1) * INITIATION_SIZE);
    systemRng(bytes);
    bytes[0] = MESSAGE_INITIATION;
    bytes[1] = bytes[2] = bytes[3] = 0;
    writeU32(bytes, 4, i); // sender index: finds the message a cookie reply answers
    if (kind !== 'random') {
      bytes.set(computeMac1(k1, bytes, b2), INITIATION_SIZE - 2 * COOKIE_LEN);
      bytes.fill(0, INITIATION_SIZE - COOKIE_LEN);
    }
    const msg: Message = { kind, source, bytes };
    messages.push(msg);
    bySource[source]!.push(msg);
    const base = i * UDP_META_STRIDE;
    meta[base + UDP_M_OFF] = i * INITIATION_SIZE;
    meta[base + UDP_M_LEN] = INITIATION_SIZE;
    meta[base + UDP_M_FAMILY] = 4;
    meta[base + UDP_M_PORT] = opts.to.port;
    meta[base + UDP_M_IFINDEX] = 0;
    meta[base + UDP_M_HASLOCAL] = 1;
    meta[base + UDP_M_STATUS] = 0;
    meta8.set(dst, base * 4 + UDP_M_ADDR_BYTE);
    meta8.set([127, 0, 0, 2 + source], base * 4 + UDP_M_LOCAL_BYTE);
  }
  const batches: Int32Array[] = [];
  for (let i = 0; i < count; i += BATCH) batches.push(meta.subarray(i * UDP_META_STRIDE, (i + BATCH) * UDP_META_STRIDE));

  // Cookie replies: decrypt one per source now and then, and re-MAC that source's `cookie` messages.
  const cookieAt = new Float64Array(opts.sources).fill(Number.NEGATIVE_INFINITY);
  let cookieRepliesIn = 0;
  const rbuf = new Uint8Array(BATCH * UDP_SLOT);
  const rmeta = new Int32Array(BATCH * UDP_META_STRIDE);
  const onReplies = (n: number): void => {
    const now = performance.now();
    for (let i = 0; i < n; i++) {
      const base = i * UDP_META_STRIDE;
      const off = rmeta[base + UDP_M_OFF]!;
      const data = rbuf.subarray(off, off + rmeta[base + UDP_M_LEN]!);
      if (data[0] !== MESSAGE_COOKIE_REPLY) continue;
      cookieRepliesIn++;
      const reply = parseCookieReply(data);
      if (typeof reply === 'string') continue;
      const asked = messages[readU32(data, 4)];
      if (asked === undefined || asked.kind === 'random' || now - cookieAt[asked.source]! < COOKIE_REFRESH) continue;
      const cookie = xaeadOpen(kc, reply.nonce, reply.encryptedCookie, asked.bytes.subarray(INITIATION_SIZE - 2 * COOKIE_LEN, INITIATION_SIZE - COOKIE_LEN));
      if (cookie === null) continue;
      cookieAt[asked.source] = now;
      for (const m of bySource[asked.source]!) if (m.kind === 'cookie') m.bytes.set(computeMac2(cookie, m.bytes, b2), INITIATION_SIZE - COOKIE_LEN);
    }
  };
  const poll = addon.pollStart(fd4, POLL_UDP, rbuf, rmeta, BATCH, onReplies);

  const byKind: Record<Kind, number> = { random: 0, mac1: 0, cookie: 0 };
  const perBatch = batches.map((_, b) => {
    const c: Record<Kind, number> = { random: 0, mac1: 0, cookie: 0 };
    for (let i = b * BATCH; i < (b + 1) * BATCH; i++) c[messages[i]!.kind]++;
    return c;
  });
  let sent = 0;
  let sendErrors = 0;
  let next = 0;
  const start = performance.now();
  const end = start + opts.seconds * 1000;
  const slice = opts.rate > 0 ? 1 : 5; // ms of sending between looks at the replies
  try {
    while (!stop.requested) {
      const now = performance.now();
      if (now >= end) break;
      const until = Math.min(end, now + slice);
      for (let t = now; t < until; t = performance.now()) {
        if (opts.rate > 0 && sent >= ((t - start) / 1000) * opts.rate) break;
        const b = next;
        next = (next + 1) % batches.length;
        const ok = addon.udpSendBatch(fd4, -1, area, batches[b]!, BATCH);
        sent += ok;
        sendErrors += BATCH - ok;
        if (ok === BATCH) for (const k of KINDS) byKind[k] += perBatch[b]![k];
      }
      await new Promise<void>((r) => setImmediate(r));
    }
  } finally {
    addon.pollStop(poll);
    addon.fdClose(fd4);
  }
  const seconds = (performance.now() - start) / 1000;
  const now = performance.now();
  let sourcesWithCookie = 0;
  for (const t of cookieAt) if (now - t < 120_000) sourcesWithCookie++;
  return { seconds, sent, sendErrors, perSecond: sent / seconds, byKind, cookieRepliesIn, sourcesWithCookie };
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const stop = { requested: false };
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => (stop.requested = true));
  const r = await flood(opts, stop);
  if (opts.json) console.log(JSON.stringify(r));
  else
    console.log(
      `flood: ${r.sent} initiations in ${r.seconds.toFixed(1)} s (${Math.round(r.perSecond)}/s; random ${r.byKind.random}, mac1 ${r.byKind.mac1}, cookie ${r.byKind.cookie}), ${r.sendErrors} send errors, ${r.cookieRepliesIn} cookie replies in, ${r.sourcesWithCookie} sources with a cookie`,
    );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    process.stderr.write(`flood: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
