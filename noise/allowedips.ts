/**
 * Cryptokey routing table: longest-prefix match of IPv4/IPv6 addresses to values (peers),
 * plus the IP/CIDR text codecs used by the UAPI.
 *
 * The table is a path-compressed binary trie per address family, in the spirit of the
 * kernel's allowedips.c: every node holds a prefix (key bits + length); a node either carries
 * a value or is an internal branching node with exactly two children. Lookup walks at most
 * one node per address bit and allocates nothing. Every value keeps the set of its nodes, so
 * `cidrsOf` and `removeValue` cost O(number of prefixes of that value).
 */
import type { Cidr } from './types.js';

// ---------------------------------------------------------------------------------------------
// Small byte arrays come out of shared slabs: a separate ArrayBuffer per 4- or 16-byte address
// makes 100,000-prefix configurations spend most of their time in the garbage collector.

const SLAB_SIZE = 16 * 1024;
let slab = new ArrayBuffer(SLAB_SIZE);
let slabOff = 0;

/** A zeroed Uint8Array of n (<= 16) bytes, a view into a shared slab. */
function allocBytes(n: number): Uint8Array {
  if (slabOff + n > SLAB_SIZE) {
    slab = new ArrayBuffer(SLAB_SIZE);
    slabOff = 0;
  }
  const b = new Uint8Array(slab, slabOff, n);
  slabOff += n;
  return b;
}

// ---------------------------------------------------------------------------------------------
// Text codecs

