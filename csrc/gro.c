/*
 * Coalescing for TUN writes (the reverse of gso.c): consecutive TCP segments, or UDP datagrams,
 * of one flow become one super-packet with a virtio_net_hdr (GSO_TCPV4/TCPV6/UDP_L4, the
 * checksum left partial), so that the kernel takes a 64 KiB batch in one write and one pass of
 * its stack. The rules are the kernel's own GRO rules (tcp_gro_receive, udp_gro_receive,
 * inet_gro_receive, ipv6_gro_receive), read conservatively: only what the kernel's
 * segmentation of the result would give back exactly is merged.
 * - IPv4 without options or fragmentation, IPv6 without extension headers; lengths that agree
 *   with the packet; a valid L4 checksum (a packet that fails it is written alone, for the
 *   kernel to drop); some payload.
 * - Same addresses, ports, IPv4 TOS/DF/TTL, IPv6 traffic class/flow label/hop limit; IPv4 IDs
 *   counting up by one.
 * - TCP: flags ACK or ACK|PSH only, the next sequence number, the same ACK number, window and
 *   options; PSH, or a payload shorter than the first, ends the super-packet (it is merged as
 *   its last segment); a head with PSH is written alone.
 * - UDP: payloads of the first's size; a shorter one is merged as the last.
 * - At most 65535 bytes in all.
 * A packet of a flow that cannot join that flow's open super-packet closes it and starts the
 * next one, so every flow's packets keep their order; different flows may interleave.
 */
#include "offload.h"

#include <errno.h>
#include <string.h>

enum { K_NONE = 0, K_TCP4, K_TCP6, K_UDP4, K_UDP6 };

#define MAX_OPEN 8        /* flows with an open super-packet at once */
#define MAX_MEMBERS 256   /* packets per super-packet (iovec entries) */
#define MAX_TOTAL 65535

struct info {
  uint8_t kind, l4, l4h, tflags;
  uint16_t plen;
  uint32_t seq;
};

struct group {
  int head, last, count;
  uint16_t gso, next_id;
  uint32_t next_seq;
  uint32_t total;
  uint8_t psh, ended;
};

static void classify(const uint8_t *p, size_t len, int flags, struct info *in) {
  memset(in, 0, sizeof *in);
  if (len < 28 || len > MAX_TOTAL) return;
  int v = p[0] >> 4;
  size_t l4;
  uint8_t proto;
  if (v == 4) {
    if ((p[0] & 15) != 5 || get16(p + 2) != len || (get16(p + 6) & 0x3fff) != 0) return;
    l4 = 20;
    proto = p[9];
  } else if (v == 6) {
    if (len < 48 || get16(p + 4) != len - 40) return;
    l4 = 40;
    proto = p[6];
  } else {
    return;
  }
  if (proto == 6 && (flags & WGTS_GRO_TCP)) {
    if (len < l4 + 20) return;
    size_t l4h = (size_t)(p[l4 + 12] >> 4) * 4;
    uint8_t f = p[l4 + 13];
    if (l4h < 20 || l4 + l4h >= len || (f != 0x10 && f != 0x18)) return;
    if (!wgts_l4_csum_valid(p, len, l4, 6)) return;
    in->kind = v == 4 ? K_TCP4 : K_TCP6;
    in->l4h = (uint8_t)l4h;
    in->tflags = f;
    in->seq = get32(p + l4 + 4);
    in->plen = (uint16_t)(len - l4 - l4h);
  } else if (proto == 17 && (flags & WGTS_GRO_UDP)) {
    if (get16(p + l4 + 4) != len - l4 || len == l4 + 8) return;
    if (get16(p + l4 + 6) == 0) return; /* no checksum: the kernel's segmentation would add one */
    if (!wgts_l4_csum_valid(p, len, l4, 17)) return;
    in->kind = v == 4 ? K_UDP4 : K_UDP6;
    in->l4h = 8;
    in->plen = (uint16_t)(len - l4 - 8);
  } else {
    return;
  }
  in->l4 = (uint8_t)l4;
}

