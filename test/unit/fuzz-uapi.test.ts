/**
 * Fuzz: the UAPI set parser and server with random texts and mutations of `wg setconf`-style
 * ones (the lines `wg` writes, formatSet's order), up to 100,000 lines. The parser never
 * throws and answers a change or one short errno line that leaks no key; a change survives
 * formatSet/parseSet; through the socket, split at random, a set either applies exactly what
 * parseSet says or changes nothing at all; nothing hangs, and what the server holds stays
 * within its budget and returns to zero.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeHexKey } from '../../crypto/keys.js';
import { Device } from '../../noise/device.js';
import { formatCidr } from '../../noise/iptext.js';
import type { Cidr, DeviceChange, Endpoint, PeerChange } from '../../noise/types.js';
import { EINVAL, ENOBUFS, EPROTO, formatErrno, formatGet, formatSet, type ParseSetResult, parseSet } from '../../src/uapi/protocol.js';
import { serveUapi, type UapiServer } from '../../src/uapi/server.js';
import { xorshift32 } from '../helpers/prng.js';
import { talk } from '../helpers/uapi-session.js';

/** Seeded choices (xorshift32): every run sees the same cases (FUZZ_SEED picks others). */
function prng(seed: number) {
  const next = xorshift32(seed);
  const int = (n: number) => next() % n;
  return {
    int,
    chance: (p: number) => next() / 0x1_0000_0000 < p,
    pick: <T>(a: readonly T[]): T => a[int(a.length)]!,
    key: () => {
      const k = new Uint8Array(32);
      for (let i = 0; i < 32; i++) k[i] = next() & 0xff;
      return k;
    },
    chars: (n: number) => {
      let s = '';
      for (let i = 0; i < n; i++) s += String.fromCharCode(next() & 0xff);
      return s;
    },
  };
}
type Rng = ReturnType<typeof prng>;

const SEED = Number(process.env.FUZZ_SEED ?? 20_241_212);

function randomCidr(r: Rng): Cidr {
  if (r.chance(0.7)) {
    const prefix = r.chance(0.5) ? 32 : r.int(33);
    const bytes = Uint8Array.of(10, r.int(256), r.int(256), r.int(256));
    return { family: 4, bytes, prefix };
  }
  const bytes = new Uint8Array(16);
  bytes[0] = 0xfd;
  for (let i = 1; i < 16; i++) bytes[i] = r.int(256);
  return { family: 6, bytes, prefix: r.chance(0.5) ? 128 : r.int(129) };
}

function randomEndpoint(r: Rng): Endpoint {
  switch (r.int(3)) {
    case 0:
      return { address: `192.0.2.${r.int(256)}`, port: r.int(65536), family: 4 };
    case 1:
      return { address: `2001:db8::${r.int(0xffff).toString(16)}`, port: r.int(65536), family: 6 };
    default:
      return { address: `fe80::${(1 + r.int(0xfffe)).toString(16)}`, port: 1 + r.int(65535), family: 6, ifindex: 1 + r.int(50) };
  }
}

/** A random configuration change, as `wg setconf`/`wg set` would send it. */
function randomChange(r: Rng, peers: number, ipsPerPeer: number, removals = true): DeviceChange {
  const c: DeviceChange = { peers: [] };
  if (r.chance(0.8)) c.privateKey = r.key();
  if (r.chance(0.6)) c.listenPort = r.int(65536);
  if (r.chance(0.2)) c.fwmark = r.int(0x1_0000_0000);
  if (r.chance(0.3)) c.replacePeers = true;
  for (let i = 0; i < peers; i++) {
    const p: PeerChange = { publicKey: r.key(), allowedIps: [] };
    if (removals && r.chance(0.05)) p.remove = true;
    else {
      if (r.chance(0.1)) p.updateOnly = true;
      if (r.chance(0.3)) p.presharedKey = r.key();
      if (r.chance(0.7)) p.endpoint = randomEndpoint(r);
      if (r.chance(0.3)) p.persistentKeepalive = r.int(65536);
      if (r.chance(0.5)) p.replaceAllowedIps = true;
      for (let j = 0; j < ipsPerPeer; j++) p.allowedIps.push(randomCidr(r));
    }
    c.peers.push(p);
  }
  return c;
}

