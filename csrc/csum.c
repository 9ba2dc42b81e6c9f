/*
 * The Internet checksum (RFC 1071) for segmentation and coalescing. The sum is taken over
 * native 64-bit loads with an end-around carry and folded at the end; the ones' complement
 * sum is independent of byte order up to a final swap, so a little-endian host swaps once
 * instead of per word.
 */
#include "offload.h"

#include <string.h>

static inline uint32_t fold32(uint64_t s) {
  s = (s & 0xffffffffu) + (s >> 32);
  s = (s & 0xffffffffu) + (s >> 32);
  uint32_t t = (uint32_t)s;
  t = (t & 0xffff) + (t >> 16);
  t = (t & 0xffff) + (t >> 16);
  return t;
}

/* Native-order sum of p[0..n), folded to 16 bits (a little-endian host gets it byte-swapped). */
static uint32_t sum_native(const uint8_t *p, size_t n) {
  uint64_t acc = 0, w;
  while (n >= 32) {
    uint64_t a, b, c, d;
    memcpy(&a, p, 8);
    memcpy(&b, p + 8, 8);
    memcpy(&c, p + 16, 8);
    memcpy(&d, p + 24, 8);
    acc += a;
    acc += (acc < a);
    acc += b;
    acc += (acc < b);
    acc += c;
    acc += (acc < c);
    acc += d;
    acc += (acc < d);
    p += 32;
    n -= 32;
  }
  while (n >= 8) {
    memcpy(&w, p, 8);
    acc += w;
    acc += (acc < w);
    p += 8;
    n -= 8;
  }
  /* The tail, zero-padded to 8 bytes: the padding adds nothing. */
  if (n) {
    w = 0;
    memcpy(&w, p, n);
    acc += w;
    acc += (acc < w);
  }
  return fold32(acc);
}

uint32_t wgts_csum_add(uint32_t sum, const uint8_t *p, size_t n) {
  uint32_t s = sum_native(p, n);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  s = ((s & 0xff) << 8) | (s >> 8);
#endif
  s += sum;
  s = (s & 0xffff) + (s >> 16);
  return (s & 0xffff) + (s >> 16);
}

uint16_t wgts_csum_fold(uint32_t sum) {
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)sum;
}

uint32_t wgts_csum_pseudo(const uint8_t *src, const uint8_t *dst, size_t alen, uint8_t proto,
                          uint32_t l4len) {
  uint32_t s = wgts_csum_add(0, src, alen);
  s = wgts_csum_add(s, dst, alen);
  s += proto;
  s += l4len >> 16;
  s += l4len & 0xffff;
  return wgts_csum_fold(s);
}

uint16_t wgts_ipv4_hdr_csum(const uint8_t *hdr, size_t ihl) {
  uint32_t s = wgts_csum_add(0, hdr, 10);
  s = wgts_csum_add(s, hdr + 12, ihl - 12);
  return (uint16_t)~wgts_csum_fold(s);
}

int wgts_l4_csum_valid(const uint8_t *pkt, size_t len, size_t l4off, uint8_t proto) {
  int v6 = (pkt[0] >> 4) == 6;
  const uint8_t *src = pkt + (v6 ? 8 : 12);
  size_t alen = v6 ? 16 : 4;
  size_t l4len = len - l4off;
  if (proto == 17 && !v6 && pkt[l4off + 6] == 0 && pkt[l4off + 7] == 0) return 1; /* no checksum */
  uint32_t s = wgts_csum_pseudo(src, src + alen, alen, proto, (uint32_t)l4len);
  s = wgts_csum_add(s, pkt + l4off, l4len);
  return wgts_csum_fold(s) == 0xffff;
}
