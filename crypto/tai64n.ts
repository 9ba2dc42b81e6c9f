/**
 * TAI64N timestamps (12 bytes, big endian: the TAI64 label 2^62 + 10 + Unix seconds, then
 * nanoseconds), as WireGuard puts in handshake initiations. The 10 is TAI - UTC in 1970
 * (cr.yp.to/libtai/tai64.html); the kernel and wireguard-go add it too. Like the kernel,
 * nanoseconds are rounded down to a power of two near 1/50 s so the timestamp does not leak a
 * precise clock.
 */
export const TAI64N_LEN = 12;
const TAI_BASE = 0x400000000000000an;
const NSEC_GRANULARITY = 16777216; // rounddown_pow_of_two(1e9 / 50)

/** Encode a wall-clock time given in milliseconds since the Unix epoch (fractional allowed). */
export function tai64n(wallMs: number): Uint8Array {
  const out = new Uint8Array(TAI64N_LEN);
  const secs = Math.floor(wallMs / 1000);
  let nsec = Math.floor((wallMs - secs * 1000) * 1e6);
  nsec -= nsec % NSEC_GRANULARITY;
  const v = new DataView(out.buffer);
  v.setBigUint64(0, TAI_BASE + BigInt(secs), false);
  v.setUint32(8, nsec, false);
  return out;
}

/** Compare two TAI64N timestamps as big-endian byte strings: <0, 0, >0. */
export function compareTai64n(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < TAI64N_LEN; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return 0;
}