const KEYS = [
  'private_key',
  'listen_port',
  'fwmark',
  'replace_peers',
  'public_key',
  'preshared_key',
  'endpoint',
  'persistent_keepalive_interval',
  'replace_allowed_ips',
  'allowed_ip',
  'remove',
  'update_only',
  'protocol_version',
] as const;
const NASTY = [
  '',
  ' ',
  '-1',
  '0',
  '1',
  'true',
  'false',
  'true ',
  '65536',
  '4294967296',
  '99999999999999999999999999',
  '1e3',
  '0x10',
  '%',
  '[',
  ']:1',
  '[::1]',
  '[::1]:',
  '1.2.3.4:',
  '1.2.3.4:65535',
  '[fe80::1%eth0]:1',
  '[fe80::1%0]:1',
  '10.0.0.0/33',
  '::/129',
  '10.0.0.1/08',
  '0'.repeat(64),
  'f'.repeat(64),
  'g'.repeat(64),
  'f'.repeat(63),
  '\x00',
  '\xff\xfe',
  '=',
  '==',
  'a=b',
];

/** A mutation of a list of lines; `expect` when its outcome is known whatever the lines were. */
type Mutation = (lines: string[], r: Rng) => { lines: string[]; expect?: 'ok' | typeof EINVAL | typeof EPROTO; keeps?: boolean };

const MUTATIONS: Array<[string, Mutation]> = [
  [
    'flip a byte',
    (l, r) => {
      if (!l.length) return { lines: l };
      const i = r.int(l.length);
      const s = l[i]!;
      const at = r.int(s.length + 1);
      l[i] = s.slice(0, at) + String.fromCharCode(r.int(256)) + s.slice(at + 1);
      return { lines: l };
    },
  ],
  [
    'drop a line',
    (l, r) => {
      if (l.length) l.splice(r.int(l.length), 1);
      return { lines: l };
    },
  ],
  [
    'duplicate a line in place',
    (l, r) => {
      if (!l.length) return { lines: l, expect: 'ok' };
      const i = r.int(l.length);
      l.splice(i, 0, l[i]!);
      return { lines: l, expect: 'ok', keeps: true }; // the lines before the first bad one stay valid
    },
  ],
  [
    'swap two lines',
    (l, r) => {
      if (l.length < 2) return { lines: l };
      const i = r.int(l.length);
      const j = r.int(l.length);
      [l[i], l[j]] = [l[j]!, l[i]!];
      return { lines: l };
    },
  ],
  [
    'insert an unknown key',
    (l, r) => {
      l.splice(r.int(l.length + 1), 0, `${r.pick(['bogus', 'Public_Key', 'jc', 'h1'])}=1`);
      return { lines: l, expect: EINVAL };
    },
  ],
  [
    "remove a line's '='",
    (l, r) => {
      if (!l.length) return { lines: ['nothing'], expect: EPROTO };
      const i = r.int(l.length);
      l[i] = l[i]!.replace('=', '');
      return { lines: l, expect: EPROTO };
    },
  ],
  ['keep a prefix', (l, r) => ({ lines: l.slice(0, r.int(l.length + 1)), expect: 'ok' })],
  [
    'replace a value',
    (l, r) => {
      if (!l.length) return { lines: l };
      const i = r.int(l.length);
      const eq = l[i]!.indexOf('=');
      l[i] = `${l[i]!.slice(0, eq + 1)}${r.pick(NASTY)}`;
      return { lines: l };
    },
  ],
  ['CR LF line ends', (l) => (l.length ? { lines: l.map((s) => `${s}\r`), expect: EINVAL } : { lines: l, expect: 'ok' })],
  [
    'a long line',
    (l, r) => {
      l.splice(r.int(l.length + 1), 0, `allowed_ip=${'1'.repeat(10_000 + r.int(5000))}`);
      return { lines: l, expect: EINVAL };
    },
  ],
  [
    'random lines',
    (l, r) => {
      l.splice(r.int(l.length + 1), 0, ...Array.from({ length: 1 + r.int(5) }, () => `${r.pick(KEYS)}=${r.pick(NASTY)}`));
      return { lines: l };
    },
  ],
  [
    'random bytes',
    (l, r) => {
      l.splice(r.int(l.length + 1), 0, ...r.chars(1 + r.int(300)).split('\n'));
      return { lines: l };
    },
  ],
];

