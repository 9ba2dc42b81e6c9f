/**
 * The control socket primitives (tun/control.ts over csrc/ctl.c and the notify-mode poller):
 * round trips with descriptors, peer credentials, malformed control data, watchers, and the
 * TypeScript client against the fake service. No root needed; every name is unique.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlConnection, ControlListener, request, type WatchEvent } from '../../tun/control.js';
import { encodeDone, encodeRequest, encodeWait, MAX_MESSAGE } from '../../tun/control-protocol.js';
import { Errno } from '../../tun/errno.js';
import { uniqueName } from '../helpers/client-build.js';
import { type Echo, FakeService } from '../helpers/fake-service.js';

const open: Array<{ close(): void }> = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
});

function keep<T extends { close(): void }>(o: T): T {
  open.push(o);
  return o;
}

function pair(): { listener: ControlListener; client: ControlConnection; server: ControlConnection } {
  const name = uniqueName('sock');
  const listener = keep(ControlListener.listen(name));
  const client = keep(ControlConnection.connect(name));
  const server = listener.accept();
  if (!server) throw new Error('no pending connection');
  keep(server);
  return { listener, client, server };
}

const PYTHON = ['/usr/bin/python3', '/bin/python3'].find((p) => existsSync(p));
/** Connects to abstract name argv[1] and sends one byte with argv[2] descriptors of /dev/null. */
const SEND_FDS = `
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect("\\0" + sys.argv[1])
fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(int(sys.argv[2]))]
socket.send_fds(s, [b"x"], fds)
`;

