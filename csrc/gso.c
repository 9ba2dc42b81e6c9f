/*
 * Segmentation of what a TUN opened with IFF_VNET_HDR and TUNSETOFFLOAD hands over: TCP
 * super-packets (TSO4/TSO6) and UDP ones (USO, Linux 6.2), each described by a virtio_net_hdr
 * whose checksum the kernel left partial. The segments come out as the kernel's own software
 * segmentation (tcp_gso_segment, __udp_gso_segment, inet_gso_segment) makes them, which the
 * system test checks against the kernel itself. The header is not trusted: everything is
 * checked against the packet, and hdr_len is recomputed from the L4 header (the kernel may set
 * it to the whole first packet on a forwarding path).
 */
#include "offload.h"

#include <string.h>

void wgts_vnet_hdr_read(const uint8_t *p, struct wgts_vnet_hdr *h) {
  h->flags = p[0];
  h->gso_type = p[1];
  memcpy(&h->hdr_len, p + 2, 2);
  memcpy(&h->gso_size, p + 4, 2);
  memcpy(&h->csum_start, p + 6, 2);
  memcpy(&h->csum_offset, p + 8, 2);
}

void wgts_vnet_hdr_write(uint8_t *p, const struct wgts_vnet_hdr *h) {
  p[0] = h->flags;
  p[1] = h->gso_type;
  memcpy(p + 2, &h->hdr_len, 2);
  memcpy(p + 4, &h->gso_size, 2);
  memcpy(p + 6, &h->csum_start, 2);
  memcpy(p + 8, &h->csum_offset, 2);
}

/* IPv6: whether the extension headers from 40 lead to `proto` exactly at `l4off`. Only
 * hop-by-hop, routing and destination options may stand between (a fragment header cannot
 * be in a super-packet). */
static int ipv6_l4_at(const uint8_t *pkt, size_t len, size_t l4off, uint8_t proto) {
  uint8_t next = pkt[6];
  size_t off = 40;
  while (off < l4off) {
    if ((next != 0 && next != 43 && next != 60) || off + 8 > len) return 0;
    next = pkt[off];
    off += ((size_t)pkt[off + 1] + 1) * 8;
  }
  return off == l4off && next == proto;
}

/* The checksum of a packet the kernel left partial (GSO_NONE with NEEDS_CSUM): the field
 * holds the pseudo-header sum; sum from csum_start to the end and store the complement. */
static int complete_csum(uint8_t *pkt, size_t len, const struct wgts_vnet_hdr *h) {
  size_t start = h->csum_start, at = (size_t)h->csum_start + h->csum_offset;
  if (start >= len || h->csum_offset > len || at + 2 > len) return WGTS_GSO_EBADHDR;
  uint16_t c = (uint16_t)~wgts_csum_fold(wgts_csum_add(0, pkt + start, len - start));
  /* UDP: a computed 0 goes on the wire as 0xffff (0 means "no checksum" in IPv4). */
  if (c == 0 && h->csum_offset == 6) c = 0xffff;
  put16(pkt + at, c);
  return 0;
}