/** One case: lines (no blank ones: a blank line would end the set) and what must come of them. */
interface Case {
  name: string;
  lines: string[];
  expect?: 'ok' | number;
}

function makeCase(r: Rng, big = false): Case {
  const change = big ? randomChange(r, 3, 34_000, false) : randomChange(r, r.int(6), r.int(8));
  let lines = formatSet(change);
  if (big) expect(lines.length).toBeGreaterThan(100_000);
  let name = big ? `${lines.length}-line setconf` : 'setconf';
  let outcome: Case['expect'] = 'ok';
  if (!big && r.chance(0.1)) {
    lines = Array.from({ length: r.int(20) }, () => (r.chance(0.5) ? `${r.pick(KEYS)}=${r.pick(NASTY)}` : r.chars(r.int(80))));
    name = 'random';
    outcome = undefined;
  } else {
    for (let n = big ? 1 : r.int(3); n > 0; n--) {
      const [what, m] = r.pick(MUTATIONS);
      const out = m(lines, r);
      lines = out.lines;
      name += ` / ${what}`;
      // After several mutations the outcome is known when each was known on valid lines, or
      // when a mutation keeps whatever outcome the lines had.
      if (out.keeps) continue;
      outcome = outcome === 'ok' ? out.expect : undefined;
    }
  }
  lines = lines
    .join('\n')
    .split('\n')
    .filter((s) => s !== '');
  return { name, lines, ...(outcome !== undefined ? { expect: outcome } : {}) };
}

/** Every 16-hex-digit piece of the keys in `lines` (what no message may contain). */
function secretPieces(lines: readonly string[]): string[] {
  const out: string[] = [];
  for (const l of lines) {
    const m = /^(?:private_key|preshared_key)=([0-9a-f]{64})$/.exec(l);
    if (m) for (let i = 0; i + 16 <= 64; i += 8) out.push(m[1]!.slice(i, i + 16));
  }
  return out;
}

/**
 * `change` without the zones of endpoints that need none: a zone on an address that is not
 * link-local means nothing (the kernel uses sin6_scope_id only for addresses that need one)
 * and is not shown (`wg` shows a zone only for link-local addresses, and so does formatSet).
 */
function withoutIdleZones(change: DeviceChange): DeviceChange {
  for (const p of change.peers) {
    const e = p.endpoint;
    if (e?.ifindex !== undefined && !/^fe[89ab][0-9a-f]:/.test(e.address)) p.endpoint = { address: e.address, port: e.port, family: e.family };
  }
  return change;
}

function checkResult(c: Case, res: ParseSetResult): void {
  const label = `${c.name} (seed ${SEED})`;
  if ('errno' in res) {
    expect([EINVAL, EPROTO], label).toContain(res.errno);
    expect(res.message, label).not.toMatch(/\n/);
    expect(res.message.length, label).toBeLessThan(300);
    for (const s of secretPieces(c.lines)) expect(res.message, label).not.toContain(s);
    if (c.expect !== undefined) expect(res.errno, label).toBe(c.expect);
  } else {
    if (c.expect !== undefined) expect(c.expect, label).toBe('ok');
    const again = parseSet(formatSet(res.change));
    expect(again, label).toEqual({ change: withoutIdleZones(res.change) });
  }
}

