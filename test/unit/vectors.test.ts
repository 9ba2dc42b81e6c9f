/**
 * The published test vectors (test/vectors/wireguard.json, docs/VECTORS.md): the committed
 * file is exactly what the generator makes now (which runs the engine and fails on any
 * difference from its own whitepaper computation), with every crypto suite; and every value
 * in it is recomputed from its inputs by the independent transcription in
 * test/helpers/whitepaper.ts. wireguard-go accepting the initiations is
 * test/system/vectors-wggo.test.ts.
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type CryptoSuite, jsSuite, nobleSuite } from '../../crypto/suite.js';
import { DEFAULT_OUT, repositoryRoot, vectorsCommand } from '../../src/vectors/command.js';
import { type HandshakeVector, serializeVectors, type VectorFile } from '../../src/vectors/format.js';
import { generateVectors } from '../../src/vectors/generate.js';
import { opensslSuite } from '../../tun/openssl.js';
import {
  concat,
  open,
  PUB,
  type RefLine,
  RefReplay,
  refCookieReply,
  refInitiation,
  refResponse,
  refSession,
  refTransport,
  xopen,
} from '../helpers/whitepaper.js';

const TEXT = readFileSync(DEFAULT_OUT, 'utf8');
const DOC = JSON.parse(TEXT) as VectorFile;

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));
const lines = (L: RefLine[]) => L.map((l) => ({ expr: l.expr, values: Object.fromEntries(Object.entries(l.values).map(([k, v]) => [k, hex(v)])) }));
const fields = (F: [string, Uint8Array][]) => Object.fromEntries(F.map(([k, v]) => [k, hex(v)]));
const joined = (f: Record<string, string>): string => Object.values(f).join('');

function captureIo() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { log: (l: string) => out.push(l), error: (l: string) => err.push(l) }, out, err };
}

describe('test vectors: the committed file', () => {
  const suites: [string, CryptoSuite | null][] = [
    ['js', jsSuite],
    ['noble', nobleSuite],
    ['openssl', opensslSuite()],
  ];
  for (const [name, suite] of suites) {
    it.skipIf(suite === null)(
      `is byte for byte what the generator and the engine make now, with the ${name} suite${suite ? '' : ' (skipped: the addon is not built)'}`,
      () => {
        expect(serializeVectors(generateVectors(suite!))).toBe(TEXT);
      },
    );
  }

  it('is what `npm run vectors` writes; --check accepts it and refuses a changed copy', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgts-vectors-'));
    try {
      const out = join(dir, 'v.json');
      const a = captureIo();
      expect(vectorsCommand(['--out', out, '--crypto', 'js'], a.io)).toBe(0);
      expect(readFileSync(out, 'utf8')).toBe(TEXT);
      const b = captureIo();
      expect(vectorsCommand(['--check', '--out', out], b.io)).toBe(0);
      writeFileSync(out, TEXT.replace('"version": 1', '"version": 2'));
      const c = captureIo();
      expect(vectorsCommand(['--check', '--out', out], c.io)).toBe(1);
      expect(c.err).toHaveLength(1);
      expect(c.err[0]).toMatch(/differs from what the generator makes now/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the command refuses bad arguments and unwritable paths with one line and status 1', () => {
    for (const argv of [['--bogus'], ['--out'], ['--crypto', 'nope'], ['--out', '/nonexistent-dir/v.json'], ['--check', '--out', '/nonexistent-dir/v.json']]) {
      const c = captureIo();
      expect(vectorsCommand(argv, c.io), argv.join(' ')).toBe(1);
      expect(c.err, argv.join(' ')).toHaveLength(1);
      expect(c.err[0]).toMatch(/^vectors: /);
      expect(c.out).toHaveLength(0);
    }
  });

  it('names every field, line and name it uses in docs/VECTORS.md', () => {
    const doc = readFileSync(join(repositoryRoot(), 'docs', 'VECTORS.md'), 'utf8');
    const keys = new Set<string>();
    const exprs = new Set<string>();
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v !== null && typeof v === 'object') {
        for (const [k, x] of Object.entries(v)) {
          keys.add(k);
          if (k === 'expr' && typeof x === 'string') exprs.add(x);
          walk(x);
        }
      }
    };
    walk(DOC);
    for (const k of keys) expect(doc, `docs/VECTORS.md should mention \`${k}\``).toContain(`\`${k}\``);
    for (const e of exprs) expect(doc, `docs/VECTORS.md should list the line \`${e}\``).toContain(`\`${e}\``);
  });
});

function checkHandshake(h: HandshakeVector): void {
  const inp = h.inputs;
  describe(`test vectors: handshake ${h.name}, recomputed by the independent transcription`, () => {
    const sprivI = bytes(inp['S_i^priv']);
    const sprivR = bytes(inp['S_r^priv']);
    const eprivI = bytes(inp['E_i^priv']);
    const eprivR = bytes(inp['E_r^priv']);
    const cookie = h.cookie;
    const tau = cookie
      ? refCookieReply({
          secret: bytes(cookie.inputs.R_m),
          source: bytes(cookie.inputs.A_m),
          spubR: PUB(sprivR),
          nonce: bytes(cookie.inputs['msg.nonce']),
          M: bytes(cookie.initiation.fields.mac1!),
          receiver: cookie.inputs.I_i,
        }).cookie
      : null;
    const init = refInitiation({ sprivI, spubR: PUB(sprivR), eprivI, sender: inp.I_i, ms: inp.time.unixMilliseconds, cookie: tau });
    const resp = refResponse({ spubI: PUB(sprivI), epubI: PUB(eprivI), eprivR, sender: inp.I_r, receiver: inp.I_i, psk: bytes(inp.Q), C: init.C, H: init.H });
    const sess = refSession(resp.C);

    it('inputs: public keys of the private keys, clamped private keys, the time in both notations', () => {
      for (const who of ['S_i', 'S_r', 'E_i', 'E_r'] as const) {
        const priv = bytes(inp[`${who}^priv`]);
        expect(hex(PUB(priv)), who).toBe(inp[`${who}^pub`]);
        expect(priv[0]! & 7, who).toBe(0);
        expect(priv[31]! & 0xc0, who).toBe(0x40);
      }
      expect(new Date(inp.time.unixMilliseconds).toISOString()).toBe(inp.time.utc);
      expect(bytes(inp.Q)).toHaveLength(32);
    });

    it('initiation: every line, every field, the bytes', () => {
      expect(h.initiation.lines).toEqual(lines(init.lines));
      expect(h.initiation.fields).toEqual(fields(init.fields));
      expect(h.initiation.bytes).toBe(hex(init.bytes));
      expect(joined(h.initiation.fields)).toBe(h.initiation.bytes);
      expect(bytes(h.initiation.bytes)).toHaveLength(148);
      if (!cookie) expect(h.initiation.fields.mac2).toBe('00'.repeat(16));
    });

    it('response and transport keys: every line, every field, the bytes', () => {
      expect(h.response.lines).toEqual(lines(resp.lines));
      expect(h.response.fields).toEqual(fields(resp.fields));
      expect(h.response.bytes).toBe(hex(resp.bytes));
      expect(joined(h.response.fields)).toBe(h.response.bytes);
      expect(bytes(h.response.bytes)).toHaveLength(92);
      expect(h.session.lines).toEqual(lines(sess.lines));
    });

    it('transport messages: sealed as the whitepaper says, open under the receiver key to the packet and its zero padding', () => {
      expect(h.transport.length).toBeGreaterThan(0);
      for (const t of h.transport) {
        const fromInitiator = t.from === 'initiator';
        expect(t.key).toBe(fromInitiator ? 'T_i^send' : 'T_r^send');
        expect(t.receiver).toBe(fromInitiator ? inp.I_r : inp.I_i);
        const packet = bytes(t.packet);
        expect((packet.length + t.padding) % 16, t.description).toBe(0);
        expect(t.padding).toBeLessThan(16);
        const ref = refTransport(fromInitiator ? sess.send : sess.recv, t.receiver, BigInt(t.counter), packet, t.padding);
        expect(t.fields).toEqual(fields(ref));
        expect(t.bytes).toBe(hex(concat(...ref.map((f) => f[1]))));
        const sealed = bytes(t.fields.packet!);
        // T_r^recv = T_i^send and T_i^recv = T_r^send: the receiver opens with the sender's key.
        expect(open(fromInitiator ? sess.send : sess.recv, sealed, undefined, BigInt(t.counter))).toEqual(concat(packet, new Uint8Array(t.padding)));
        if (packet.length > 0) {
          const v = packet[0]! >>> 4;
          expect([4, 6]).toContain(v);
          const len = v === 4 ? (packet[2]! << 8) | packet[3]! : 40 + ((packet[4]! << 8) | packet[5]!);
          expect(len).toBe(packet.length);
        }
      }
      const keepalives = h.transport.filter((t) => t.packet === '');
      for (const k of keepalives) expect(bytes(k.bytes)).toHaveLength(32);
    });

    if (cookie) {
      it('cookie reply: every line and field; it opens under HASH(LABEL_COOKIE || S_r^pub) with the first mac1 to the τ that makes mac2', () => {
        const ci = cookie.inputs;
        const first = refInitiation({ sprivI, spubR: PUB(sprivR), eprivI: bytes(ci['E_i^priv']), sender: ci.I_i, ms: ci.time.unixMilliseconds, cookie: null });
        expect(hex(PUB(bytes(ci['E_i^priv'])))).toBe(ci['E_i^pub']);
        expect(cookie.initiation.lines).toEqual(lines(first.lines));
        expect(cookie.initiation.fields).toEqual(fields(first.fields));
        expect(cookie.initiation.bytes).toBe(hex(first.bytes));
        const ip = ci.source.address.split('.').map(Number);
        expect(ci.A_m).toBe(hex(Uint8Array.from([...ip, ci.source.port >>> 8, ci.source.port & 0xff])));
        const reply = refCookieReply({
          secret: bytes(ci.R_m),
          source: bytes(ci.A_m),
          spubR: PUB(sprivR),
          nonce: bytes(ci['msg.nonce']),
          M: first.fields[5]![1],
          receiver: ci.I_i,
        });
        expect(cookie.reply.lines).toEqual(lines(reply.lines));
        expect(cookie.reply.fields).toEqual(fields(reply.fields));
        expect(cookie.reply.bytes).toBe(hex(concat(...reply.fields.map((f) => f[1]))));
        expect(bytes(cookie.reply.bytes)).toHaveLength(64);
        const key = bytes(cookie.reply.lines.find((l) => l.values.cookiekey)!.values.cookiekey!);
        expect(xopen(key, bytes(cookie.reply.fields.nonce!), bytes(cookie.reply.fields.cookie!), bytes(cookie.initiation.fields.mac1!))).toEqual(reply.cookie);
        expect(h.initiation.fields.mac2).not.toBe('00'.repeat(16));
      });
    }
  });
}

for (const h of DOC.handshakes) checkHandshake(h);

describe('test vectors: counter sequences', () => {
  it('cover both sequences on a session of a handshake in the file', () => {
    expect(DOC.counters.map((c) => c.name)).toEqual(['replay-window', 'limits']);
  });

  for (const seq of DOC.counters) {
    it(`${seq.name}: every message sealed as stated; expect and engine follow the window and limit rules`, () => {
      const h = DOC.handshakes.find((x) => x.name === seq.handshake)!;
      expect(h).toBeDefined();
      const init = refInitiation({
        sprivI: bytes(h.inputs['S_i^priv']),
        spubR: bytes(h.inputs['S_r^pub']),
        eprivI: bytes(h.inputs['E_i^priv']),
        sender: h.inputs.I_i,
        ms: h.inputs.time.unixMilliseconds,
        cookie: null,
      });
      const resp = refResponse({
        spubI: bytes(h.inputs['S_i^pub']),
        epubI: bytes(h.inputs['E_i^pub']),
        eprivR: bytes(h.inputs['E_r^priv']),
        sender: h.inputs.I_r,
        receiver: h.inputs.I_i,
        psk: bytes(h.inputs.Q),
        C: init.C,
        H: init.H,
      });
      const sess = refSession(resp.C);
      expect(seq.from).toBe('responder');
      expect(seq.key).toBe('T_r^send');
      expect(seq.receiver).toBe(h.inputs.I_i);
      // The reference implementations' windows (kernel on 64-bit and wireguard-go; this engine).
      const w8128 = new RefReplay(8128n);
      const w8160 = new RefReplay(8160n);
      const engine = new RefReplay(8160n, 2n ** 53n);
      let forged = 0;
      for (const step of seq.steps) {
        const counter = BigInt(step.counter);
        const real = hex(concat(...refTransport(sess.recv, seq.receiver, counter, new Uint8Array(0), 0).map((f) => f[1])));
        const authentic = step.bytes === real;
        if (!authentic) {
          // The only forgery the vectors make: the tag's last byte with its low bit flipped.
          const b = bytes(real);
          b[b.length - 1]! ^= 1;
          expect(step.bytes, `counter ${step.counter}`).toBe(hex(b));
          forged++;
        }
        const a = w8128.receive(counter, authentic);
        const b = w8160.receive(counter, authentic);
        const want = a === b ? (a ? 'accept' : 'reject') : 'window-dependent';
        expect(step.expect, `counter ${step.counter}`).toBe(want);
        expect(step.engine, `counter ${step.counter}`).toBe(engine.receive(counter, authentic) ? 'accept' : 'reject');
      }
      if (seq.name === 'replay-window') {
        expect(forged).toBe(1);
        expect(seq.steps.filter((s) => s.expect === 'window-dependent').length).toBeGreaterThan(0);
      }
      if (seq.name === 'limits') {
        expect(seq.steps.map((s) => s.counter)).toContain(DOC.constants.REKEY_AFTER_MESSAGES);
        expect(seq.steps.map((s) => s.counter)).toContain(DOC.constants.REJECT_AFTER_MESSAGES);
      }
    });
  }
});