const MAX_ECHO = 80;
function echo(s: string): string {
  const t = s.length > MAX_ECHO ? `${s.slice(0, MAX_ECHO)}...` : s;
  return JSON.stringify(t);
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/**
 * Strict dotted-quad IPv4 between s[start, end): four decimal fields 0-255, no leading zeros
 * (as Go's netip and modern inet_pton do: "010" is ambiguous octal), nothing else.
 * Writes 4 bytes at out[off]. Returns false on anything invalid.
 */
function parseIPv4Into(s: string, start: number, end: number, out: Uint8Array, off: number): boolean {
  let field = 0;
  let i = start;
  while (field < 4) {
    const fieldStart = i;
    let v = 0;
    while (i < end && isDigit(s.charCodeAt(i))) {
      v = v * 10 + (s.charCodeAt(i) - 0x30);
      i++;
      if (i - fieldStart > 3) return false;
    }
    const n = i - fieldStart;
    if (n === 0 || v > 255) return false;
    if (n > 1 && s.charCodeAt(fieldStart) === 0x30) return false;
    out[off + field] = v;
    field++;
    if (field < 4) {
      if (i >= end || s.charCodeAt(i) !== 0x2e /* . */) return false;
      i++;
    }
  }
  return i === end;
}

/** RFC 4291 §2.2 text (all three forms), no zone, hex groups of 1-4 digits. */
function parseIPv6(s: string): Uint8Array | null {
  const len = s.length;
  if (len < 2 || len > 45) return null;
  const out = allocBytes(16);
  const words: number[] = [];
  let gap = -1; // index in `words` where "::" stands
  let i = 0;
  if (s.charCodeAt(0) === 0x3a /* : */) {
    if (s.charCodeAt(1) !== 0x3a) return null;
    gap = 0;
    i = 2;
  }
  let tail4 = false;
  while (i < len) {
    let j = i;
    let v = 0;
    let h: number;
    while (j < len && (h = hexVal(s.charCodeAt(j))) >= 0) {
      v = (v << 4) | h;
      j++;
    }
    if (j < len && s.charCodeAt(j) === 0x2e /* . */) {
      // Embedded IPv4 in the last 32 bits.
      if (words.length > 6) return null;
      if (!parseIPv4Into(s, i, len, out, 12)) return null;
      tail4 = true;
      i = len;
      break;
    }
    if (j === i || j - i > 4) return null;
    words.push(v);
    if (words.length > 8) return null;
    i = j;
    if (i === len) break;
    if (s.charCodeAt(i) !== 0x3a) return null;
    i++;
    if (i < len && s.charCodeAt(i) === 0x3a) {
      if (gap >= 0) return null;
      gap = words.length;
      i++;
    } else if (i === len) {
      return null; // trailing single ':'
    }
  }
  const total = words.length + (tail4 ? 2 : 0);
  if (gap >= 0) {
    if (total > 7) return null; // "::" must stand for at least one zero group
  } else if (total !== 8) {
    return null;
  }
  const headCount = gap >= 0 ? gap : words.length;
  for (let k = 0; k < headCount; k++) {
    out[2 * k] = words[k]! >>> 8;
    out[2 * k + 1] = words[k]! & 0xff;
  }
  const tailWords = words.length - headCount;
  const tailEnd = tail4 ? 6 : 8; // word index where the hex tail ends
  for (let k = 0; k < tailWords; k++) {
    const w = words[headCount + k]!;
    const pos = tailEnd - tailWords + k;
    out[2 * pos] = w >>> 8;
    out[2 * pos + 1] = w & 0xff;
  }
  return out;
}

/**
 * Parse a textual IP address: strict dotted-quad IPv4 or RFC 4291 IPv6 (including "::" and
 * "::ffff:1.2.3.4" forms). No zone identifiers, no brackets, no surrounding whitespace.
 * Returns null when `s` is not a valid address.
 */
export function parseIp(s: string): { family: 4 | 6; bytes: Uint8Array } | null {
  if (typeof s !== 'string') return null;
  if (s.indexOf(':') >= 0) {
    const b = parseIPv6(s);
    return b ? { family: 6, bytes: b } : null;
  }
  if (s.length < 7 || s.length > 15) return null;
  const b = allocBytes(4);
  return parseIPv4Into(s, 0, s.length, b, 0) ? { family: 4, bytes: b } : null;
}

/** Like parseIp, but throws an Error explaining what is wrong. */
export function parseIpStrict(s: string): { family: 4 | 6; bytes: Uint8Array } {
  const ip = parseIp(s);
  if (ip) return ip;
  if (typeof s === 'string' && s.includes('%')) {
    throw new Error(`invalid IP address ${echo(s)}: zone identifiers are not supported`);
  }
  throw new Error(`invalid IP address ${echo(s)}`);
}

/**
 * Parse "ADDRESS/PREFIX" or a bare ADDRESS (which means /32 or /128). Host bits are masked
 * off, as the kernel does ("10.0.0.1/24" is 10.0.0.0/24). Throws an Error on anything invalid.
 */
export function parseCidr(s: string): Cidr {
  if (typeof s !== 'string') throw new Error('invalid CIDR: not a string');
  const slash = s.indexOf('/');
  const addr = slash < 0 ? s : s.slice(0, slash);
  let ip: { family: 4 | 6; bytes: Uint8Array };
  try {
    ip = parseIpStrict(addr);
  } catch (e) {
    throw new Error(`invalid CIDR ${echo(s)}: ${(e as Error).message}`);
  }
  const max = ip.family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,9})$/.test(p)) {
      throw new Error(`invalid CIDR ${echo(s)}: prefix length must be a decimal number 0-${max}`);
    }
    prefix = Number(p);
    if (prefix > max) {
      throw new Error(`invalid CIDR ${echo(s)}: prefix length ${prefix} out of range 0-${max} for IPv${ip.family}`);
    }
  }
  maskBytes(ip.bytes, prefix);
  return { family: ip.family, bytes: ip.bytes, prefix };
}

/** Zero every bit of `bytes` past the first `prefix` bits, in place. */
function maskBytes(bytes: Uint8Array, prefix: number): void {
  for (let i = 0; i < bytes.length; i++) {
    const bits = prefix - 8 * i;
    if (bits >= 8) continue;
    bytes[i] = bits <= 0 ? 0 : bytes[i]! & ((0xff << (8 - bits)) & 0xff);
  }
}

/**
 * Format an IP address: dotted quad, or IPv6 as glibc's inet_ntop (what `wg` prints): RFC 5952
 * (lowercase, no leading zeros, the longest run of two or more zero groups - the first on a
 * tie - as "::"), with the IPv4 dotted tail for IPv4-mapped (::ffff:a.b.c.d) and
 * IPv4-compatible (::a.b.c.d) addresses.
 */
