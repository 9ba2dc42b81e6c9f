/**
 * The metrics endpoint and its bounds, over loopback TCP and a UNIX socket in a temporary
 * directory (no root): GET of the metrics path only, one request a connection, header size,
 * no body, a connection limit, a deadline that closes slow clients and clients that never read,
 * every refusal counted, and the socket file's life (mode 0600, stale replaced, live or foreign
 * files refused, removed on close).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { MetricsAddress } from '../../src/metrics/address.js';
import type { Exposition } from '../../src/metrics/exposition.js';
import { type Collector, type MetricsServer, serveMetrics } from '../../src/metrics/server.js';
import { waitFor } from '../helpers/proc.js';
import { parseExposition, sampleValue } from '../helpers/prom.js';

const LOOPBACK: MetricsAddress = { kind: 'tcp', host: '127.0.0.1', port: 0, family: 4 };
const demo: Collector = (x: Exposition) => x.family('demo_value', 'gauge', 'A demo.').add({ k: 'v' }, 42);

const servers: MetricsServer[] = [];
const sockets: Socket[] = [];
const dir = mkdtempSync(join(tmpdir(), 'wgts-metrics-'));
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) await s.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function start(addr: MetricsAddress = LOOPBACK, collect: Collector = demo, opts = {}): Promise<MetricsServer> {
  const s = await serveMetrics(addr, collect, undefined, opts);
  servers.push(s);
  return s;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(target: { port?: number; socketPath?: string }, path = '/metrics', method = 'GET', body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', ...target, path, method, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Write raw bytes on a fresh connection and collect what comes back until the server closes. */
function raw(port: number, data: string | Buffer): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    sockets.push(s);
    let text = '';
    s.on('data', (d) => (text += d.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => resolve(text));
    s.write(data);
  });
}

