/**
 * Cryptokey routing table: longest-prefix match of IPv4/IPv6 addresses to values (peers).
 *
 * The table is a path-compressed binary trie per address family, in the spirit of the
 * kernel's allowedips.c: every node holds a prefix (key bits + length); a node either carries
 * a value or is an internal branching node with exactly two children. Lookup walks at most
 * one node per address bit and allocates nothing. Every value keeps the set of its nodes, so
 * `cidrsOf` and `removeValue` cost O(number of prefixes of that value).
 */
import { allocBytes } from './slab.js';
import type { Cidr } from './types.js';

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
      const common = commonBits(node, k, Math.min(nc, c));
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
    let best: T | undefined;
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
      if (!wordMatches(a0, node.k0, c) || !wordMatches(a1, node.k1, c - 32) || !wordMatches(a2, node.k2, c - 64) || !wordMatches(a3, node.k3, c - 96)) {
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
