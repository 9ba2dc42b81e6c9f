import { existsSync, lstatSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatCidr } from '../../noise/iptext.js';
import type { DeviceChange, DeviceStatus, Logger } from '../../noise/types.js';
import { uapiGet, uapiGetRaw, uapiRequest, uapiSet } from '../../src/uapi/client.js';
import { EADDRINUSE, EINVAL, EPROTO, formatGet } from '../../src/uapi/protocol.js';
import { serveUapi, type UapiHandler, type UapiServer, UapiSocketInUseError } from '../../src/uapi/server.js';
import { filledHexKey, filledKey } from '../helpers/keys.js';
import { sleep } from '../helpers/proc.js';

let dir: string;
let sockPath: string;
let server: UapiServer | null;
const errors: string[] = [];
const logger: Logger = { verbose() {}, error: (m) => errors.push(m) };

/** A fake device: keeps the applied changes and answers get with a fixed status. */
function fakeHandler(status: DeviceStatus, setErrno = 0): UapiHandler & { changes: DeviceChange[] } {
  const changes: DeviceChange[] = [];
  return {
    changes,
    get: () => formatGet(status),
    set: (c) => {
      changes.push(c);
      return setErrno;
    },
  };
}

const STATUS: DeviceStatus = {
  privateKey: filledKey(1),
  listenPort: 4242,
  fwmark: 0,
  peers: [
    {
      publicKey: filledKey(2),
      presharedKey: null,
      endpoint: { address: '192.0.2.1', port: 51820, family: 4 },
      persistentKeepalive: 0,
      allowedIps: [{ family: 4, bytes: Uint8Array.of(10, 0, 0, 0), prefix: 8 }],
      lastHandshakeSec: 0,
      lastHandshakeNsec: 0,
      rxBytes: 1,
      txBytes: 2,
    },
  ],
};

/**
 * Open a connection, send `writes` (each optionally split into 1-byte writes), and collect
 * everything until `answers` blank-line-terminated answers arrived or the server hung up.
 */
function session(writes: string[], opts: { answers: number; byteByByte?: boolean; endAfter?: boolean }): Promise<{ text: string; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const s = createConnection(sockPath);
    let text = '';
    let done = false;
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      s.destroy();
      resolve({ text, closedByServer });
    };
    s.on('connect', async () => {
      for (const w of writes) {
        if (opts.byteByByte) {
          for (const ch of w) {
            s.write(ch);
            await new Promise((r) => setImmediate(r));
          }
        } else {
          s.write(w);
        }
      }
      if (opts.endAfter) s.end();
    });
    s.on('data', (b) => {
      text += b.toString('latin1');
      if (text.split('\n\n').length - 1 >= opts.answers && !opts.endAfter) finish(false);
    });
    s.on('end', () => finish(true));
    s.on('error', (e) => (done ? undefined : reject(e)));
  });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'wgts-uapi-'));
  sockPath = join(dir, 'run', 'wgtest.sock');
  server = null;
  errors.length = 0;
});