int wgts_gso_split(uint8_t *pkt, size_t len, const struct wgts_vnet_hdr *h, uint8_t *out,
                   size_t cap, int32_t out_base, int32_t *meta, size_t maxsegs, size_t *need) {
  *need = 0;
  if (len < 20) return h->gso_type == WGTS_VNET_GSO_NONE && !(h->flags & WGTS_VNET_F_NEEDS_CSUM) ? 0 : WGTS_GSO_EBADHDR;
  uint8_t type = h->gso_type & (uint8_t)~WGTS_VNET_GSO_ECN;
  if (type == WGTS_VNET_GSO_NONE) {
    if (h->gso_type & WGTS_VNET_GSO_ECN) return WGTS_GSO_EBADHDR;
    return (h->flags & WGTS_VNET_F_NEEDS_CSUM) ? complete_csum(pkt, len, h) : 0;
  }
  if (!(h->flags & WGTS_VNET_F_NEEDS_CSUM) || h->gso_size == 0) return WGTS_GSO_EBADHDR;
  int v = pkt[0] >> 4;
  uint8_t proto;
  if (type == WGTS_VNET_GSO_TCPV4 && v == 4) proto = 6;
  else if (type == WGTS_VNET_GSO_TCPV6 && v == 6) proto = 6;
  else if (type == WGTS_VNET_GSO_UDP_L4 && (v == 4 || v == 6)) proto = 17;
  else return WGTS_GSO_EBADHDR;
  if (proto == 17 && (h->gso_type & WGTS_VNET_GSO_ECN)) return WGTS_GSO_EBADHDR;
  size_t l4 = h->csum_start;
  if (h->csum_offset != (proto == 6 ? 16 : 6)) return WGTS_GSO_EBADHDR;
  if (v == 4) {
    size_t ihl = (size_t)(pkt[0] & 15) * 4;
    if (ihl < 20 || l4 != ihl || pkt[9] != proto) return WGTS_GSO_EBADHDR;
    if ((get16(pkt + 6) & 0x3fff) != 0) return WGTS_GSO_EBADHDR; /* MF or a fragment offset */
  } else {
    if (len < 40 || l4 < 40 || l4 + 8 > len || !ipv6_l4_at(pkt, len, l4, proto)) return WGTS_GSO_EBADHDR;
  }
  size_t l4h;
  if (proto == 6) {
    if (l4 + 20 > len) return WGTS_GSO_EBADHDR;
    l4h = (size_t)(pkt[l4 + 12] >> 4) * 4;
    if (l4h < 20) return WGTS_GSO_EBADHDR;
  } else {
    l4h = 8;
  }
  size_t hl = l4 + l4h;
  if (hl > len || hl > WGTS_GSO_MAX_HDR) return WGTS_GSO_EBADHDR;
  size_t payload = len - hl, gso = h->gso_size;
  size_t nseg = payload == 0 ? 1 : (payload + gso - 1) / gso;
  if (nseg > WGTS_GSO_MAX_SEGS) return WGTS_GSO_EBADHDR;
  /* Room: each segment at a 16-byte boundary; the last one may be shorter. */
  size_t full = (hl + gso + 15) & ~(size_t)15;
  size_t lastlen = hl + (payload - (nseg - 1) * gso);
  size_t room = (nseg - 1) * full + lastlen;
  if (nseg > maxsegs || room > cap) {
    *need = room;
    return WGTS_GSO_ENOROOM;
  }

  const uint8_t *src = pkt + (v == 4 ? 12 : 8);
  size_t alen = v == 4 ? 4 : 16;
  uint16_t id = v == 4 ? get16(pkt + 4) : 0;
  uint32_t seq = proto == 6 ? get32(pkt + l4 + 4) : 0;
  uint8_t flags = proto == 6 ? pkt[l4 + 13] : 0;
  size_t off = 0;
  for (size_t i = 0; i < nseg; i++) {
    size_t seglen = i + 1 < nseg ? gso : payload - i * gso;
    size_t total = hl + seglen;
    uint8_t *s = out + off;
    memcpy(s, pkt, hl);
    memcpy(s + hl, pkt + hl + i * gso, seglen);
    if (v == 4) {
      put16(s + 2, (uint32_t)total);
      put16(s + 4, (uint16_t)(id + i));
      put16(s + 10, wgts_ipv4_hdr_csum(s, l4));
    } else {
      put16(s + 4, (uint32_t)(total - 40));
    }
    uint8_t *t = s + l4;
    if (proto == 6) {
      put32(t + 4, seq + (uint32_t)(i * gso));
      uint8_t f = flags;
      if (i + 1 < nseg) f &= (uint8_t) ~(0x01 | 0x08); /* FIN, PSH: last segment only */
      if (i > 0) f &= (uint8_t)~0x80;                  /* CWR: first segment only */
      t[13] = f;
      put16(t + 16, 0);
    } else {
      put16(t + 4, (uint32_t)(l4h + seglen));
      put16(t + 6, 0);
    }
    uint32_t sum = wgts_csum_pseudo(src, src + alen, alen, proto, (uint32_t)(total - l4));
    uint16_t c = (uint16_t)~wgts_csum_fold(wgts_csum_add(sum, t, total - l4));
    if (c == 0 && proto == 17) c = 0xffff;
    put16(t + (proto == 6 ? 16 : 6), c);
    meta[2 * i] = out_base + (int32_t)off;
    meta[2 * i + 1] = (int32_t)total;
    off += full;
  }
  return (int)nseg;
}