/* Same flow: addresses and ports. */
static int same_flow(const uint8_t *a, const uint8_t *b, const struct info *ia) {
  int v6 = ia->kind == K_TCP6 || ia->kind == K_UDP6;
  size_t aoff = v6 ? 8 : 12, alen = v6 ? 32 : 8;
  return memcmp(a + aoff, b + aoff, alen) == 0 && memcmp(a + ia->l4, b + ia->l4, 4) == 0;
}

/* Whether p may follow the group whose head is h (same flow and kind already checked). */
static int can_append(const uint8_t *h, const struct info *ih, const struct group *g,
                      const uint8_t *p, const struct info *ip) {
  if (g->ended || g->count >= MAX_MEMBERS || ip->plen > g->gso) return 0;
  if (g->total + ip->plen > MAX_TOTAL) return 0;
  if (ih->kind == K_TCP4 || ih->kind == K_UDP4) {
    if (h[1] != p[1] || (h[6] & 0xe0) != (p[6] & 0xe0) || h[8] != p[8]) return 0;
    if (get16(p + 4) != g->next_id) return 0;
  } else {
    if (memcmp(h, p, 4) != 0 || h[7] != p[7]) return 0;
  }
  if (ih->kind == K_TCP4 || ih->kind == K_TCP6) {
    const uint8_t *th = h + ih->l4, *tp = p + ip->l4;
    if (ih->l4h != ip->l4h || ip->seq != g->next_seq) return 0;
    if (memcmp(th + 8, tp + 8, 4) != 0) return 0;   /* ACK number */
    if (memcmp(th + 14, tp + 14, 2) != 0) return 0; /* window */
    if (ih->l4h > 20 && memcmp(th + 20, tp + 20, ih->l4h - 20) != 0) return 0;
  }
  return 1;
}

static int is_tcp(uint8_t kind) { return kind == K_TCP4 || kind == K_TCP6; }

