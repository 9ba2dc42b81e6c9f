/**
 * Minimal IP header inspection for the data path (no allocation): the family and the offsets
 * of the addresses used by cryptokey routing, and the checks the kernel applies to decrypted
 * packets before handing them to the TUN device.
 */

/** Offsets of the source and destination addresses. */
export const IPV4_SRC = 12;
export const IPV4_DST = 16;
export const IPV6_SRC = 8;
export const IPV6_DST = 24;
export const IPV4_HEADER_MIN = 20;
export const IPV6_HEADER = 40;

/** 4 or 6 when `buf[0..n)` starts like an IPv4/IPv6 header long enough to route on, else 0. */
export function ipFamily(buf: Uint8Array, n: number = buf.length): 0 | 4 | 6 {
  if (n < 1) return 0;
  const v = buf[0]! >>> 4;
  if (v === 4) return n >= IPV4_HEADER_MIN ? 4 : 0;
  if (v === 6) return n >= IPV6_HEADER ? 6 : 0;
  return 0;
}

/**
 * The length an inner packet claims (IPv4 total length; IPv6 40 + payload length) when it is
 * well formed within `n` bytes (IPv4: version 4, IHL >= 5, IHL*4 <= total length <= n; IPv6:
 * version 6, 40 + payload <= n), else -1. The caller trims the packet to this length.
 */
export function innerPacketLength(buf: Uint8Array, n: number): number {
  const fam = ipFamily(buf, n);
  if (fam === 4) {
    const ihl = (buf[0]! & 0x0f) * 4;
    const total = (buf[2]! << 8) | buf[3]!;
    if (ihl < IPV4_HEADER_MIN || total < ihl || total > n) return -1;
    return total;
  }
  if (fam === 6) {
    const total = IPV6_HEADER + ((buf[4]! << 8) | buf[5]!);
    return total > n ? -1 : total;
  }
  return -1;
}