export function formatIp(family: 4 | 6, bytes: Uint8Array, offset = 0): string {
  if (family === 4) {
    return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
  }
  const w = [0, 0, 0, 0, 0, 0, 0, 0];
  for (let i = 0; i < 8; i++) w[i] = (bytes[offset + 2 * i]! << 8) | bytes[offset + 2 * i + 1]!;
  let bestBase = -1;
  let bestLen = 0;
  let curBase = -1;
  let curLen = 0;
  for (let i = 0; i < 8; i++) {
    if (w[i] === 0) {
      if (curBase < 0) {
        curBase = i;
        curLen = 1;
      } else {
        curLen++;
      }
    } else if (curBase >= 0) {
      if (curLen > bestLen) {
        bestBase = curBase;
        bestLen = curLen;
      }
      curBase = -1;
    }
  }
  if (curBase >= 0 && curLen > bestLen) {
    bestBase = curBase;
    bestLen = curLen;
  }
  if (bestLen < 2) bestBase = -1;
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (bestBase >= 0 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) out += ':';
      continue;
    }
    if (i > 0) out += ':';
    if (i === 6 && bestBase === 0 && (bestLen === 6 || (bestLen === 5 && w[5] === 0xffff))) {
      out += `${bytes[offset + 12]}.${bytes[offset + 13]}.${bytes[offset + 14]}.${bytes[offset + 15]}`;
      return out;
    }
    out += w[i]!.toString(16);
  }
  if (bestBase >= 0 && bestBase + bestLen === 8) out += ':';
  return out;
}

/** Canonical text of a prefix: "10.0.0.0/8", "2001:db8::/32" (IPv6 as `wg` prints it). */
export function formatCidr(c: Cidr): string {
  return `${formatIp(c.family, c.bytes)}/${c.prefix}`;
}

// ---------------------------------------------------------------------------------------------
// The trie

/** Key words are stored as signed 32-bit integers (big-endian bit order within the address). */
class Node<T> {
  k0: number;
  k1: number;
  k2: number;
  k3: number;
  readonly cidr: number;
  readonly v6: boolean;
  value: T | undefined = undefined;
  has = false;
  c0: Node<T> | null = null;
  c1: Node<T> | null = null;
  parent: Node<T> | null = null;
  constructor(k: Int32Array, cidr: number, v6: boolean) {
    this.v6 = v6;
    this.k0 = maskWord(k[0]!, cidr);
    this.k1 = maskWord(k[1]!, cidr - 32);
    this.k2 = maskWord(k[2]!, cidr - 64);
    this.k3 = maskWord(k[3]!, cidr - 96);
    this.cidr = cidr;
  }
}

/** Keep the first `bits` bits of word `w` (bits may be <= 0 or >= 32). */
function maskWord(w: number, bits: number): number {
  if (bits <= 0) return 0;
  if (bits >= 32) return w | 0;
  return w & (-1 << (32 - bits));
}

/** Do the first `bits` bits of a and k agree? (bits may be <= 0 or >= 32) */
function wordMatches(a: number, k: number, bits: number): boolean {
  if (bits <= 0) return true;
  if (bits >= 32) return a === k;
  return ((a ^ k) & (-1 << (32 - bits))) === 0;
}

function nodeWord<T>(n: Node<T>, i: number): number {
  return i === 0 ? n.k0 : i === 1 ? n.k1 : i === 2 ? n.k2 : n.k3;
}

function keyBit(k: Int32Array, i: number): number {
  return (k[i >>> 5]! >>> (31 - (i & 31))) & 1;
}

function nodeBit<T>(n: Node<T>, i: number): number {
  return (nodeWord(n, i >>> 5) >>> (31 - (i & 31))) & 1;
}

/** Length of the common prefix of node's key and k, at most `limit` bits. */
function commonBits<T>(n: Node<T>, k: Int32Array, limit: number): number {
  for (let i = 0; 32 * i < limit; i++) {
    const x = nodeWord(n, i) ^ k[i]!;
    if (x !== 0) return Math.min(limit, 32 * i + Math.clz32(x));
  }
  return limit;
}

function readWord(buf: Uint8Array, o: number): number {
  return (buf[o]! << 24) | (buf[o + 1]! << 16) | (buf[o + 2]! << 8) | buf[o + 3]!;
}

