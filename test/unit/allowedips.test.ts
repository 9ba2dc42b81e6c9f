import { isIPv4, isIPv6 } from 'node:net';
import { describe, expect, it } from 'vitest';
import { AllowedIps } from '../../noise/allowedips.js';
import { formatCidr, formatIp, parseCidr, parseIp } from '../../noise/iptext.js';
import type { Cidr } from '../../noise/types.js';
import { xorshift32 } from '../helpers/prng.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('parseIp', () => {
  it('parses IPv4 dotted quads', () => {
    expect(parseIp('0.0.0.0')).toEqual({ family: 4, bytes: Uint8Array.of(0, 0, 0, 0) });
    expect(parseIp('255.255.255.255')).toEqual({ family: 4, bytes: Uint8Array.of(255, 255, 255, 255) });
    expect(parseIp('192.0.2.1')).toEqual({ family: 4, bytes: Uint8Array.of(192, 0, 2, 1) });
    expect(parseIp('192.0.2.255')).toEqual({ family: 4, bytes: Uint8Array.of(192, 0, 2, 255) });
  });

  it('rejects invalid IPv4', () => {
    for (const s of [
      '',
      '1',
      '1.2.3',
      '1.2.3.4.5',
      '256.0.0.1',
      '1.2.3.-4',
      '01.2.3.4',
      '1.2.3.04',
      '1.2.3.00',
      '1..2.3',
      '.1.2.3',
      '1.2.3.',
      ' 1.2.3.4',
      '1.2.3.4 ',
      '0x1.2.3.4',
      '1.2.3.4/8',
      '1.2.3.4\n',
      '1.2.3.1000',
      '१.2.3.4',
      '1.2.3.4a',
      '1.2.3.256',
      'x',
    ]) {
      expect(parseIp(s), s).toBeNull();
    }
  });

  it('parses IPv6 in all textual forms', () => {
    const cases: [string, string][] = [
      ['::', '00000000000000000000000000000000'],
      ['::1', '00000000000000000000000000000001'],
      ['1::', '00010000000000000000000000000000'],
      ['2001:db8::1', '20010db8000000000000000000000001'],
      ['2001:DB8:0:0:8:800:200C:417A', '20010db80000000000080800200c417a'],
      ['ff01::101', 'ff010000000000000000000000000101'],
      ['::ffff:1.2.3.4', '00000000000000000000ffff01020304'],
      ['::1.2.3.4', '00000000000000000000000001020304'],
      ['64:ff9b::192.0.2.33', '0064ff9b0000000000000000c0000221'],
      ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008'],
      ['1:2:3:4:5:6:1.2.3.4', '00010002000300040005000601020304'],
      ['1::8', '00010000000000000000000000000008'],
      ['1:2:3:4:5:6:7::', '00010002000300040005000600070000'],
      ['::2:3:4:5:6:7:8', '00000002000300040005000600070008'],
      ['0001:0002::000f', '0001000200000000000000000000000f'],
      ['fe80::1:2', 'fe800000000000000000000000010002'],
    ];
    for (const [s, h] of cases) {
      const ip = parseIp(s);
      expect(ip?.family, s).toBe(6);
      expect(hex(ip!.bytes), s).toBe(h);
    }
  });

  it('rejects invalid IPv6', () => {
    for (const s of [
      ':',
      ':::',
      '1:2:3:4:5:6:7:8:9',
      '1:2:3:4:5:6:7',
      '1::2::3',
      '12345::',
      'g::',
      ':1::',
      '1::2:',
      '1:2:3:4:5:6:7:8::',
      '::1:2:3:4:5:6:7:8',
      '1:2:3:4:5:6:7::8',
      'fe80::1%eth0',
      'fe80::1%1',
      '[::1]',
      '::1.2.3',
      '::1.2.3.4:5',
      '1.2.3.4::',
      '::ffff:01.2.3.4',
      '1:2:3:4:5:6:7:1.2.3.4',
      ' ::1',
      '::1 ',
      ':1',
      '1:',
      '1:::2',
      '::-1',
    ]) {
      expect(parseIp(s), s).toBeNull();
    }
  });

  it('agrees with node:net on validity for a corpus of strings', () => {
    const corpus = [
      '1.2.3.4',
      '1.2.3.04',
      '::',
      '::1',
      '1::',
      '::ffff:1.2.3.4',
      '1:2:3:4:5:6:7:8',
      '1:2:3:4:5:6:7:8:9',
      '1::2::3',
      '::ffff:256.1.1.1',
      '2001:db8::',
      '2001:db8:::',
      'abcd:ef01:2345:6789:abcd:ef01:2345:6789',
      '1:2:3:4:5:6::7',
      '::1.2.3.4',
      '255.255.255.255',
      '255.255.255.256',
      '0.0.0.0',
    ];
    for (const s of corpus) {
      const ours = parseIp(s);
      const theirs = isIPv4(s) ? 4 : isIPv6(s) ? 6 : null;
      expect(ours?.family ?? null, s).toBe(theirs);
    }
  });
});