describe('fuzzing the UAPI set parser', () => {
  it('answers 20,000 random and mutated texts with a change or one errno, never throwing', () => {
    const r = prng(SEED);
    const seen = { ok: 0, EINVAL: 0, EPROTO: 0 };
    for (let i = 0; i < 20_000; i++) {
      const c = makeCase(r);
      let res: ParseSetResult;
      try {
        res = parseSet(c.lines);
      } catch (e) {
        throw new Error(`parseSet threw on case ${i} (${c.name}, seed ${SEED}): ${(e as Error).stack}`);
      }
      checkResult(c, res);
      if ('change' in res) seen.ok++;
      else seen[res.errno === EINVAL ? 'EINVAL' : 'EPROTO']++;
    }
    // The generator reaches every outcome often enough to mean something.
    for (const v of Object.values(seen)) expect(v).toBeGreaterThan(1000);
  });

  it('parses 100,000-line texts, mutated, and gives the same as the text before the first bad line', () => {
    const r = prng(SEED + 1);
    for (let i = 0; i < 6; i++) {
      const c = makeCase(r, true);
      const res = parseSet(c.lines);
      checkResult(c, res);
    }
    // A big valid text with one bad line at the very end: nothing, as with the bad line first.
    const good = formatSet(randomChange(r, 2, 50_000, false));
    expect(good.length).toBeGreaterThan(100_000);
    expect('change' in parseSet(good)).toBe(true);
    expect(parseSet([...good, 'allowed_ip=10.0.0.0/33'])).toMatchObject({ errno: EINVAL });
  });
});