/**
 * Longest-prefix-match table from IP prefixes to values. A prefix belongs to exactly one
 * value; inserting it again reassigns it. Values are compared by identity (Map semantics).
 */
export class AllowedIps<T> {
  private root4: Node<T> | null = null;
  private root6: Node<T> | null = null;
  private readonly byValue = new Map<T, Set<Node<T>>>();
  private count = 0;
  private readonly scratch = new Int32Array(4);

  /** Number of prefixes in the table. */
  get size(): number {
    return this.count;
  }

  /** Assign `cidr` to `value` (moving it from any previous owner). Host bits are ignored. */
  insert(cidr: Cidr, value: T): void {
    const k = this.loadKey(cidr);
    const c = cidr.prefix;
    let parent: Node<T> | null = null;
    let dir = 0;
    let node = cidr.family === 4 ? this.root4 : this.root6;
    for (;;) {
      if (node === null) {
        const nn = new Node<T>(k, c, cidr.family === 6);
        this.link(cidr.family, parent, dir, nn);
        this.assign(nn, value);
        return;
      }
      const nc = node.cidr;
      const common = commonBits(node, k, nc < c ? nc : c);
      if (common === nc) {
        if (nc === c) {
          this.assign(node, value);
          return;
        }
        parent = node;
        dir = keyBit(k, nc);
        node = dir ? node.c1 : node.c0;
        continue;
      }
      // The new prefix leaves node's path before node's own length.
      const nn = new Node<T>(k, c, cidr.family === 6);
      if (common === c) {
        // New prefix is a strict ancestor of node.
        this.setChild(nn, nodeBit(node, c), node);
        this.link(cidr.family, parent, dir, nn);
      } else {
        // They diverge at bit `common`: a branching node holds both.
        const inner = new Node<T>(k, common, cidr.family === 6);
        const b = keyBit(k, common);
        this.setChild(inner, b, nn);
        this.setChild(inner, b ^ 1, node);
        this.link(cidr.family, parent, dir, inner);
      }
      this.assign(nn, value);
      return;
    }
  }

  /** Remove exactly this prefix (host bits ignored). Returns whether it was present. */
  remove(cidr: Cidr): boolean {
    const n = this.find(cidr);
    if (n === null || !n.has) return false;
    const set = this.byValue.get(n.value as T);
    if (set) {
      set.delete(n);
      if (set.size === 0) this.byValue.delete(n.value as T);
    }
    this.clearNode(n);
    return true;
  }

  /** Remove every prefix of `value`. */
  removeValue(value: T): void {
    const set = this.byValue.get(value);
    if (!set) return;
    this.byValue.delete(value);
    for (const n of set) this.clearNode(n);
  }

  /** Remove everything. */
  clear(): void {
    this.root4 = this.root6 = null;
    this.byValue.clear();
    this.count = 0;
  }

  /** The prefixes of `value`, in the order they were (last) assigned to it. */
  cidrsOf(value: T): Cidr[] {
    const set = this.byValue.get(value);
    if (!set) return [];
    const out: Cidr[] = new Array(set.size);
    let i = 0;
    for (const n of set) {
      const v6 = n.v6;
      let bytes: Uint8Array;
      if (v6) {
        bytes = allocBytes(16);
        writeWord(bytes, 0, n.k0);
        writeWord(bytes, 4, n.k1);
        writeWord(bytes, 8, n.k2);
        writeWord(bytes, 12, n.k3);
      } else {
        bytes = allocBytes(4);
        writeWord(bytes, 0, n.k0);
      }
      out[i++] = { family: v6 ? 6 : 4, bytes, prefix: n.cidr };
    }
    return out;
  }