const fdCount = (): number => readdirSync('/proc/self/fd').length;
const text = (b: Uint8Array): string => new TextDecoder().decode(b);
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const nextTick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('control socket', () => {
  it('binds an abstract name once: a second listener gets EADDRINUSE', () => {
    const name = uniqueName('bind');
    keep(ControlListener.listen(name));
    expect(() => ControlListener.listen(name)).toThrow(expect.objectContaining({ code: 'EADDRINUSE' }));
  });

  it('connecting to a name nobody holds is ECONNREFUSED; accept without a client is null', () => {
    expect(() => ControlConnection.connect(uniqueName('none'))).toThrow(expect.objectContaining({ code: 'ECONNREFUSED' }));
    const l = keep(ControlListener.listen(uniqueName('empty')));
    expect(l.accept()).toBeNull();
  });

  it('reports the peer credentials on both sides (SO_PEERCRED, SO_PEERGROUPS)', () => {
    const { client, server } = pair();
    const me = { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() };
    expect(server.peer).toMatchObject(me);
    expect(client.peer).toMatchObject(me);
    const supplementary = process.getgroups!().filter((g) => g !== me.gid);
    for (const g of supplementary) expect(server.peer.groups).toContain(g);
  });

  it('carries one packet per send and one descriptor with it (CLOEXEC, same file)', () => {
    const { client, server } = pair();
    const nsFd = openSync('/proc/self/ns/net', 'r');
    try {
      const msg = encodeRequest({ ns: { kind: 'fd' }, args: ['cwg_create', '1', '2', '0', '51820'] });
      expect(client.send(msg, nsFd)).toBe(msg.length);
      expect(client.send(bytes('second'))).toBe(6);
      const buf = new Uint8Array(MAX_MESSAGE);
      const p = server.receive(buf);
      expect(p).toMatchObject({ length: msg.length, truncated: false, fdsRefused: false });
      expect(p!.fd).toBeGreaterThanOrEqual(0);
      expect(buf.subarray(0, p!.length)).toEqual(msg);
      const got = fstatSync(p!.fd);
      const want = statSync('/proc/self/ns/net');
      expect([got.dev, got.ino]).toEqual([want.dev, want.ino]);
      expect(cloexec(p!.fd)).toBe(true);
      closeSync(p!.fd);
      const q = server.receive(buf);
      expect(q).toMatchObject({ length: 6, fd: -1 });
      expect(text(buf.subarray(0, 6))).toBe('second');
      expect(server.receive(buf)).toBeNull();
    } finally {
      closeSync(nsFd);
    }
  });

  it.skipIf(!PYTHON)('refuses (and closes) descriptors beyond one, and those the kernel had to drop (MSG_CTRUNC)', async () => {
    for (const count of [2, 40]) {
      const name = uniqueName('fds');
      const l = keep(ControlListener.listen(name));
      const before = fdCount();
      // Several descriptors in one SCM_RIGHTS message: the addon sends at most one, python3 more.
      const sender = spawnSync(PYTHON!, ['-c', SEND_FDS, name, String(count)], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
      expect(sender.stderr).toBe('');
      const server = keep(l.accept()!);
      const p = server.receive(new Uint8Array(64));
      expect(p).toMatchObject({ length: 1, fd: -1, fdsRefused: true });
      server.close();
      expect(fdCount()).toBe(before);
    }
  });

  it('reports a packet longer than the buffer as truncated', () => {
    const { client, server } = pair();
    expect(client.send(new Uint8Array(100).fill(7))).toBe(100);
    const p = server.receive(new Uint8Array(10));
    expect(p).toMatchObject({ length: 10, truncated: true });
  });

  it('send never blocks: -EAGAIN once the peer queue is full, -EPIPE or -ECONNRESET once the peer is gone', () => {
    const { client, server } = pair();
    const big = new Uint8Array(MAX_MESSAGE);
    let r = 0;
    for (let i = 0; i < 10_000 && r >= 0; i++) r = client.send(big);
    expect(r).toBe(-Errno.EAGAIN);
    server.close();
    expect([-Errno.EPIPE, -Errno.ECONNRESET]).toContain(client.send(big)); // ECONNRESET: it left our packets unread
  });

  it('reads end of connection as length 0, also when the peer closed with our packets unread', () => {
    const { client, server } = pair();
    server.send(bytes('answer'));
    client.send(bytes('unread by the server')); // the server closes without reading it
    server.close();
    const buf = new Uint8Array(64);
    const p = client.receive(buf);
    expect(p).toMatchObject({ length: 6 }); // the kernel's ECONNRESET does not hide the answer
    expect(text(buf.subarray(0, 6))).toBe('answer');
    expect(client.receive(buf)).toMatchObject({ length: 0, fd: -1 });
  });

  it('watches without reading: readable, then readable + disconnected when the peer goes', async () => {
    const { client, server } = pair();
    const events: WatchEvent[] = [];
    const buf = new Uint8Array(64);
    const done = new Promise<void>((resolve) => {
      server.watch((ev) => {
        events.push(ev);
        for (;;) {
          const p = server.receive(buf);
          if (p === null) break;
          if (p.length === 0) {
            server.unwatch();
            resolve();
            return;
          }
        }
      });
    });
    client.send(bytes('x'));
    await nextTick();
    await nextTick();
    client.close();
    await done;
    expect(events[0]).toEqual({ readable: true, disconnected: false, errno: 0 });
    expect(events.at(-1)).toMatchObject({ readable: true, disconnected: true });
  });

  it('the listener watcher fires for pending connections; stop/close are idempotent', async () => {
    const name = uniqueName('watch');
    const l = keep(ControlListener.listen(name));
    const peers: ControlConnection[] = [];
    const got = new Promise<void>((resolve) => {
      l.watch(() => {
        for (;;) {
          const c = l.accept();
          if (!c) break;
          peers.push(keep(c));
        }
        if (peers.length === 3) resolve();
      });
    });
    for (let i = 0; i < 3; i++) keep(ControlConnection.connect(name));
    await got;
    expect(peers).toHaveLength(3);
    l.unwatch();
    l.unwatch();
    l.close();
    l.close();
    expect(l.closed).toBe(true);
    expect(() => l.accept()).toThrow(/closed/);
  });

  it('leaks no descriptor over many connections', async () => {
    const name = uniqueName('leak');
    const svc = keep(new FakeService(name, { kind: 'answer' }));
    const before = fdCount();
    for (let i = 0; i < 200; i++) await request(['x'], { name, serverUid: process.getuid!() });
    await nextTick();
    expect(fdCount()).toBe(before);
    expect(svc.seen).toHaveLength(200);
  });
});

describe('TypeScript client against the fake service', () => {
  const uid = process.getuid!();

  it('sends the request with its descriptor and returns the answer after heartbeats', async () => {
    const name = uniqueName('req');
    const svc = keep(new FakeService(name, { kind: 'answer', heartbeats: 3, heartbeatMs: 20, code: 0 }));
    const nsFd = openSync('/proc/self/ns/net', 'r');
    try {
      const r = await request(['cwg_create', String(process.pid), '', 'a b'], { name, passFd: nsFd, serverUid: uid });
      const echo = JSON.parse(r.stdout) as Echo;
      expect(echo).toEqual({ ns: 'fd', args: ['cwg_create', String(process.pid), '', 'a b'], nsIno: statSync('/proc/self/ns/net').ino });
      expect(r.code).toBe(0);
      expect(svc.seen[0]!.peer.pid).toBe(process.pid);
    } finally {
      closeSync(nsFd);
    }
  });

  it('gives up after the silence limit, and on a hang-up, a malformed answer, a wrong server uid', async () => {
    const silent = uniqueName('silent');
    keep(new FakeService(silent, { kind: 'silent' }));
    const t0 = Date.now();
    await expect(request(['show'], { name: silent, serverUid: uid, silenceMs: 300 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    const closer = uniqueName('close');
    keep(new FakeService(closer, { kind: 'close' }));
    await expect(request(['show'], { name: closer, serverUid: uid })).rejects.toMatchObject({ code: 'ECONNRESET' });
    const bad = uniqueName('bad');
    keep(new FakeService(bad, { kind: 'malformed' }));
    await expect(request(['show'], { name: bad, serverUid: uid })).rejects.toMatchObject({ code: 'EPROTO' });
    const other = uniqueName('uid');
    const svc = keep(new FakeService(other, { kind: 'answer' }));
    await expect(request(['show'], { name: other, serverUid: uid + 1 })).rejects.toMatchObject({ code: 'EPERM' });
    await nextTick();
    expect(svc.seen).toHaveLength(0);
  });

  it('heartbeats keep a slow request alive past the silence limit', async () => {
    const name = uniqueName('slow');
    keep(new FakeService(name, { kind: 'answer', heartbeats: 6, heartbeatMs: 100, stdout: 'ok\n' }));
    const r = await request(['cwg_create'], { name, serverUid: uid, silenceMs: 250 });
    expect(r.stdout).toBe('ok\n');
  });

  it('the codec round-trips what the fake service sends', () => {
    expect(text(encodeWait())).toBe('WGTS1\0wait');
    expect(text(encodeDone(3, 'out', 'err\n'))).toBe('WGTS1\0done\x003\0out\0err\n');
  });
});

/** FD_CLOEXEC, as /proc/self/fdinfo shows it (O_CLOEXEC, 02000000 in "flags:"). */
function cloexec(fd: number): boolean {
  const m = /^flags:\s*([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  return m !== null && (Number.parseInt(m[1]!, 8) & 0o2000000) !== 0;
}