afterEach(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('serveUapi', () => {
  it('creates the directory 0755 and the socket 0600, and close() removes it', async () => {
    server = await serveUapi(sockPath, fakeHandler(STATUS), logger);
    expect(statSync(join(dir, 'run')).mode & 0o777).toBe(0o755);
    const st = lstatSync(sockPath);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    expect(st.uid).toBe(process.getuid!());
    await server.close();
    server = null;
    expect(existsSync(sockPath)).toBe(false);
  });

  it('answers get and set', async () => {
    const h = fakeHandler(STATUS);
    server = await serveUapi(sockPath, h, logger);
    const raw = await uapiGetRaw(sockPath);
    expect(raw).toBe(formatGet(STATUS) + 'errno=0\n\n');
    const info = await uapiGet(sockPath);
    expect(info.listenPort).toBe(4242);
    expect(info.peers[0]!.endpoint).toEqual({ address: '192.0.2.1', port: 51820, family: 4 });
    expect(await uapiSet(sockPath, ['listen_port=5', `public_key=${filledHexKey(3)}`, 'allowed_ip=10.9.0.0/16'])).toBe(0);
    expect(h.changes.length).toBe(1);
    expect(h.changes[0]!.listenPort).toBe(5);
    expect(h.changes[0]!.peers[0]!.allowedIps.map(formatCidr)).toEqual(['10.9.0.0/16']);
    expect(await uapiSet(sockPath, 'listen_port=6\n')).toBe(0);
    expect(await uapiSet(sockPath, [])).toBe(0);
    expect(h.changes.map((c) => c.listenPort)).toEqual([5, 6, undefined]);
  });

  it('returns the errno of the handler and of invalid input, without applying invalid input', async () => {
    const h = fakeHandler(STATUS, EADDRINUSE);
    server = await serveUapi(sockPath, h, logger);
    expect(await uapiSet(sockPath, ['listen_port=5'])).toBe(EADDRINUSE);
    expect(h.changes.length).toBe(1);
    expect(await uapiSet(sockPath, ['listen_port=5', 'listen_port=99999'])).toBe(EINVAL);
    expect(await uapiSet(sockPath, [`public_key=${filledHexKey(1)}`, 'protocol_version=2'])).toBe(EINVAL);
    expect(await uapiSet(sockPath, ['nonsense'])).toBe(EPROTO);
    expect(h.changes.length).toBe(1);
    // negative on the wire, as wireguard-go writes it
    expect(await uapiRequest(sockPath, 'set=1\nlisten_port=x\n\n')).toBe('errno=-22\n\n');
  });

  it('handles requests split into 1-byte writes and several requests per connection', async () => {
    const h = fakeHandler(STATUS);
    server = await serveUapi(sockPath, h, logger);
    const reqs = ['get=1\n\n', `set=1\nlisten_port=7\npublic_key=${filledHexKey(5)}\nallowed_ip=fd00::/8\n\n`, 'set=1\nfwmark=x\n\n', 'get=1\n\n'];
    const want = formatGet(STATUS) + 'errno=0\n\n' + 'errno=0\n\n' + 'errno=-22\n\n' + formatGet(STATUS) + 'errno=0\n\n';
    const a = await session(reqs, { answers: 4, byteByByte: true });
    expect(a.text).toBe(want);
    const b = await session([reqs.join('')], { answers: 4 });
    expect(b.text).toBe(want);
    expect(h.changes.length).toBe(2);
    expect(h.changes[0]!.listenPort).toBe(7);
    expect(h.changes[0]!.peers[0]!.allowedIps.map(formatCidr)).toEqual(['fd00::/8']);
  });

  it('serializes async handlers and answers in order', async () => {
    const order: string[] = [];
    let n = 0;
    server = await serveUapi(
      sockPath,
      {
        get: async () => {
          await sleep(5);
          order.push('get');
          return 'listen_port=1\n';
        },
        set: async (c) => {
          const i = n++;
          await sleep(20 - i * 5);
          order.push(`set${c.listenPort}`);
          return c.listenPort === 2 ? EADDRINUSE : 0;
        },
      },
      logger,
    );
    const [a, b] = await Promise.all([
      session(['set=1\nlisten_port=1\n\nset=1\nlisten_port=2\n\nget=1\n\n'], { answers: 3 }),
      uapiSet(sockPath, 'listen_port=3'),
    ]);
    expect(a.text).toBe('errno=0\n\nerrno=-98\n\nlisten_port=1\nerrno=0\n\n');
    expect(b).toBe(0);
    expect(order.filter((o) => o !== 'set3')).toEqual(['set1', 'set2', 'get']);
  });

  it('stops reading requests while a client does not read its answers', async () => {
    let calls = 0;
    const body = 'listen_port=1\n'.repeat(5000); // ~70 KB per answer
    server = await serveUapi(
      sockPath,
      {
        get: () => {
          calls++;
          return body;
        },
        set: () => 0,
      },
      logger,
    );
    const N = 300;
    const s = createConnection(sockPath);
    s.pause();
    await new Promise<void>((r) => s.on('connect', () => r()));
    s.write('get=1\n\n'.repeat(N));
    await sleep(300);
    expect(calls).toBeGreaterThan(0);
    expect(calls).toBeLessThan(N / 2);
    const want = (body + 'errno=0\n\n').length * N;
    let got = 0;
    await new Promise<void>((resolve) => {
      s.on('data', (b: Buffer) => {
        got += b.length;
        if (got >= want) resolve();
      });
      s.resume();
    });
    s.destroy();
    expect(got).toBe(want);
    expect(calls).toBe(N);
  });

  it('applies a set ended by EOF instead of a blank line (as wireguard-go does)', async () => {
    const h = fakeHandler(STATUS);
    server = await serveUapi(sockPath, h, logger);
    const r = await session(['set=1\nlisten_port=9\nfwmark=3'], { answers: 1, endAfter: true });
    expect(r.text).toBe('errno=0\n\n');
    expect(h.changes).toEqual([{ listenPort: 9, fwmark: 3, peers: [] }]);
  });

  it('rejects unknown operations and garbage with an errno, then hangs up, and keeps serving', async () => {
    const h = fakeHandler(STATUS);
    server = await serveUapi(sockPath, h, logger);
    for (const junk of ['hello\n', 'get=2\n\n', 'GET=1\n\n', '\n', 'set=1 \n\n', '\x00\xff\xfe\n', 'get=1\nx\n']) {
      const r = await session([junk], { answers: 1, endAfter: true });
      expect(r.text, JSON.stringify(junk)).toMatch(/^errno=-(71|22)\n\n$/);
      expect(r.closedByServer).toBe(true);
    }
    expect((await session(['get=1\nx\n'], { answers: 1, endAfter: true })).text).toBe('errno=-22\n\n');
    expect((await session(['bogus\n'], { answers: 1, endAfter: true })).text).toBe('errno=-71\n\n');
    // random binary noise must not crash anything
    const noise = Buffer.alloc(5000);
    for (let i = 0; i < noise.length; i++) noise[i] = (i * 7919) & 0xff;
    await session([noise.toString('latin1')], { answers: 1, endAfter: true });
    // a connection that just closes
    await session([], { answers: 0, endAfter: true });
    expect(h.changes.length).toBe(0);
    expect((await uapiGetRaw(sockPath)).endsWith('errno=0\n\n')).toBe(true);
  });

  it('caps line length and request size', async () => {
    const h = fakeHandler(STATUS);
    server = await serveUapi(sockPath, h, logger, { maxLineBytes: 100, maxRequestBytes: 1000 });
    const long = await session(['set=1\nallowed_ip=' + '1'.repeat(200)], { answers: 1 });
    expect(long.text).toBe('errno=-71\n\n');
    const big = ['set=1\n', `public_key=${filledHexKey(1)}\n`];
    for (let i = 0; i < 100; i++) big.push(`allowed_ip=10.0.${i}.0/24\n`);
    big.push('\n');
    const r = await session([big.join('')], { answers: 1 });
    expect(r.text).toMatch(/^errno=-\d+\n\n$/);
    expect(h.changes.length).toBe(0);
    expect((await uapiGetRaw(sockPath)).endsWith('errno=0\n\n')).toBe(true);
  });

  it('round-trips 100,000 allowed IPs through the socket', async () => {
    const ips: string[] = [];
    for (let i = 0; i < 100_000; i++) ips.push(`allowed_ip=10.${i >> 16}.${(i >> 8) & 255}.${i & 255}/32`);
    let stored: DeviceChange | null = null;
    server = await serveUapi(
      sockPath,
      {
        get: () =>
          formatGet({
            privateKey: null,
            listenPort: 0,
            fwmark: 0,
            peers: stored!.peers.map((p) => ({
              publicKey: p.publicKey,
              presharedKey: null,
              endpoint: null,
              persistentKeepalive: 0,
              allowedIps: p.allowedIps,
              lastHandshakeSec: 0,
              lastHandshakeNsec: 0,
              rxBytes: 0,
              txBytes: 0,
            })),
          }),
        set: (c) => {
          stored = c;
          return 0;
        },
      },
      logger,
    );
    expect(await uapiSet(sockPath, [`public_key=${filledHexKey(8)}`, 'replace_allowed_ips=true', ...ips])).toBe(0);
    expect(stored!.peers[0]!.allowedIps.length).toBe(100_000);
    const info = await uapiGet(sockPath);
    expect(info.peers.length).toBe(1);
    const got = info.peers[0]!.allowedIps.map((c) => `allowed_ip=${formatCidr(c)}`);
    expect(got.length).toBe(100_000);
    expect(got).toEqual(ips);
  });

  it('replaces a stale socket file but refuses a live one', async () => {
    // Something that does not answer at the path (bind fails with EADDRINUSE, connect fails).
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'run'), { recursive: true });
    writeFileSync(sockPath, '');
    server = await serveUapi(sockPath, fakeHandler(STATUS), logger);
    expect(lstatSync(sockPath).isSocket()).toBe(true);
    expect((await uapiGetRaw(sockPath)).endsWith('errno=0\n\n')).toBe(true);

    // A live one: a second server on the same path must fail and leave the first intact.
    await expect(serveUapi(sockPath, fakeHandler(STATUS), logger)).rejects.toBeInstanceOf(UapiSocketInUseError);
    expect((await uapiGetRaw(sockPath)).endsWith('errno=0\n\n')).toBe(true);
  });

  it('replaces a socket left behind by a dead listener', async () => {
    const { spawnSync } = await import('node:child_process');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'run'), { recursive: true });
    // A child process binds the path and exits without unlinking: a truly stale socket.
    const r = spawnSync(process.execPath, ['-e', `const s=require('net').createServer();s.listen(${JSON.stringify(sockPath)},()=>process.exit(0))`]);
    expect(r.status).toBe(0);
    expect(lstatSync(sockPath).isSocket()).toBe(true);
    server = await serveUapi(sockPath, fakeHandler(STATUS), logger);
    expect((await uapiGetRaw(sockPath)).endsWith('errno=0\n\n')).toBe(true);
  });

  it('close() leaves a socket that is no longer ours alone', async () => {
    server = await serveUapi(sockPath, fakeHandler(STATUS), logger);
    rmSync(sockPath);
    const other = await serveUapi(sockPath, fakeHandler(STATUS), logger);
    await server.close();
    server = other;
    expect(lstatSync(sockPath).isSocket()).toBe(true);
    expect((await uapiGetRaw(sockPath)).endsWith('errno=0\n\n')).toBe(true);
  });
});