describe('fuzzing the UAPI server', () => {
  let dir: string;
  let server: UapiServer;
  let small: UapiServer;
  const device = new Device({ sinks: { sendDatagram() {}, writePacket() {} } });
  const budget = 1 << 20;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wgts-fuzz-uapi-'));
    const handler = {
      get: () => formatGet(device.status()),
      set: (c: DeviceChange) => {
        device.apply(c);
        return 0;
      },
    };
    server = await serveUapi(join(dir, 'a.sock'), handler);
    small = await serveUapi(join(dir, 'b.sock'), handler, undefined, { maxBufferedBytes: budget });
  });
  afterAll(async () => {
    await server.close();
    await small.close();
    device.close();
    twin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Send one set, split at random, then (unless `get` is false) a get on the same connection; returns the answers. */
  async function exchange(r: Rng, path: string, lines: readonly string[], get = true): Promise<{ set: string; after: string | null }> {
    const bytes = Buffer.from(`set=1\n${lines.length ? `${lines.join('\n')}\n` : ''}\n${get ? 'get=1\n\n' : ''}`, 'latin1');
    const maxPiece = bytes.length > 100_000 ? 65_536 : 1 + r.int(64);
    let off = 0;
    const t = await talk(
      path,
      [
        () => {
          if (off >= bytes.length) return null;
          const n = 1 + r.int(maxPiece);
          const piece = bytes.subarray(off, off + n);
          off += n;
          return piece;
        },
      ],
      { answers: get ? 2 : 1 },
    );
    expect(t.how).not.toBe('timeout');
    const end = t.text.indexOf('\n\n');
    if (end < 0) return { set: t.text, after: null };
    return { set: t.text.slice(0, end + 2), after: t.how === 'answers' ? t.text.slice(end + 2) : null };
  }

  /** A twin of the device that gets parseSet's change whenever a set should succeed. */
  const twin = new Device({ sinks: { sendDatagram() {}, writePacket() {} } });
  const predict = (change: DeviceChange | null): string => {
    if (change) twin.apply(change);
    return formatGet(twin.status());
  };

  it('applies exactly what parseSet says, or nothing, for 400 sets split into random pieces', async () => {
    const r = prng(SEED + 2);
    for (let i = 0; i < 400; i++) {
      const c = makeCase(r);
      const label = `case ${i}: ${c.name} (seed ${SEED})`;
      const parsed = parseSet(c.lines);
      const tooLong = c.lines.some((l) => l.length > 8192);
      const want = tooLong ? null : 'change' in parsed ? parsed.change : null;
      const before = formatGet(device.status());
      expect(before, label).toBe(formatGet(twin.status()));
      const expected = predict(want);
      const { set, after } = await exchange(r, server.path, c.lines);
      const now = formatGet(device.status());
      if (tooLong) {
        expect(set, label).toBe(formatErrno(EPROTO));
        expect(now, label).toBe(before);
      } else if ('errno' in parsed) {
        expect(set, label).toBe(formatErrno(parsed.errno));
        expect(now, label).toBe(before); // all or nothing
        expect(after, label).toBe(`${before}${formatErrno(0)}`);
      } else {
        expect(set, label).toBe(formatErrno(0));
        expect(now, label).toBe(expected);
        expect(after, label).toBe(`${now}${formatErrno(0)}`);
      }
      expect(server.stats().bufferedBytes, label).toBe(0);
    }
    expect(server.stats().peakBufferedBytes).toBeLessThanOrEqual(64 * 1024 * 1024);
  });

  it('keeps 100,000-line sets within a 1 MiB budget: ENOBUFS and nothing, or applied whole', async () => {
    const r = prng(SEED + 3);
    let refused = 0;
    for (let i = 0; i < 4; i++) {
      const c = makeCase(r, true);
      const parsed = parseSet(c.lines);
      const before = formatGet(device.status());
      // Without a get: an answer waiting to be read counts against the budget but is never refused.
      const { set } = await exchange(r, small.path, c.lines, false);
      const now = formatGet(device.status());
      if (set === formatErrno(ENOBUFS)) {
        refused++;
        expect(now).toBe(before);
      } else if (c.lines.some((l) => l.length > 8192)) {
        expect(set).toBe(formatErrno(EPROTO));
        expect(now).toBe(before);
      } else if ('errno' in parsed) {
        expect(set).toBe(formatErrno(parsed.errno));
        expect(now).toBe(before);
      } else {
        expect(set).toBe(formatErrno(0));
        expect(now).toBe(predict(parsed.change));
      }
      for (let w = 0; w < 300 && small.stats().connections > 0; w++) await new Promise((res) => setTimeout(res, 10));
      expect(small.stats()).toMatchObject({ connections: 0, bufferedBytes: 0 });
    }
    // An unmutated one never fits: 102,000 allowed IPs at 24 bytes are more than 1 MiB.
    const before = formatGet(device.status());
    expect((await exchange(r, small.path, formatSet(randomChange(r, 3, 34_000, false)), false)).set).toBe(formatErrno(ENOBUFS));
    expect(formatGet(device.status())).toBe(before);
    refused++;
    expect(small.stats().peakBufferedBytes).toBeLessThanOrEqual(budget);
    expect(refused).toBeGreaterThan(0);
    // And one 60,000-line set that fits (30,000 allowed IPs at 24 bytes).
    const fits = [`public_key=${encodeHexKey(new Uint8Array(32).fill(7))}`];
    for (let i = 0; i < 30_000; i++) fits.push(`allowed_ip=10.${i >> 16}.${(i >> 8) & 255}.${i & 255}/32`, 'persistent_keepalive_interval=25');
    const { set } = await exchange(r, small.path, fits);
    expect(set).toBe(formatErrno(0));
    const peer = device.status().peers.find((p) => p.publicKey[0] === 7 && p.publicKey[31] === 7);
    expect(peer?.allowedIps.length).toBe(30_000);
    expect(formatCidr(peer!.allowedIps[0]!)).toBe('10.0.0.0/32');
  });
});
