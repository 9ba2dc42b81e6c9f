/**
 * Engine benchmark (`npm run bench`), per crypto suite (tun/openssl.ts's when the addon is
 * built, crypto's js and noble): raw AEAD rates, the BLAKE2s constructions and X25519 a
 * handshake runs, complete handshakes per second, and in-memory throughput between two Devices
 * with 1420-byte packets, reported as a ratio to the suite's raw seal+open rate measured in the
 * same run.
 *
 * Wall-clock time is used here and only here (never in tests). Options:
 *   --quick            shorter measurements
 *   --suite=NAME       only this suite (openssl, js, noble)
 */

import { cpus, loadavg } from 'node:os';
import { counterNonce } from '../crypto/aead.js';
import { deterministicRng } from '../crypto/random.js';
import { type CryptoSuite, jsSuite, nobleSuite } from '../crypto/suite.js';
import { generatePrivateKey } from '../crypto/x25519.js';
import { Device } from '../noise/device.js';
import { consumeInitiation, Handshake, StaticIdentity } from '../noise/handshake.js';
import { type Initiation, parseInitiation, parseResponse, type Response } from '../noise/messages.js';
import { ipv4Packet } from '../noise/packets.js';
import type { Endpoint } from '../noise/types.js';
import { opensslSuite } from '../tun/openssl.js';

const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const ONLY = args.find((a) => a.startsWith('--suite='))?.slice('--suite='.length);
const BUDGET_MS = QUICK ? 150 : 600;

/** Run `fn` in batches until the time budget is spent; returns operations per second. */
function rate(fn: () => void, budget = BUDGET_MS): number {
  // Warm up (JIT, key caches).
  for (let i = 0; i < 20; i++) fn();
  let n = 0;
  let batch = 1;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < budget) {
    for (let i = 0; i < batch; i++) fn();
    n += batch;
    elapsed = performance.now() - start;
    if (elapsed < budget / 20) batch *= 2;
  }
  return (n * 1000) / elapsed;
}

function fmt(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return n.toFixed(1);
}

function table(title: string, head: string[], rows: string[][]): void {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ');
  console.log(`\n${title}`);
  console.log(line(head));
  console.log(w.map((n) => '-'.repeat(n)).join('  '));
  for (const r of rows) console.log(line(r));
}

// ---------------------------------------------------------------------------------------------
// AEAD

const SIZES = [64, 1420, 65535];
const suites: CryptoSuite[] = [opensslSuite(), jsSuite, nobleSuite].filter((x): x is CryptoSuite => x !== null);
const selected = suites.filter((x) => !ONLY || x.name === ONLY);
if (selected.length === 0) {
  console.error(`unknown suite '${ONLY}'; available: ${suites.map((x) => x.name).join(', ')}`);
  process.exit(2);
}

const key = deterministicRng(1)(new Uint8Array(32));
const aeadRates = new Map<string, { seal: number; open: number }>();
const aeadRows: string[][] = [];
for (const suite of selected) {
  const p = suite.aead;
  for (const size of SIZES) {
    const plain = deterministicRng(size)(new Uint8Array(size));
    const sealed = new Uint8Array(size + 16);
    const out = new Uint8Array(size);
    const nonce = new Uint8Array(12);
    let c = 0;
    const budget = p.name === 'noble' && size === 65535 ? BUDGET_MS / 2 : BUDGET_MS;
    const seal = rate(() => p.seal(key, counterNonce(c++, nonce), plain, undefined, sealed), budget);
    counterNonce(7, nonce);
    p.seal(key, nonce, plain, undefined, sealed);
    const open = rate(() => {
      if (!p.open(key, nonce, sealed, undefined, out)) throw new Error('open failed');
    }, budget);
    aeadRates.set(`${p.name}/${size}`, { seal, open });
    const mbit = (r: number) => ((r * size * 8) / 1e6).toFixed(0);
    aeadRows.push([p.name, String(size), fmt(seal), mbit(seal), fmt(open), mbit(open)]);
  }
}
table('AEAD (ChaCha20-Poly1305), operations per second', ['suite', 'bytes', 'seal/s', 'Mbit/s', 'open/s', 'Mbit/s'], aeadRows);

// ---------------------------------------------------------------------------------------------
// Handshake primitives and complete handshakes

const us = (r: number): string => (1e6 / r).toFixed(1);
const primRows: string[][] = [];
const hsRows: string[][] = [];
for (const suite of selected) {
  const b2 = suite.blake2s;
  const x = deterministicRng(9)(new Uint8Array(32));
  const y = deterministicRng(10)(new Uint8Array(116));
  const priv = generatePrivateKey(deterministicRng(14));
  const pub = suite.x25519.publicKey(generatePrivateKey(deterministicRng(15)));
  primRows.push([
    suite.name,
    us(rate(() => b2.hash(x, y))),
    us(rate(() => b2.kdf(2, x, y))),
    us(rate(() => b2.mac(x, y))),
    us(rate(() => suite.x25519.dh(priv, pub), BUDGET_MS / 2)),
  ]);

  const kI = generatePrivateKey(deterministicRng(11));
  const kR = generatePrivateKey(deterministicRng(12));
  const idI = new StaticIdentity(kI, suite);
  const idR = new StaticIdentity(kR, suite);
  const hsI = new Handshake(idR.publicKey, suite);
  const hsR = new Handshake(idI.publicKey, suite);
  hsI.setIdentity(idI);
  hsR.setIdentity(idR);
  const hrng = deterministicRng(13);
  let wall = Date.UTC(2024, 0, 1);
  let mono = 0;
  const perSecond = rate(
    () => {
      wall += 1000;
      mono += 1000;
      const init = hsI.createInitiation(idI, 1, hrng, wall)!;
      const r = consumeInitiation(parseInitiation(init) as Initiation, idR, () => ({ peer: null, handshake: hsR }), mono, suite);
      if (typeof r === 'string') throw new Error(r);
      const resp = hsR.createResponse(2, hrng)!;
      if (!hsI.consumeResponse(parseResponse(resp) as Response, idI)) throw new Error('response');
      hsI.beginSession();
      hsR.beginSession();
    },
    suite.name === 'noble' ? 400 : QUICK ? 500 : 1500,
  );
  hsRows.push([suite.name, perSecond.toFixed(1)]);
}
table('Handshake primitives, microseconds per call (HASH of 32+116 bytes, KDF2, MAC, X25519 DH)', ['suite', 'HASH', 'KDF2', 'MAC', 'DH'], primRows);
table('Complete handshakes (both roles in one thread)', ['suite', 'per second'], hsRows);