describe('formatIp / formatCidr (glibc inet_ntop / RFC 5952)', () => {
  const cases: [string, string][] = [
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of equal runs
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // longest run wins
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // single zero group is not compressed
    ['2001:DB8::ABCD', '2001:db8::abcd'],
    ['::ffff:1.2.3.4', '::ffff:1.2.3.4'],
    ['::ffff:0:0', '::ffff:0.0.0.0'],
    ['::1.2.3.4', '::1.2.3.4'],
    ['::0.0.0.5', '::5'],
    ['64:ff9b::1.2.3.4', '64:ff9b::102:304'],
    ['1:0:0:0:0:0:0:0', '1::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['fe80::0001', 'fe80::1'],
    ['fe80::', 'fe80::'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
    ['0:1:0:1:0:1:0:1', '0:1:0:1:0:1:0:1'],
  ];
  for (const [inp, want] of cases) {
    it(`${inp} -> ${want}`, () => {
      const ip = parseIp(inp)!;
      expect(formatIp(6, ip.bytes)).toBe(want);
      // and the output parses back to the same bytes
      expect(hex(parseIp(want)!.bytes)).toBe(hex(ip.bytes));
    });
  }

  it('formats IPv4 and CIDRs', () => {
    expect(formatIp(4, Uint8Array.of(10, 0, 0, 255))).toBe('10.0.0.255');
    expect(formatCidr(parseCidr('10.1.2.3/8'))).toBe('10.0.0.0/8');
    expect(formatCidr(parseCidr('2001:db8:ffff::1/32'))).toBe('2001:db8::/32');
    expect(formatCidr(parseCidr('::/0'))).toBe('::/0');
    expect(formatCidr(parseCidr('0.0.0.0/0'))).toBe('0.0.0.0/0');
    expect(formatCidr(parseCidr('1.2.3.4/0'))).toBe('0.0.0.0/0');
  });

  it('round-trips random IPv6 addresses with zero runs', () => {
    const r = xorshift32(7);
    for (let n = 0; n < 2000; n++) {
      const b = new Uint8Array(16);
      for (let i = 0; i < 8; i++) {
        if (r() % 3 !== 0) continue; // mostly zero groups, so runs are common
        const w = r() & 0xffff;
        b[2 * i] = w >>> 8;
        b[2 * i + 1] = w & 0xff;
      }
      const s = formatIp(6, b);
      expect(isIPv6(s), s).toBe(true);
      expect(hex(parseIp(s)!.bytes), s).toBe(hex(b));
      expect(s).toBe(s.toLowerCase());
      expect(s.split('::').length).toBeLessThanOrEqual(2);
    }
  });
});

describe('parseCidr', () => {
  it('masks host bits and defaults to a host prefix', () => {
    expect(parseCidr('10.0.0.1/24')).toEqual({ family: 4, bytes: Uint8Array.of(10, 0, 0, 0), prefix: 24 });
    expect(parseCidr('10.0.0.1')).toEqual({ family: 4, bytes: Uint8Array.of(10, 0, 0, 1), prefix: 32 });
    expect(parseCidr('10.255.255.255/9')).toEqual({ family: 4, bytes: Uint8Array.of(10, 128, 0, 0), prefix: 9 });
    const c = parseCidr('2001:db8::ffff/120');
    expect(c.family).toBe(6);
    expect(c.prefix).toBe(120);
    expect(formatCidr(c)).toBe('2001:db8::ff00/120');
    expect(parseCidr('::1').prefix).toBe(128);
    expect(formatCidr(parseCidr('::ffff:10.1.2.3/104'))).toBe('::ffff:10.0.0.0/104');
    expect(parseCidr('::/0')).toEqual({ family: 6, bytes: new Uint8Array(16), prefix: 0 });
    expect(parseCidr('1.2.3.4/32').prefix).toBe(32);
    expect(parseCidr('::/128').prefix).toBe(128);
  });

  it('rejects invalid input with a clear message', () => {
    const bad: [string, RegExp][] = [
      ['10.0.0.0/33', /out of range 0-32/],
      ['::/129', /out of range 0-128/],
      ['10.0.0.0/-1', /prefix length/],
      ['10.0.0.0/', /prefix length/],
      ['10.0.0.0/08', /prefix length/],
      ['10.0.0.0/8/8', /prefix length/],
      ['10.0.0.0/ 8', /prefix length/],
      ['10.0.0.0/1000', /out of range/],
      ['10.0.0.0/+8', /prefix length/],
      ['010.0.0.0/8', /invalid IP address/],
      ['fe80::1%eth0/64', /zone/],
      ['junk', /invalid IP address/],
      ['', /invalid IP address/],
      ['/8', /invalid IP address/],
      ['1.2.3.4.5/8', /invalid IP address/],
      ['[::1]/128', /invalid IP address/],
    ];
    for (const [s, re] of bad) {
      expect(() => parseCidr(s), s).toThrow(re);
    }
  });
});

// ---------------------------------------------------------------------------------------------

/** The obvious reference: a list scanned linearly for the longest matching prefix. */
class NaiveLpm<T> {
  entries: { c: Cidr; v: T }[] = [];
  private key(c: Cidr) {
    return `${c.family}/${hex(c.bytes)}/${c.prefix}`;
  }
  insert(c: Cidr, v: T) {
    const k = this.key(c);
    const i = this.entries.findIndex((e) => this.key(e.c) === k);
    if (i >= 0) this.entries.splice(i, 1);
    this.entries.push({ c, v });
  }
  remove(c: Cidr): boolean {
    const k = this.key(c);
    const i = this.entries.findIndex((e) => this.key(e.c) === k);
    if (i < 0) return false;
    this.entries.splice(i, 1);
    return true;
  }
  removeValue(v: T) {
    this.entries = this.entries.filter((e) => e.v !== v);
  }
  lookup(family: 4 | 6, addr: Uint8Array): T | undefined {
    let best: { c: Cidr; v: T } | undefined;
    for (const e of this.entries) {
      if (e.c.family !== family) continue;
      if (!prefixMatches(e.c, addr)) continue;
      if (!best || e.c.prefix > best.c.prefix) best = e;
    }
    return best?.v;
  }
  cidrsOf(v: T): string[] {
    return this.entries.filter((e) => e.v === v).map((e) => formatCidr(e.c));
  }
}

function prefixMatches(c: Cidr, addr: Uint8Array): boolean {
  for (let i = 0; i < c.prefix; i++) {
    const bit = (b: Uint8Array) => (b[i >> 3]! >> (7 - (i & 7))) & 1;
    if (bit(c.bytes) !== bit(addr)) return false;
  }
  return true;
}

function randomCidr(r: () => number, family: 4 | 6, base?: Uint8Array): Cidr {
  const n = family === 4 ? 4 : 16;
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i++) bytes[i] = r() & 0xff;
  // Cluster addresses so that prefixes nest and collide often.
  if (base) bytes.set(base.subarray(0, Math.min(n, 1 + (r() % 3))));
  const prefix = r() % (8 * n + 1);
  const s = formatIp(family, bytes) + '/' + prefix;
  return parseCidr(s);
}

function randomAddr(r: () => number, family: 4 | 6, pool: Cidr[]): Uint8Array {
  const n = family === 4 ? 4 : 16;
  const a = new Uint8Array(n);
  for (let i = 0; i < n; i++) a[i] = r() & 0xff;
  // Often pick an address inside some existing prefix (near its boundaries too).
  const candidates = pool.filter((c) => c.family === family);
  if (candidates.length && r() % 4 !== 0) {
    const c = candidates[r() % candidates.length]!;
    for (let i = 0; i < c.prefix; i++) {
      const bit = (c.bytes[i >> 3]! >> (7 - (i & 7))) & 1;
      if (bit) a[i >> 3]! |= 1 << (7 - (i & 7));
      else a[i >> 3]! &= ~(1 << (7 - (i & 7)));
    }
  }
  return a;
}

describe('AllowedIps', () => {
  it('does longest-prefix match for IPv4 and IPv6', () => {
    const t = new AllowedIps<string>();
    t.insert(parseCidr('0.0.0.0/0'), 'default');
    t.insert(parseCidr('10.0.0.0/8'), 'a');
    t.insert(parseCidr('10.1.0.0/16'), 'b');
    t.insert(parseCidr('10.1.2.3/32'), 'c');
    t.insert(parseCidr('2001:db8::/32'), 'v6a');
    t.insert(parseCidr('2001:db8:1::/48'), 'v6b');
    const l4 = (s: string) => t.lookup(4, parseIp(s)!.bytes, 0);
    const l6 = (s: string) => t.lookup(6, parseIp(s)!.bytes, 0);
    expect(l4('10.1.2.3')).toBe('c');
    expect(l4('10.1.2.4')).toBe('b');
    expect(l4('10.2.0.0')).toBe('a');
    expect(l4('11.0.0.0')).toBe('default');
    expect(l6('2001:db8:1::5')).toBe('v6b');
    expect(l6('2001:db8:2::5')).toBe('v6a');
    expect(l6('2001:db9::')).toBeUndefined();
    expect(t.size).toBe(6);
    // offsets into a larger buffer (as in a packet header)
    const pkt = new Uint8Array(40);
    pkt.set(parseIp('10.1.9.9')!.bytes, 16);
    expect(t.lookup(4, pkt, 16)).toBe('b');
    pkt.set(parseIp('2001:db8:1::1')!.bytes, 24);
    expect(t.lookup(6, pkt, 24)).toBe('v6b');
  });

  it('keeps families apart (0.0.0.0/0 does not match IPv6)', () => {
    const t = new AllowedIps<number>();
    t.insert(parseCidr('0.0.0.0/0'), 4);
    expect(t.lookup(6, new Uint8Array(16), 0)).toBeUndefined();
    t.insert(parseCidr('::/0'), 6);
    expect(t.lookup(6, new Uint8Array(16), 0)).toBe(6);
    expect(t.lookup(4, new Uint8Array(4), 0)).toBe(4);
    expect(t.cidrsOf(4).map(formatCidr)).toEqual(['0.0.0.0/0']);
    expect(t.cidrsOf(6).map(formatCidr)).toEqual(['::/0']);
  });

  it('reassigns a prefix to a new owner; a more specific prefix takes its range over', () => {
    const t = new AllowedIps<string>();
    t.insert(parseCidr('192.168.0.0/16'), 'A');
    t.insert(parseCidr('192.168.4.0/24'), 'B');
    expect(t.lookup(4, parseIp('192.168.4.7')!.bytes, 0)).toBe('B');
    expect(t.lookup(4, parseIp('192.168.5.7')!.bytes, 0)).toBe('A');
    t.insert(parseCidr('192.168.0.0/16'), 'B'); // moves from A to B
    expect(t.cidrsOf('A')).toEqual([]);
    expect(t.cidrsOf('B').map(formatCidr)).toEqual(['192.168.4.0/24', '192.168.0.0/16']);
    expect(t.size).toBe(2);
    // host bits are ignored: this is the same prefix
    t.insert(parseCidr('192.168.99.99/16'), 'A');
    expect(t.cidrsOf('A').map(formatCidr)).toEqual(['192.168.0.0/16']);
    expect(t.cidrsOf('B').map(formatCidr)).toEqual(['192.168.4.0/24']);
    expect(t.size).toBe(2);
    // re-inserting for the same owner moves it to the end (as the kernel's list_move_tail)
    t.insert(parseCidr('10.0.0.0/8'), 'B');
    t.insert(parseCidr('192.168.4.0/24'), 'B');
    expect(t.cidrsOf('B').map(formatCidr)).toEqual(['10.0.0.0/8', '192.168.4.0/24']);
  });

  it('removes prefixes and values, compacting the trie', () => {
    const t = new AllowedIps<string>();
    t.insert(parseCidr('10.0.0.0/8'), 'a');
    t.insert(parseCidr('10.128.0.0/9'), 'b');
    t.insert(parseCidr('10.0.0.0/9'), 'c');
    t.insert(parseCidr('fd00::/8'), 'a');
    expect(t.remove(parseCidr('10.0.0.0/16'))).toBe(false);
    expect(t.remove(parseCidr('10.0.0.0/8'))).toBe(true);
    expect(t.remove(parseCidr('10.0.0.0/8'))).toBe(false);
    expect(t.lookup(4, parseIp('10.200.0.1')!.bytes, 0)).toBe('b');
    expect(t.lookup(4, parseIp('10.1.0.1')!.bytes, 0)).toBe('c');
    expect(t.cidrsOf('a').map(formatCidr)).toEqual(['fd00::/8']);
    t.removeValue('b');
    expect(t.lookup(4, parseIp('10.200.0.1')!.bytes, 0)).toBeUndefined();
    expect(t.lookup(4, parseIp('10.1.0.1')!.bytes, 0)).toBe('c');
    t.removeValue('c');
    t.removeValue('nobody');
    t.removeValue('a');
    expect(t.size).toBe(0);
    expect(t.lookup(6, parseIp('fd00::1')!.bytes, 0)).toBeUndefined();
    // internal branching nodes are gone too: insert/remove cycles leave no residue
    t.insert(parseCidr('0.0.0.0/0'), 'z');
    expect(t.lookup(4, parseIp('10.1.0.1')!.bytes, 0)).toBe('z');
  });

  it('rejects malformed Cidr objects', () => {
    const t = new AllowedIps<number>();
    expect(() => t.insert({ family: 4, bytes: new Uint8Array(16), prefix: 8 }, 1)).toThrow();
    expect(() => t.insert({ family: 6, bytes: new Uint8Array(16), prefix: 129 }, 1)).toThrow();
    expect(() => t.insert({ family: 4, bytes: new Uint8Array(4), prefix: -1 }, 1)).toThrow();
    expect(() => t.insert({ family: 5 as 4, bytes: new Uint8Array(4), prefix: 1 }, 1)).toThrow();
  });

  for (const family of [4, 6] as const) {
    it(`matches a naive linear LPM under random inserts/removals (IPv${family})`, () => {
      const r = xorshift32(family * 1000 + 1);
      const values = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5'];
      for (let round = 0; round < 6; round++) {
        const t = new AllowedIps<string>();
        const ref = new NaiveLpm<string>();
        const pool: Cidr[] = [];
        const base = new Uint8Array(16);
        for (let i = 0; i < 16; i++) base[i] = r() & 0xff;
        for (let step = 0; step < 400; step++) {
          const op = r() % 10;
          if (op < 6 || pool.length === 0) {
            const c = randomCidr(r, family, r() % 2 ? base : undefined);
            const v = values[r() % values.length]!;
            t.insert(c, v);
            ref.insert(c, v);
            pool.push(c);
          } else if (op < 8) {
            const c = pool[r() % pool.length]!;
            expect(t.remove(c)).toBe(ref.remove(c));
          } else if (op < 9) {
            // remove a prefix that may not be present (random, nested in the pool)
            const c = randomCidr(r, family, base);
            expect(t.remove(c)).toBe(ref.remove(c));
          } else {
            const v = values[r() % values.length]!;
            t.removeValue(v);
            ref.removeValue(v);
          }
          expect(t.size).toBe(ref.entries.length);
          for (let q = 0; q < 8; q++) {
            const a = randomAddr(r, family, pool);
            expect(t.lookup(family, a, 0)).toBe(ref.lookup(family, a));
          }
        }
        for (const v of values) expect(t.cidrsOf(v).map(formatCidr)).toEqual(ref.cidrsOf(v));
      }
    });
  }

  it('handles 100,000 prefixes for one peer (insert, lookup, cidrsOf, removeValue)', () => {
    const t = new AllowedIps<object>();
    const peerA = {};
    const peerB = {};
    const N = 100_000;
    const cidrs: Cidr[] = [];
    for (let i = 0; i < N; i++) {
      // 10.x.y.z/32 for half, 2001:db8::i/128 for the other half
      if (i % 2 === 0) {
        cidrs.push({ family: 4, bytes: Uint8Array.of(10, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff), prefix: 32 });
      } else {
        const b = new Uint8Array(16);
        b.set([0x20, 0x01, 0x0d, 0xb8]);
        b[12] = (i >>> 24) & 0xff;
        b[13] = (i >>> 16) & 0xff;
        b[14] = (i >>> 8) & 0xff;
        b[15] = i & 0xff;
        cidrs.push({ family: 6, bytes: b, prefix: 128 });
      }
    }
    for (const c of cidrs) t.insert(c, peerA);
    t.insert(parseCidr('0.0.0.0/0'), peerB);
    expect(t.size).toBe(N + 1);
    const got = t.cidrsOf(peerA);
    expect(got.length).toBe(N);
    expect(formatCidr(got[0]!)).toBe('10.0.0.0/32');
    expect(formatCidr(got[1]!)).toBe('2001:db8::1/128');
    expect(formatCidr(got[N - 1]!)).toBe(formatCidr(cidrs[N - 1]!));
    for (let i = 0; i < N; i += 997) {
      expect(t.lookup(cidrs[i]!.family, cidrs[i]!.bytes, 0)).toBe(peerA);
    }
    expect(t.lookup(4, Uint8Array.of(11, 0, 0, 1), 0)).toBe(peerB);
    t.removeValue(peerA);
    expect(t.size).toBe(1);
    expect(t.cidrsOf(peerA)).toEqual([]);
    expect(t.lookup(4, cidrs[0]!.bytes, 0)).toBe(peerB);
    expect(t.lookup(6, cidrs[1]!.bytes, 0)).toBeUndefined();
  });
});
