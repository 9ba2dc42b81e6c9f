/**
 * Small byte arrays (IPv4/IPv6 addresses) cut from shared slabs: a separate ArrayBuffer per 4-
 * or 16-byte address makes 100,000-prefix configurations spend most of their time in the
 * garbage collector. A slab lives as long as any view into it.
 */
const SLAB_SIZE = 16 * 1024;
let slab = new ArrayBuffer(SLAB_SIZE);
let slabOff = 0;

/** A zeroed Uint8Array of n (<= 16) bytes, a view into a shared slab. */
export function allocBytes(n: number): Uint8Array {
  if (slabOff + n > SLAB_SIZE) {
    slab = new ArrayBuffer(SLAB_SIZE);
    slabOff = 0;
  }
  const b = new Uint8Array(slab, slabOff, n);
  slabOff += n;
  return b;
}