void wgts_gro_write(uint8_t *area, const int32_t *meta, int count, int flags, wgts_gro_sink sink,
                    void *ctx, struct wgts_gro_stats *st) {
  struct info info[WGTS_GRO_MAX_BATCH];
  struct group groups[WGTS_GRO_MAX_BATCH];
  int next[WGTS_GRO_MAX_BATCH];  /* next member of the same super-packet, or -1 */
  int gidx[WGTS_GRO_MAX_BATCH];  /* group of a head, -1 for a member, -2 for a lone packet */
  int open[MAX_OPEN];
  int nopen = 0, ngroups = 0;
  memset(st, 0, sizeof *st);
  if (count > WGTS_GRO_MAX_BATCH) count = WGTS_GRO_MAX_BATCH;

  for (int i = 0; i < count; i++) {
    uint8_t *p = area + meta[2 * i];
    size_t len = (size_t)meta[2 * i + 1];
    next[i] = -1;
    gidx[i] = -2;
    if (flags == 0) {
      info[i].kind = K_NONE;
      continue;
    }
    classify(p, len, flags, &info[i]);
    struct info *ip = &info[i];
    if (ip->kind == K_NONE) {
      /* A packet of an open flow that cannot be merged (a FIN, a bare ACK, a bad checksum)
       * closes that flow's super-packet, so it is written after it. */
      if (len >= 28) {
        for (int k = 0; k < nopen; k++) {
          struct group *g = &groups[open[k]];
          const uint8_t *h = area + meta[2 * g->head];
          struct info *ih = &info[g->head];
          int v6 = ih->kind == K_TCP6 || ih->kind == K_UDP6;
          uint8_t proto = v6 ? p[6] : p[9];
          if ((p[0] >> 4) == (v6 ? 6 : 4) && proto == (is_tcp(ih->kind) ? 6 : 17) &&
              ((v6 && len >= 44) || (!v6 && (p[0] & 15) == 5)) && same_flow(h, p, ih)) {
            open[k] = open[--nopen];
            break;
          }
        }
      }
      continue;
    }
    int joined = 0;
    for (int k = 0; k < nopen; k++) {
      struct group *g = &groups[open[k]];
      const uint8_t *h = area + meta[2 * g->head];
      struct info *ih = &info[g->head];
      if (ih->kind != ip->kind || !same_flow(h, p, ih)) continue;
      if (can_append(h, ih, g, p, ip)) {
        next[g->last] = i;
        gidx[i] = -1;
        g->last = i;
        g->count++;
        g->total += ip->plen;
        g->next_seq += ip->plen;
        g->next_id++;
        if (ip->tflags & 0x08) g->psh = 1;
        if (ip->plen < g->gso || g->psh) g->ended = 1;
        joined = 1;
      }
      /* Either way this flow's open super-packet is settled: an ended one is closed now,
       * one that p could not join is closed so that p comes after it. */
      if (!joined || g->ended) open[k] = open[--nopen];
      break;
    }
    if (joined) continue;
    if (ip->tflags & 0x08) continue; /* a PSH head is written alone */
    struct group *g = &groups[ngroups];
    g->head = g->last = i;
    g->count = 1;
    g->gso = ip->plen;
    g->next_id = (uint16_t)(get16(p + 4) + 1);
    g->next_seq = ip->seq + ip->plen;
    g->total = (uint32_t)len;
    g->psh = 0;
    g->ended = 0;
    gidx[i] = ngroups++;
    if (nopen == MAX_OPEN) { /* the oldest open flow is closed */
      memmove(open, open + 1, (MAX_OPEN - 1) * sizeof open[0]);
      nopen--;
    }
    open[nopen++] = gidx[i];
  }

  struct iovec iov[MAX_MEMBERS + 1];
  uint8_t vh[WGTS_VNET_HDR_LEN];
  for (int i = 0; i < count; i++) {
    if (gidx[i] == -1) continue;
    uint8_t *p = area + meta[2 * i];
    size_t len = (size_t)meta[2 * i + 1];
    struct wgts_vnet_hdr h;
    memset(&h, 0, sizeof h);
    int n = 1, members = 1;
    iov[1].iov_base = p;
    iov[1].iov_len = len;
    if (gidx[i] >= 0 && groups[gidx[i]].count > 1) {
      struct group *g = &groups[gidx[i]];
      struct info *ih = &info[i];
      int v6 = ih->kind == K_TCP6 || ih->kind == K_UDP6;
      size_t hl = (size_t)ih->l4 + ih->l4h;
      for (int j = next[i]; j >= 0; j = next[j]) {
        iov[++n].iov_base = area + meta[2 * j] + hl;
        iov[n].iov_len = (size_t)meta[2 * j + 1] - hl;
      }
      members = g->count;
      uint32_t total = g->total;
      if (v6) {
        put16(p + 4, total - 40);
      } else {
        put16(p + 2, total);
        put16(p + 10, wgts_ipv4_hdr_csum(p, 20));
      }
      uint8_t *t = p + ih->l4;
      uint8_t proto = is_tcp(ih->kind) ? 6 : 17;
      if (proto == 6) {
        if (g->psh) t[13] |= 0x08;
      } else {
        put16(t + 4, total - ih->l4);
      }
      size_t alen = v6 ? 16 : 4;
      const uint8_t *src = p + (v6 ? 8 : 12);
      put16(t + (proto == 6 ? 16 : 6), wgts_csum_pseudo(src, src + alen, alen, proto, total - ih->l4));
      h.flags = WGTS_VNET_F_NEEDS_CSUM;
      h.gso_type = ih->kind == K_TCP4 ? WGTS_VNET_GSO_TCPV4 : ih->kind == K_TCP6 ? WGTS_VNET_GSO_TCPV6 : WGTS_VNET_GSO_UDP_L4;
      h.hdr_len = (uint16_t)hl;
      h.gso_size = g->gso;
      h.csum_start = ih->l4;
      h.csum_offset = proto == 6 ? 16 : 6;
      st->coalesced++;
    }
    wgts_vnet_hdr_write(vh, &h);
    iov[0].iov_base = vh;
    iov[0].iov_len = WGTS_VNET_HDR_LEN;
    int r = sink(ctx, iov, n + 1, members);
    st->writes++;
    if (r < 0) {
      st->last_err = r;
      if (r == -EBADFD) return;
    } else {
      st->written += members;
    }
  }
}
