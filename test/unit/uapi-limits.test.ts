/**
 * Every input of the UAPI server is bounded (issue 12): line length, the bytes and lines of one
 * set transaction, the bytes all connections hold, the number of connections, idle time. Over a
 * limit: an errno, the connection closed, nothing applied, what it held released.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeHexKey } from '../../crypto/keys.js';
import type { DeviceChange, Logger } from '../../noise/types.js';
import { EBUSY, EINVAL, EMSGSIZE, ENOBUFS, EPROTO, ETIMEDOUT, formatErrno, SetParser } from '../../src/uapi/protocol.js';
import { serveUapi, type UapiHandler, type UapiServer, type UapiServerOptions } from '../../src/uapi/server.js';
import { answerCount, repeat, talk } from '../helpers/uapi-session.js';

const hx = (b: number) => encodeHexKey(new Uint8Array(32).fill(b));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: string;
let sock: string;
let server: UapiServer | null = null;
const errors: string[] = [];
const logger: Logger = { verbose() {}, error: (m) => errors.push(m) };

function recorder(opts: { setDelayMs?: number; body?: string } = {}): UapiHandler & { changes: DeviceChange[] } {
  const changes: DeviceChange[] = [];
  return {
    changes,
    get: () => opts.body ?? 'listen_port=1\n',
    set: async (c) => {
      if (opts.setDelayMs) await sleep(opts.setDelayMs);
      changes.push(c);
      return 0;
    },
  };
}

async function start(h: UapiHandler, options: UapiServerOptions): Promise<UapiServer> {
  server = await serveUapi(sock, h, logger, options);
  return server;
}

/** The server still answers a get on a fresh connection. */
async function stillServes(): Promise<void> {
  const r = await talk(sock, ['get=1\n\n'], { answers: 1 });
  expect(r.text.endsWith('errno=0\n\n')).toBe(true);
}

/** Wait until the server has let go of every connection and every buffered byte. */
async function drained(s: UapiServer): Promise<void> {
  for (let i = 0; i < 500 && (s.stats().connections > 0 || s.stats().bufferedBytes > 0); i++) await sleep(10);
  expect(s.stats()).toMatchObject({ connections: 0, bufferedBytes: 0 });
}

function openIdle(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection(sock);
    s.on('connect', () => resolve(s));
    s.on('error', reject);
  });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'wgts-uapi-limits-'));
  sock = join(dir, 'wg.sock');
  errors.length = 0;
});

afterEach(async () => {
  await server?.close();
  server = null;
  rmSync(dir, { recursive: true, force: true });
});