describe('metrics endpoint', () => {
  it('answers GET /metrics with the exposition, its own request counts and process metrics, then closes', async () => {
    const s = await start();
    const a = await get({ port: s.port });
    expect(a.status).toBe(200);
    expect(a.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(a.headers.connection).toBe('close');
    expect(Number(a.headers['content-length'])).toBe(Buffer.byteLength(a.body));
    const x = parseExposition(a.body);
    expect(sampleValue(x, 'demo_value', { k: 'v' })).toBe(42);
    expect(sampleValue(x, 'wireguard_ts_metrics_requests_total', { outcome: 'served' })).toBe(0); // answers sent before this one
    expect(sampleValue(x, 'process_resident_memory_bytes')).toBeGreaterThan(1e6);
    expect(sampleValue(x, 'process_start_time_seconds')).toBeLessThanOrEqual(Date.now() / 1000);
    expect((await get({ port: s.port }, '/metrics?x=1')).status).toBe(200);
    expect(s.outcomes.served).toBe(2);
    expect(await waitFor(() => s.connections === 0, 2000)).toBe(true);
  });

  it('refuses other methods, other paths, bodies and oversized headers, and counts each', async () => {
    const s = await start();
    const post = await get({ port: s.port }, '/metrics', 'POST', 'x');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET');
    expect((await get({ port: s.port }, '/metrics', 'HEAD')).status).toBe(405);
    expect((await get({ port: s.port }, '/')).status).toBe(404);
    expect((await get({ port: s.port }, '/metrics/')).status).toBe(404);
    expect(await raw(s.port, 'GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc')).toMatch(/^HTTP\/1\.1 400 /);
    expect(await raw(s.port, `GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(9000)}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 431 /);
    expect(await raw(s.port, 'NOT HTTP AT ALL\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    const x = parseExposition((await get({ port: s.port })).body);
    expect(sampleValue(x, 'wireguard_ts_metrics_requests_total', { outcome: 'method_not_allowed' })).toBe(2);
    expect(sampleValue(x, 'wireguard_ts_metrics_requests_total', { outcome: 'not_found' })).toBe(2);
    expect(sampleValue(x, 'wireguard_ts_metrics_requests_total', { outcome: 'bad_request' })).toBe(2);
    expect(sampleValue(x, 'wireguard_ts_metrics_requests_total', { outcome: 'too_large' })).toBe(1);
    expect(sampleValue(x, 'wireguard_ts_metrics_requests_total', { outcome: 'served' })).toBe(0);
  });

  it('answers one request a connection, however many were pipelined', async () => {
    const s = await start();
    const text = await raw(s.port, 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(50));
    expect(text.match(/HTTP\/1\.1 200 /g)).toHaveLength(1);
    expect(s.outcomes.served).toBe(1);
  });

  it('closes connections beyond the limit at once, and counts them', async () => {
    const s = await start(LOOPBACK, demo, { maxConnections: 2 });
    for (let i = 0; i < 2; i++) {
      const c = connect(s.port, '127.0.0.1');
      sockets.push(c);
      await new Promise((r) => c.once('connect', r));
    }
    await waitFor(() => s.connections === 2, 2000);
    expect(await raw(s.port, 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n')).toBe('');
    expect(s.outcomes.connection_limit).toBe(1);
    expect(s.connections).toBe(2);
  });

  it('closes a client that sends slowly, and one that never reads a large answer, at the deadline', async () => {
    // About 8 MB of samples: more than the socket buffers take, so the answer waits for the reader.
    const big: Collector = (x) => {
      const f = x.family('big_value', 'gauge', 'Big.');
      for (let i = 0; i < 200_000; i++) f.add({ i: String(i), pad: 'x'.repeat(10) }, i);
    };
    const s = await start(LOOPBACK, big, { deadlineMs: 2000 });
    const slow = connect(s.port, '127.0.0.1');
    sockets.push(slow);
    slow.on('error', () => {});
    slow.write('GET /metr');
    const lazy = connect(s.port, '127.0.0.1');
    sockets.push(lazy);
    lazy.on('error', () => {});
    lazy.pause(); // never reads
    lazy.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await waitFor(() => s.connections === 2, 2000)).toBe(true);
    // Both are closed by the deadline, counted as such (not answered, not refused).
    expect(await waitFor(() => s.connections === 0, 5000)).toBe(true);
    expect(s.outcomes.timeout).toBe(2);
    expect(s.outcomes.served).toBe(1);
  });

  it('fails one scrape, not the program, when a collector throws', async () => {
    let broken = true;
    const s = await start(LOOPBACK, (x) => {
      if (broken) throw new Error('bug');
      demo(x);
    });
    expect((await get({ port: s.port })).status).toBe(500);
    broken = false;
    const x = parseExposition((await get({ port: s.port })).body);
    expect(sampleValue(x, 'wireguard_ts_metrics_requests_total', { outcome: 'error' })).toBe(1);
    expect(sampleValue(x, 'wireguard_ts_metrics_requests_total', { outcome: 'served' })).toBe(0);
  });

  it('renders once for requests that come together, and takes collectors that finish later', async () => {
    let calls = 0;
    const s = await start(LOOPBACK, async (x) => {
      calls++;
      await new Promise((r) => setTimeout(r, 50)); // a collection in slices
      x.family('calls', 'gauge', 'Renderings so far.').add({}, calls);
    });
    const answers = await Promise.all(Array.from({ length: 5 }, () => get({ port: s.port })));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(calls).toBe(1);
    expect(new Set(answers.map((a) => a.body)).size).toBe(1);
    await new Promise((r) => setTimeout(r, 300));
    expect(sampleValue(parseExposition((await get({ port: s.port })).body), 'calls')).toBe(2);
    expect(s.outcomes.served).toBe(6);
  });

  it('says so in one line when the address is taken', async () => {
    const s = await start();
    await expect(serveMetrics({ ...LOOPBACK, port: s.port }, demo)).rejects.toThrow(`metrics address 127.0.0.1:${s.port} is already in use`);
  });

  it('serves [::1] too', async () => {
    const s = await start({ kind: 'tcp', host: '::1', port: 0, family: 6 });
    expect(s.address).toBe(`[::1]:${s.port}`);
    const a = await get({ host: '::1', port: s.port } as { port: number });
    expect(a.status).toBe(200);
  });
});

describe('metrics on a UNIX socket', () => {
  it('is mode 0600, answers, and goes away on close', async () => {
    const path = join(dir, 'a.sock');
    const s = await start({ kind: 'unix', path });
    expect(statSync(path).isSocket()).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const a = await get({ socketPath: path });
    expect(a.status).toBe(200);
    expect(sampleValue(parseExposition(a.body), 'demo_value', { k: 'v' })).toBe(42);
    await s.close();
    expect(existsSync(path)).toBe(false);
  });

  it('replaces a stale socket, refuses a live one and anything that is not a socket', async () => {
    const path = join(dir, 'stale.sock');
    // A process that dies without removing its socket.
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    await new Promise((r) => child.stdout!.once('data', r));
    await expect(serveMetrics({ kind: 'unix', path }, demo)).rejects.toThrow(`metrics socket ${path} is in use by another process`);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(existsSync(path)).toBe(true);
    const s = await start({ kind: 'unix', path });
    expect((await get({ socketPath: path })).status).toBe(200);
    await s.close();

    const file = join(dir, 'not-a-socket');
    writeFileSync(file, 'keep me');
    await expect(serveMetrics({ kind: 'unix', path: file }, demo)).rejects.toThrow(/something else than a socket is there/);
    expect(readFileSync(file, 'utf8')).toBe('keep me');
  });
});