// ---------------------------------------------------------------------------------------------
// Two Devices in memory

const PACKET = 1420;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Time `fn` for about `ms` milliseconds; operations per second. */
function burst(fn: () => void, ms: number): number {
  let n = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < ms) {
    for (let i = 0; i < 64; i++) fn();
    n += 64;
    elapsed = performance.now() - start;
  }
  return (n * 1000) / elapsed;
}

/**
 * Throughput of two Devices wired back to back (A encrypts and routes, B decrypts, checks
 * replay and allowed IPs and delivers), against the provider's raw rate for the same crypto
 * work (seal of the padded 1420-byte packet, open of the result). The two are measured in
 * alternating short rounds so that other load on the machine hits both alike; the ratio is
 * the median of the per-round ratios.
 */
function deviceThroughput(suite: CryptoSuite): { pps: number; mbit: number; raw: number; ratio: number } {
  const EP_A: Endpoint = { address: '192.0.2.1', port: 1, family: 4 };
  const EP_B: Endpoint = { address: '192.0.2.2', port: 2, family: 4 };
  let delivered = 0;
  let a!: Device;
  let b!: Device;
  const aead = suite.aead;
  a = new Device({ crypto: suite, rng: deterministicRng(21), sinks: { sendDatagram: (d) => b.receiveDatagram(d, EP_A), writePacket: () => {} } });
  b = new Device({
    crypto: suite,
    rng: deterministicRng(22),
    sinks: {
      sendDatagram: (d) => a.receiveDatagram(d, EP_B),
      writePacket: (p) => {
        delivered += p.length;
      },
    },
  });
  const ka = generatePrivateKey(deterministicRng(23));
  const kb = generatePrivateKey(deterministicRng(24));
  const cidr = (x: number) => ({ family: 4 as const, bytes: new Uint8Array([10, 0, 0, x]), prefix: 32 });
  a.apply({ privateKey: ka, peers: [{ publicKey: suite.x25519.publicKey(kb), endpoint: EP_B, allowedIps: [cidr(2)] }] });
  b.apply({ privateKey: kb, peers: [{ publicKey: suite.x25519.publicKey(ka), endpoint: EP_A, allowedIps: [cidr(1)] }] });
  const pkt = ipv4Packet('10.0.0.1', '10.0.0.2', PACKET - 20);
  a.sendPacket(pkt); // handshake, then the staged packet
  if (delivered !== PACKET) throw new Error('no session between the benchmark devices');
  delivered = 0;
  let sent = 0;
  const engine = () => {
    a.sendPacket(pkt);
    sent++;
  };
  const pad = (16 - (PACKET % 16)) % 16;
  const sealed = new Uint8Array(PACKET + pad + 16);
  const opened = new Uint8Array(PACKET + pad);
  const nonce = new Uint8Array(12);
  let c = 0;
  const raw = () => {
    counterNonce(c++, nonce);
    aead.seal(key, nonce, pkt, undefined, sealed, pad);
    if (!aead.open(key, nonce, sealed, undefined, opened)) throw new Error('open failed');
  };
  burst(engine, 50);
  burst(raw, 50);
  const rounds = QUICK ? 8 : 20;
  const roundMs = aead.name === 'noble' ? 80 : 60;
  const e: number[] = [];
  const r: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const x = burst(engine, roundMs);
    const y = burst(raw, roundMs);
    e.push(x);
    r.push(y);
    ratios.push(x / y);
  }
  const lost = Object.entries(b.drops).filter(([, n]) => n > 0);
  if (delivered !== sent * PACKET || lost.length > 0) throw new Error(`lost packets: ${sent * PACKET - delivered} bytes, drops ${JSON.stringify(lost)}`);
  a.close();
  b.close();
  const pps = median(e);
  return { pps, mbit: (pps * PACKET * 8) / 1e6, raw: median(r), ratio: median(ratios) };
}

const rows: string[][] = [];
let worst = Infinity;
for (const p of selected) {
  const t = deviceThroughput(p);
  worst = Math.min(worst, t.ratio);
  rows.push([p.name, fmt(t.pps), t.mbit.toFixed(0), fmt(t.raw), `${(t.ratio * 100).toFixed(0)}%`]);
}
table(
  `Two Devices in memory, ${PACKET}-byte packets (encrypt, route, decrypt, validate, deliver)`,
  ['suite', 'packets/s', 'Mbit/s', 'raw seal+open/s', 'engine/raw'],
  rows,
);
const load = loadavg()[0]!.toFixed(2);
console.log(
  `\nTarget: the engine moves >= 50% of the provider's raw seal+open rate: ${worst >= 0.5 ? 'met' : 'NOT met'} (worst ${(worst * 100).toFixed(0)}%; ${cpus().length} CPUs, load average ${load}).`,
);