describe('UAPI server limits', () => {
  it('line length: a line longer than the limit gets EPROTO as soon as it is too long, newline or not', async () => {
    const h = recorder();
    const s = await start(h, { maxLineBytes: 100 });
    const exact = `allowed_ip=${'1'.repeat(89)}`; // 100 bytes: allowed (and invalid, so EINVAL)
    expect((await talk(sock, [`set=1\npublic_key=${hx(1)}\n${exact}\n\n`], { answers: 1 })).text).toBe(formatErrno(EINVAL));
    // 101 bytes and no newline yet: refused without waiting for the rest of the line
    const r = await talk(sock, [`set=1\n${'x'.repeat(101)}`]);
    expect(r).toMatchObject({ text: formatErrno(EPROTO), how: 'end' });
    const op = await talk(sock, ['g'.repeat(500)]);
    expect(op).toMatchObject({ text: formatErrno(EPROTO), how: 'end' });
    expect(h.changes).toEqual([]);
    await drained(s);
    await stillServes();
  });

  it('transaction bytes: a set longer than maxRequestBytes gets EMSGSIZE, is closed and changes nothing', async () => {
    const h = recorder();
    const s = await start(h, { maxRequestBytes: 10_000 });
    const lines = [`public_key=${hx(1)}`];
    for (let i = 0; lines.join('\n').length < 20_000; i++) lines.push(`allowed_ip=10.0.${i >> 8}.${i & 255}/32`);
    const r = await talk(sock, [`set=1\n${lines.join('\n')}\n\n`]);
    expect(r).toMatchObject({ text: formatErrno(EMSGSIZE), how: 'end' });
    // Just below the limit is fine.
    const small = lines.slice(0, 300).join('\n');
    expect(small.length).toBeLessThan(10_000);
    expect((await talk(sock, [`set=1\n${small}\n\n`], { answers: 1 })).text).toBe(formatErrno(0));
    expect(h.changes.length).toBe(1);
    expect(h.changes[0]!.peers[0]!.allowedIps.length).toBe(299);
    await drained(s);
  });

  it('transaction lines: a set of more than maxRequestLines lines gets EMSGSIZE, valid lines or not', async () => {
    const h = recorder();
    const s = await start(h, { maxRequestLines: 1000 });
    const valid = `set=1\npublic_key=${hx(2)}\n${'allowed_ip=10.0.0.1/32\n'.repeat(1000)}\n`;
    expect((await talk(sock, [valid])).text).toBe(formatErrno(EMSGSIZE));
    const invalid = `set=1\n${'a=b\n'.repeat(1001)}\n`;
    expect((await talk(sock, [invalid])).text).toBe(formatErrno(EMSGSIZE));
    expect((await talk(sock, [`set=1\npublic_key=${hx(2)}\n${'allowed_ip=10.0.0.1/32\n'.repeat(998)}\n`], { answers: 1 })).text).toBe(formatErrno(0));
    expect(h.changes.length).toBe(1);
    await drained(s);
  });

  it('after an invalid line the rest of the set is read and dropped, held nowhere, and nothing of it is applied', async () => {
    const h = recorder();
    const s = await start(h, {});
    let peak = 0;
    const lines = Buffer.from(`public_key=${hx(3)}\n${'allowed_ip=10.1.2.3/32\n'.repeat(4000)}`);
    let n = 0;
    const r = await talk(
      sock,
      [
        `set=1\nlisten_port=7\npublic_key=${hx(3)}\nallowed_ip=10.0.0.0/33\n`,
        () => {
          peak = Math.max(peak, s.stats().bufferedBytes);
          return n++ < 100 ? lines : null;
        },
        '\nget=1\n\n',
      ],
      { answers: 2 },
    );
    expect(r.text).toBe(`${formatErrno(EINVAL)}listen_port=1\n${formatErrno(0)}`);
    expect(h.changes).toEqual([]);
    // ~9 MB of valid-looking lines went by; what was held stayed within a line or two of reads.
    expect(peak).toBeLessThan(256 * 1024);
    await drained(s);
  });

  it('a set that fails at its last line changes nothing, and a valid one of 100,000 lines is applied whole', async () => {
    const h = recorder();
    const s = await start(h, {});
    const body = [`private_key=${hx(9)}`, `public_key=${hx(4)}`];
    for (let i = 0; i < 100_000; i++) body.push(`allowed_ip=10.${i >> 16}.${(i >> 8) & 255}.${i & 255}/32`);
    expect((await talk(sock, [`set=1\n${body.join('\n')}\nfwmark=1\n\n`], { answers: 1 })).text).toBe(formatErrno(EINVAL));
    expect(h.changes).toEqual([]);
    expect((await talk(sock, [`set=1\n${body.join('\n')}\n\n`], { answers: 1 })).text).toBe(formatErrno(0));
    expect(h.changes.length).toBe(1);
    expect(h.changes[0]!.peers[0]!.allowedIps.length).toBe(100_000);
    await drained(s);
  });

  it('the bytes all connections hold: the connection that passes the budget gets ENOBUFS, the others go on', async () => {
    const h = recorder();
    const budget = 2 * 1024 * 1024;
    const s = await start(h, { maxBufferedBytes: budget });
    // ~1.6 MB held each (65,536 allowed IPs at 24 bytes): one fits, two do not.
    const ips = (k: number) => {
      const out = [`public_key=${hx(10 + k)}`];
      for (let i = 0; i < 65_536; i++) out.push(`allowed_ip=10.${k}.${i >> 8}.${i & 255}/32`);
      return `${out.join('\n')}\n`;
    };
    const first = createConnection(sock);
    let firstText = '';
    first.on('data', (b) => (firstText += b.toString('latin1')));
    first.write(`set=1\n${ips(1)}`); // open: no blank line yet
    for (let i = 0; i < 500 && s.stats().bufferedBytes < 1_000_000; i++) await sleep(10);
    const held = s.stats().bufferedBytes;
    expect(held).toBeGreaterThan(1_000_000);
    expect(held).toBeLessThanOrEqual(budget);
    const second = await talk(sock, [`set=1\n${ips(2)}`]);
    expect(second.text).toBe(formatErrno(ENOBUFS));
    expect(errors.some((e) => /hold more than/.test(e))).toBe(true);
    expect(s.stats().peakBufferedBytes).toBeLessThanOrEqual(budget);
    // The first one is unaffected: it completes and is applied.
    first.write('\n');
    for (let i = 0; i < 500 && answerCount(firstText) < 1; i++) await sleep(10);
    expect(firstText).toBe(formatErrno(0));
    first.destroy();
    expect(h.changes.length).toBe(1);
    expect(h.changes[0]!.peers[0]!.allowedIps.length).toBe(65_536);
    await drained(s);
  });

  it('the number of connections: one past the limit gets EBUSY; a closed one makes room', async () => {
    const s = await start(recorder(), { maxConnections: 3 });
    const open = [await openIdle(), await openIdle(), await openIdle()];
    for (let i = 0; i < 100 && s.stats().connections < 3; i++) await sleep(10);
    const refused = await talk(sock, ['get=1\n\n']);
    expect(refused).toMatchObject({ text: formatErrno(EBUSY) });
    expect(s.stats().connections).toBe(3);
    open.pop()!.destroy();
    for (let i = 0; i < 100 && s.stats().connections > 2; i++) await sleep(10);
    await stillServes();
    for (const o of open) o.destroy();
    await drained(s);
  });

  it('idle timeout: a silent connection and a stalled set get ETIMEDOUT (nothing applied); waiting for a slow set does not count', async () => {
    const h = recorder({ setDelayMs: 600 });
    const s = await start(h, { idleTimeoutMs: 200 });
    const silent = await talk(sock, []);
    expect(silent).toMatchObject({ text: formatErrno(ETIMEDOUT), how: 'end' });
    const stalled = await talk(sock, [`set=1\npublic_key=${hx(5)}\n`]);
    expect(stalled).toMatchObject({ text: formatErrno(ETIMEDOUT), how: 'end' });
    expect(h.changes).toEqual([]);
    // The handler takes 600 ms, three idle timeouts: the client is waiting for us, not idle.
    const slow = await talk(sock, [`set=1\npublic_key=${hx(6)}\n\n`], { answers: 1 });
    expect(slow.text).toBe(formatErrno(0));
    expect(h.changes.length).toBe(1);
    await drained(s);
  });

  it('idle timeout: a client that does not read a big answer is dropped, and the answer is let go', async () => {
    const body = 'listen_port=1\n'.repeat(400_000); // 5.6 MB, far more than the socket buffers
    const s = await start(recorder({ body }), { idleTimeoutMs: 300 });
    const c = createConnection(sock);
    c.pause();
    await new Promise<void>((r) => c.on('connect', () => r()));
    c.write('get=1\n\n');
    for (let i = 0; i < 200 && s.stats().bufferedBytes === 0; i++) await sleep(10);
    expect(s.stats().bufferedBytes).toBeGreaterThan(1_000_000); // the unread answer is counted
    await drained(s);
    c.destroy();
    await stillServes();
  });

  it("withstands issue 12's two reproductions, scaled down: an errno, closed, nothing held", async () => {
    const h = recorder();
    const s = await start(h, { maxRequestLines: 100_000 });
    // 1: "set=1" then short lines without end (here 64 MiB of "a\n").
    const a = await talk(sock, ['set=1\n', repeat(Buffer.from('a\n'.repeat(32768)), 1024)]);
    expect(a.text).toBe(formatErrno(EMSGSIZE));
    expect(a.sent).toBeLessThan(8 * 1024 * 1024); // closed long before the end
    // 2: four connections, each 16 MiB of "a=b" lines inside an open set.
    const b = await Promise.all([0, 1, 2, 3].map(() => talk(sock, ['set=1\n', repeat(Buffer.from('a=b\n'.repeat(16384)), 256)])));
    for (const r of b) expect(r.text).toBe(formatErrno(EMSGSIZE));
    expect(s.stats().peakBufferedBytes).toBeLessThan(1024 * 1024);
    expect(h.changes).toEqual([]);
    await drained(s);
    await stillServes();
  });

  it('asks the host to reclaim memory once 16 MiB held by dropped transactions are let go, not before', async () => {
    let reclaims = 0;
    const h = { ...recorder(), reclaim: () => void reclaims++ };
    const s = await start(h, { idleTimeoutMs: 300 });
    // 450,560 allowed IPs each (~10.8 MB held): the first dropped is not enough, the second is.
    const chunk = (k: number) => {
      let i = 0;
      return () => {
        if (i >= 55) return null;
        let t = i === 0 ? `public_key=${hx(20 + k)}\n` : '';
        for (let j = 0; j < 8192; j++) t += `allowed_ip=10.${k}.${((i * 8192 + j) >> 8) & 255}.${j & 255}/32\n`;
        i++;
        return Buffer.from(t);
      };
    };
    const first = await talk(sock, ['set=1\n', chunk(1)]);
    expect(first.text).toBe(formatErrno(ETIMEDOUT));
    await sleep(400);
    expect(reclaims).toBe(0);
    const second = await talk(sock, ['set=1\n', chunk(2)]);
    expect(second.text).toBe(formatErrno(ETIMEDOUT));
    for (let i = 0; i < 100 && reclaims === 0; i++) await sleep(20);
    expect(reclaims).toBe(1);
    expect(h.changes).toEqual([]);
    await drained(s);
  });

  it('rejects nonsense limits', async () => {
    await expect(serveUapi(sock, recorder(), logger, { maxConnections: 0 })).rejects.toThrow(/maxConnections/);
    await expect(serveUapi(sock, recorder(), logger, { idleTimeoutMs: Number.NaN })).rejects.toThrow(/idleTimeoutMs/);
  });
});

