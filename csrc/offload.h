/*
 * Offloads between the TUN device and the data path: the Internet checksum (csum.c), the
 * segmentation of the super-packets a TUN opened with IFF_VNET_HDR hands over (gso.c), and
 * the coalescing of consecutive segments of one flow into one super-packet for a TUN write
 * (gro.c). Pure functions on byte buffers: no Node-API, no file descriptors, so that the unit
 * tests can feed them every edge through the thin wrappers each file exports.
 */
#ifndef WGTS_OFFLOAD_H
#define WGTS_OFFLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* struct virtio_net_hdr (linux/virtio_net.h): what precedes every packet on an IFF_VNET_HDR
 * TUN fd, in the host's byte order (TUNSETVNETLE/BE are never used). */
struct wgts_vnet_hdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
};
#define WGTS_VNET_HDR_LEN 10

#define WGTS_VNET_F_NEEDS_CSUM 1
#define WGTS_VNET_GSO_NONE 0
#define WGTS_VNET_GSO_TCPV4 1
#define WGTS_VNET_GSO_TCPV6 4
#define WGTS_VNET_GSO_UDP_L4 5 /* Linux 6.2 (USO) */
#define WGTS_VNET_GSO_ECN 0x80

/* Segment counts: a TCP MSS is at least 48 bytes (net.ipv4.tcp_min_snd_mss), so a 64 KiB
 * super-packet has at most 1366 segments; anything claiming more is refused as malformed. */
#define WGTS_GSO_MAX_SEGS 1400
/* Headers copied into each segment: IPv4/IPv6 (with extension headers) + TCP/UDP. */
#define WGTS_GSO_MAX_HDR 320

/* Results of wgts_gso_split below zero (the packet is dropped and counted). */
#define WGTS_GSO_EBADHDR -1 /* the virtio header does not describe this packet */
#define WGTS_GSO_ENOROOM -2 /* the segments do not fit in the room given (try again with more) */

/* Big-endian (network order) loads and stores, for gso.c and gro.c. */
static inline uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline void put16(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* --- csum.c ---------------------------------------------------------------------------- */

/* Ones' complement sum of n bytes, as the sum of big-endian 16-bit words, folded to 16 bits
 * and added to `sum` (itself such a folded sum, or 0). */
uint32_t wgts_csum_add(uint32_t sum, const uint8_t *p, size_t n);
/* The TCP/UDP pseudo-header sum: addresses (4 or 16 bytes each), protocol, L4 length. */
uint32_t wgts_csum_pseudo(const uint8_t *src, const uint8_t *dst, size_t alen, uint8_t proto,
                          uint32_t l4len);
/* Folds a sum to 16 bits. */
uint16_t wgts_csum_fold(uint32_t sum);
/* The IPv4 header checksum of hdr[0..ihl), with its checksum field taken as zero. */
uint16_t wgts_ipv4_hdr_csum(const uint8_t *hdr, size_t ihl);
/* Whether the TCP/UDP checksum of an IP packet (l4 at `l4off`, protocol `proto`) is valid. */
int wgts_l4_csum_valid(const uint8_t *pkt, size_t len, size_t l4off, uint8_t proto);

/* --- gso.c ----------------------------------------------------------------------------- */

/* Reads the virtio header in front of a packet. */
void wgts_vnet_hdr_read(const uint8_t *p, struct wgts_vnet_hdr *h);
void wgts_vnet_hdr_write(uint8_t *p, const struct wgts_vnet_hdr *h);

/*
 * One packet read from a vnet TUN: `pkt` (len bytes, after the virtio header `h`).
 * - Not a super-packet: completes the checksum in place if the kernel left it partial and
 *   returns 0 (the packet stays where it is).
 * - A super-packet (TCP TSO, UDP USO): writes its segments into `out` (cap bytes), each at a
 *   16-byte aligned offset, their offsets (relative to `out`, plus `out_base`) and lengths as
 *   pairs into `meta` (room for `maxsegs` pairs), and returns how many; the segments are
 *   exactly what the kernel's own segmentation makes (IPv4 IDs counting up, sequence numbers,
 *   FIN/PSH on the last segment only, CWR on the first only, lengths and checksums).
 * - Below zero: WGTS_GSO_EBADHDR, or WGTS_GSO_ENOROOM with *need set to the bytes needed.
 */
int wgts_gso_split(uint8_t *pkt, size_t len, const struct wgts_vnet_hdr *h, uint8_t *out,
                   size_t cap, int32_t out_base, int32_t *meta, size_t maxsegs, size_t *need);

/* --- gro.c ----------------------------------------------------------------------------- */

#define WGTS_GRO_TCP 1 /* coalesce TCP segments (IPv4 and IPv6) */
#define WGTS_GRO_UDP 2 /* coalesce UDP datagrams (needs a kernel that takes GSO_UDP_L4: 6.2) */
#define WGTS_GRO_MAX_BATCH 1024 /* packets per call at most */

/* Where the coalesced batch goes: one call per resulting packet, as an iovec whose first
 * element is its virtio header; returns 0 or -errno (which ends the batch on -EBADFD). */
typedef int (*wgts_gro_sink)(void *ctx, const struct iovec *iov, int iovcnt, int members);

struct wgts_gro_stats {
  int written;   /* input packets handed to the sink successfully */
  int writes;    /* sink calls */
  int coalesced; /* super-packets among them (2 or more members) */
  int last_err;  /* last -errno from the sink, or 0 */
};

/*
 * Coalesces the `count` IP packets in `area` (offset/length pairs in `meta`) and hands the
 * result to `sink` in order: a packet either starts a new output packet or is appended to the
 * open one of its flow, so that every flow's packets keep their order. Headers of coalesced
 * heads are rewritten in place (lengths, IPv4 header checksum, the L4 checksum field holding
 * the pseudo-header sum for NEEDS_CSUM). `flags`: WGTS_GRO_TCP | WGTS_GRO_UDP; 0 writes every
 * packet alone (still with a virtio header).
 */
void wgts_gro_write(uint8_t *area, const int32_t *meta, int count, int flags, wgts_gro_sink sink,
                    void *ctx, struct wgts_gro_stats *st);

#endif