  /**
   * Longest-prefix match for the address at buf[offset .. offset + 4 or 16). Allocation-free.
   */
  lookup(family: 4 | 6, buf: Uint8Array, offset: number): T | undefined {
    let best: T | undefined = undefined;
    if (family === 4) {
      const a = readWord(buf, offset);
      let node = this.root4;
      while (node !== null) {
        const c = node.cidr;
        if (c !== 0 && ((a ^ node.k0) & (-1 << (32 - c))) !== 0) break;
        if (node.has) best = node.value;
        if (c === 32) break;
        node = (a >>> (31 - c)) & 1 ? node.c1 : node.c0;
      }
      return best;
    }
    const a0 = readWord(buf, offset);
    const a1 = readWord(buf, offset + 4);
    const a2 = readWord(buf, offset + 8);
    const a3 = readWord(buf, offset + 12);
    let node = this.root6;
    while (node !== null) {
      const c = node.cidr;
      if (
        !wordMatches(a0, node.k0, c) ||
        !wordMatches(a1, node.k1, c - 32) ||
        !wordMatches(a2, node.k2, c - 64) ||
        !wordMatches(a3, node.k3, c - 96)
      ) {
        break;
      }
      if (node.has) best = node.value;
      if (c === 128) break;
      const wi = c >>> 5;
      const aw = wi === 0 ? a0 : wi === 1 ? a1 : wi === 2 ? a2 : a3;
      node = (aw >>> (31 - (c & 31))) & 1 ? node.c1 : node.c0;
    }
    return best;
  }

  // --- internals ---

  private loadKey(cidr: Cidr): Int32Array {
    const fam = cidr.family;
    const n = fam === 4 ? 4 : fam === 6 ? 16 : -1;
    if (n < 0) throw new Error(`invalid CIDR: unknown family ${String(fam)}`);
    const b = cidr.bytes;
    if (!(b instanceof Uint8Array) || b.length !== n) {
      throw new Error(`invalid CIDR: IPv${fam} needs ${n} address bytes`);
    }
    const p = cidr.prefix;
    if (!Number.isInteger(p) || p < 0 || p > 8 * n) {
      throw new Error(`invalid CIDR: prefix length ${String(p)} out of range 0-${8 * n}`);
    }
    const k = this.scratch;
    k.fill(0);
    for (let i = 0; i < n / 4; i++) k[i] = readWord(b, 4 * i);
    return k;
  }

  private find(cidr: Cidr): Node<T> | null {
    const k = this.loadKey(cidr);
    const c = cidr.prefix;
    let node = cidr.family === 4 ? this.root4 : this.root6;
    while (node !== null && node.cidr <= c) {
      if (commonBits(node, k, node.cidr) !== node.cidr) return null;
      if (node.cidr === c) return node;
      node = keyBit(k, node.cidr) ? node.c1 : node.c0;
    }
    return null;
  }

  private setChild(parent: Node<T>, dir: number, child: Node<T>): void {
    if (dir) parent.c1 = child;
    else parent.c0 = child;
    child.parent = parent;
  }

  private link(family: 4 | 6, parent: Node<T> | null, dir: number, n: Node<T>): void {
    if (parent === null) {
      n.parent = null;
      if (family === 4) this.root4 = n;
      else this.root6 = n;
    } else {
      this.setChild(parent, dir, n);
    }
  }

  private assign(n: Node<T>, value: T): void {
    if (n.has) {
      const old = this.byValue.get(n.value as T);
      if (old) {
        old.delete(n);
        if (old.size === 0 && n.value !== value) this.byValue.delete(n.value as T);
      }
    } else {
      this.count++;
    }
    n.has = true;
    n.value = value;
    let set = this.byValue.get(value);
    if (!set) {
      set = new Set();
      this.byValue.set(value, set);
    }
    set.add(n);
  }

  /** Drop n's value (already detached from byValue) and splice out nodes that became useless. */
  private clearNode(n: Node<T>): void {
    n.has = false;
    n.value = undefined;
    this.count--;
    let node: Node<T> | null = n;
    while (node !== null && !node.has && (node.c0 === null || node.c1 === null)) {
      const child: Node<T> | null = node.c0 ?? node.c1;
      const parent: Node<T> | null = node.parent;
      if (parent === null) {
        if (this.root4 === node) this.root4 = child;
        else if (this.root6 === node) this.root6 = child;
      } else if (parent.c0 === node) {
        parent.c0 = child;
      } else {
        parent.c1 = child;
      }
      if (child !== null) child.parent = parent;
      node.parent = node.c0 = node.c1 = null;
      node = parent;
    }
  }
}

function writeWord(b: Uint8Array, o: number, w: number): void {
  b[o] = w >>> 24;
  b[o + 1] = (w >>> 16) & 0xff;
  b[o + 2] = (w >>> 8) & 0xff;
  b[o + 3] = w & 0xff;
}