describe('SetParser', () => {
  it('holds the validated change, not the text: allowed IPs at 24 bytes each, nothing after a failure', () => {
    const p = new SetParser();
    expect(p.line(`public_key=${hx(1)}`)).toBe(true);
    const before = p.heldBytes;
    let text = 0;
    for (let i = 0; i < 100_000; i++) {
      const l = `allowed_ip=10.${i >> 16}.${(i >> 8) & 255}.${i & 255}/32`;
      text += l.length + 1;
      p.line(l);
    }
    const held = p.heldBytes - before;
    expect(held).toBeGreaterThanOrEqual(100_000 * 24);
    expect(held).toBeLessThan(text);
    expect(p.line('bogus')).toBe(false);
    expect(p.failed).toMatchObject({ errno: EPROTO });
    expect(p.heldBytes).toBe(0);
    expect(p.line(`public_key=${hx(2)}`)).toBe(false); // failed for good
    expect(p.finish()).toMatchObject({ errno: EPROTO });
  });

  it('replace_allowed_ips and remove drop what their section listed before, and give back the storage', () => {
    const p = new SetParser();
    p.line(`public_key=${hx(1)}`);
    for (let i = 0; i < 20_000; i++) p.line(`allowed_ip=10.0.${i >> 8}.${i & 255}/32`);
    const big = p.heldBytes;
    p.line('replace_allowed_ips=true');
    p.line('allowed_ip=192.0.2.0/24');
    expect(p.heldBytes).toBeLessThan(big);
    p.line(`public_key=${hx(2)}`);
    for (let i = 0; i < 20_000; i++) p.line(`allowed_ip=10.1.${i >> 8}.${i & 255}/32`);
    p.line('remove=true');
    p.line('allowed_ip=10.9.9.9/32');
    p.line(`public_key=${hx(3)}`);
    p.line('allowed_ip=fd00::/8');
    const r = p.finish();
    if (!('change' in r)) throw new Error(r.message);
    expect(r.change.peers.map((x) => x.allowedIps.length)).toEqual([1, 0, 1]);
    expect(r.change.peers[0]!.replaceAllowedIps).toBe(true);
    expect(r.change.peers[1]!.remove).toBe(true);
    expect(r.change.peers[2]!.allowedIps[0]).toEqual({ family: 6, bytes: Uint8Array.of(0xfd, ...new Array(15).fill(0)), prefix: 8 });
    expect(p.heldBytes).toBe(0);
  });
});
