/* TUN devices: open /dev/net/tun (IFF_TUN | IFF_NO_PI, and IFF_VNET_HDR with offloads), MTU,
 * probe, synchronous writes (one packet, or a batch coalesced by gro.c). */
#include "common.h"
#include "offload.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sys/uio.h>

#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20 /* Linux 6.2 */
#define TUN_F_USO6 0x40
#endif

#ifndef TUNGETDEVNETNS
#define TUNGETDEVNETNS _IO('T', 227) /* Linux 5.2 */
#endif

static int get_ifname(napi_env env, napi_value v, char name[IFNAMSIZ]) {
  size_t len = 0;
  char buf[IFNAMSIZ + 2];
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string ||
      napi_get_value_string_utf8(env, v, buf, sizeof buf, &len) != napi_ok) {
    wgts_throw_type(env, "wgts: interface name must be a string");
    return -1;
  }
  if (len == 0 || len >= IFNAMSIZ || strlen(buf) != len) {
    wgts_throw_type(env, "wgts: interface name must be 1 to 15 bytes");
    return -1;
  }
  memcpy(name, buf, len + 1);
  return 0;
}

/* Offloads asked of tunOpen, and granted (its third result). */
#define OFF_TSO 1 /* TSO4 + TSO6 (+ CSUM): TCP super-packets to segment */
#define OFF_USO 2 /* USO4 + USO6 (+ CSUM, Linux 6.2): UDP super-packets to segment */
#define OFF_VNET 4 /* the fd carries a virtio_net_hdr per packet (asked implicitly by the others) */
#define OFF_USO_KERNEL 8 /* granted only: the kernel takes UDP GSO (USO) packets written to it */

static int open_tun(const char *name, int vnet, struct ifreq *ifr, int *err) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    *err = errno;
    return -1;
  }
  memset(ifr, 0, sizeof *ifr);
  /* IFF_TUN_EXCL: fail with EBUSY instead of attaching to an existing (persistent) device. */
  ifr->ifr_flags = IFF_TUN | IFF_NO_PI | IFF_TUN_EXCL | (vnet ? IFF_VNET_HDR : 0);
  memcpy(ifr->ifr_name, name, strlen(name) + 1);
  if (ioctl(fd, TUNSETIFF, ifr) < 0) {
    *err = errno;
    close(fd);
    return -1;
  }
  ifr->ifr_name[IFNAMSIZ - 1] = 0;
  return fd;
}

/*
 * tunOpen(name[, offloads]) -> [fd, actualName, granted]. The fd is O_NONBLOCK and O_CLOEXEC.
 * offloads: OFF_TSO | OFF_USO | OFF_VNET. With any of them the device is opened with
 * IFF_VNET_HDR and TUNSETOFFLOAD is negotiated: USO is dropped if the kernel refuses it (before
 * 6.2), and if it refuses TSO (or the virtio header) the device is opened again without it, as
 * before offloads (granted = 0). With OFF_VNET alone no offload is asked (packets come whole),
 * but GSO packets may still be written.
 */
static napi_value tun_open(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char name[IFNAMSIZ];
  int32_t want = 0;
  size_t argc = 2;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    wgts_throw_last(env, "napi_get_cb_info");
    return NULL;
  }
  if (argc < 1) return wgts_throw_type(env, "wgts: missing arguments");
  if (get_ifname(env, argv[0], name) < 0 || (argc >= 2 && wgts_get_i32(env, argv[1], &want) < 0)) return NULL;
  struct ifreq ifr;
  int err = 0, granted = 0, fd = -1;
  if (want & (OFF_TSO | OFF_USO | OFF_VNET)) {
    fd = open_tun(name, 1, &ifr, &err);
    if (fd >= 0) {
      unsigned tso = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6, uso = TUN_F_CSUM | TUN_F_USO4 | TUN_F_USO6;
      /* Whether this kernel takes USO at all, which also says it accepts GSO_UDP_L4 writes. */
      int uso_kernel = ioctl(fd, TUNSETOFFLOAD, (unsigned long)(tso | uso)) == 0;
      unsigned ask = ((want & OFF_TSO) ? tso : 0) | ((want & OFF_USO) && uso_kernel ? uso : 0);
      int ok = ioctl(fd, TUNSETOFFLOAD, (unsigned long)ask) == 0;
      if (!ok && (ask & TUN_F_USO4)) {
        ask &= ~(unsigned)(TUN_F_USO4 | TUN_F_USO6);
        ok = ioctl(fd, TUNSETOFFLOAD, (unsigned long)ask) == 0;
      }
      if (ok) {
        granted = OFF_VNET | ((ask & TUN_F_TSO4) ? OFF_TSO : 0) | ((ask & TUN_F_USO4) ? OFF_USO : 0) |
                  (uso_kernel ? OFF_USO_KERNEL : 0);
      } else {
        close(fd); /* not persistent: this deletes the device, and the name is free again */
        fd = -1;
      }
    } else if (err != EINVAL) {
      return wgts_throw_errno(env, "TUNSETIFF", err);
    }
  }
  if (fd < 0) {
    fd = open_tun(name, 0, &ifr, &err);
    if (fd < 0) return wgts_throw_errno(env, err == ENOENT || err == ENODEV ? "open /dev/net/tun" : "TUNSETIFF", err);
  }

  napi_value result, fdv, namev, gv;
  NAPI_CALL(env, napi_create_array_with_length(env, 3, &result));
  if (napi_create_int32(env, fd, &fdv) != napi_ok ||
      napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &namev) != napi_ok ||
      napi_create_int32(env, granted, &gv) != napi_ok ||
      napi_set_element(env, result, 0, fdv) != napi_ok ||
      napi_set_element(env, result, 1, namev) != napi_ok ||
      napi_set_element(env, result, 2, gv) != napi_ok) {
    close(fd);
    wgts_throw_last(env, "tunOpen result");
    return NULL;
  }
  return result;
}

/* tunSetMtu(name, mtu): SIOCSIFMTU on a socket of the current network namespace. */
static napi_value tun_set_mtu(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char name[IFNAMSIZ];
  int32_t mtu;
  if (wgts_get_args(env, info, 2, argv) < 0 || get_ifname(env, argv[0], name) < 0 ||
      wgts_get_i32(env, argv[1], &mtu) < 0)
    return NULL;
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return wgts_throw_errno(env, "socket", errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, strlen(name) + 1);
  ifr.ifr_mtu = mtu;
  int r = ioctl(s, SIOCSIFMTU, &ifr);
  int e = errno;
  close(s);
  if (r < 0) return wgts_throw_errno(env, "SIOCSIFMTU", e);
  return NULL;
}

/* The fd argument and TUNGETIFF on it: 0 with the current name in ifr, or -errno (-EINVAL
 * with a JavaScript exception pending when the argument is bad). */
static int tun_getiff(napi_env env, napi_callback_info info, int32_t *fd, struct ifreq *ifr) {
  napi_value argv[1];
  if (wgts_get_args(env, info, 1, argv) < 0 || wgts_get_i32(env, argv[0], fd) < 0) return -EINVAL;
  memset(ifr, 0, sizeof *ifr);
  if (ioctl(*fd, TUNGETIFF, ifr) < 0) return -errno;
  ifr->ifr_name[IFNAMSIZ - 1] = 0;
  return 0;
}

/* -errno as a number, unless an exception is already pending. */
static napi_value errno_result(napi_env env, int r) {
  bool pending = false;
  return napi_is_exception_pending(env, &pending) == napi_ok && pending ? NULL : wgts_i32(env, r);
}

/*
 * tunProbe(fd) -> the device's current name, or -errno. TUNGETIFF fails with EBADFD once the
 * device behind the fd is gone (deleted, or its namespace destroyed).
 */
static napi_value tun_probe(napi_env env, napi_callback_info info) {
  int32_t fd;
  struct ifreq ifr;
  int r = tun_getiff(env, info, &fd, &ifr);
  if (r < 0) return errno_result(env, r);
  napi_value name;
  NAPI_CALL(env, napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &name));
  return name;
}

/* fdWrite and tunWrite: one packet on fd, behind `vh` (vhlen bytes, 0 for none). Returns the
 * bytes of the packet written or -errno (never blocks: the fd is non-blocking). */
static napi_value write_packet(napi_env env, napi_callback_info info, const uint8_t *vh, size_t vhlen) {
  napi_value argv[2];
  int32_t fd;
  uint8_t *data;
  size_t len;
  if (wgts_get_args(env, info, 2, argv) < 0 || wgts_get_i32(env, argv[0], &fd) < 0 ||
      wgts_get_bytes(env, argv[1], &data, &len) < 0)
    return NULL;
  struct iovec iov[2] = {{(void *)vh, vhlen}, {data, len}};
  ssize_t n;
  do {
    n = vhlen ? writev(fd, iov, 2) : write(fd, data, len);
  } while (n < 0 && errno == EINTR);
  return wgts_i32(env, n < 0 ? -errno : (int32_t)(n - (ssize_t)vhlen));
}

/* fdWrite(fd, bytes) -> bytes written or -errno (never blocks: the fd is non-blocking). */
static napi_value fd_write(napi_env env, napi_callback_info info) {
  return write_packet(env, info, NULL, 0);
}

/* tunWrite(fd, bytes) -> bytes of the packet written or -errno: one packet on a vnet TUN fd,
 * behind an all-zero virtio header (no GSO, checksum complete). */
static napi_value tun_write(napi_env env, napi_callback_info info) {
  static const uint8_t vh[WGTS_VNET_HDR_LEN] = {0};
  return write_packet(env, info, vh, sizeof vh);
}

static int fd_sink(void *ctx, const struct iovec *iov, int iovcnt, int members) {
  (void)members;
  int fd = *(int *)ctx;
  ssize_t n;
  do {
    n = writev(fd, iov, iovcnt);
  } while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : 0;
}

/*
 * tunWriteBatch(fd, area, meta, count, mode, stats) -> packets written. meta: (offset, length)
 * pairs of `count` packets in `area`. mode: -1 for a plain fd (one write per packet), else the
 * fd is a vnet one and mode is gro.c's flags (WGTS_GRO_TCP | WGTS_GRO_UDP; 0: no coalescing).
 * stats (Int32Array of 4) gets: packets written, write calls, super-packets, last -errno.
 * Headers of coalesced packets are rewritten in `area`.
 */
static napi_value tun_write_batch(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  int32_t fd, count, mode;
  uint8_t *area;
  size_t arealen, metalen, statlen;
  int32_t *meta, *stats;
  if (wgts_get_args(env, info, 6, argv) < 0 || wgts_get_i32(env, argv[0], &fd) < 0 ||
      wgts_get_bytes(env, argv[1], &area, &arealen) < 0 ||
      wgts_get_i32array(env, argv[2], &meta, &metalen) < 0 || wgts_get_i32(env, argv[3], &count) < 0 ||
      wgts_get_i32(env, argv[4], &mode) < 0 || wgts_get_i32array(env, argv[5], &stats, &statlen) < 0)
    return NULL;
  if (count < 0 || count > WGTS_GRO_MAX_BATCH || (size_t)count * 2 > metalen || statlen < 4)
    return wgts_throw_type(env, "wgts: bad tunWriteBatch arguments");
  for (int32_t i = 0; i < count; i++) {
    int32_t off = meta[2 * i], len = meta[2 * i + 1];
    if (off < 0 || len < 0 || (size_t)off > arealen || (size_t)len > arealen - (size_t)off)
      return wgts_throw_type(env, "wgts: packet outside the area");
  }
  struct wgts_gro_stats st;
  if (mode < 0) {
    memset(&st, 0, sizeof st);
    for (int32_t i = 0; i < count; i++) {
      ssize_t n;
      do {
        n = write(fd, area + meta[2 * i], (size_t)meta[2 * i + 1]);
      } while (n < 0 && errno == EINTR);
      st.writes++;
      if (n < 0) {
        st.last_err = -errno;
        if (errno == EBADFD) break;
      } else {
        st.written++;
      }
    }
  } else {
    int f = fd;
    wgts_gro_write(area, meta, count, mode & (WGTS_GRO_TCP | WGTS_GRO_UDP), fd_sink, &f, &st);
  }
  stats[0] = st.written;
  stats[1] = st.writes;
  stats[2] = st.coalesced;
  stats[3] = st.last_err;
  return wgts_i32(env, st.written);
}

/* fdClose(fd) -> 0 or -errno. */
static napi_value fd_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (wgts_get_args(env, info, 1, argv) < 0 || wgts_get_i32(env, argv[0], &fd) < 0) return NULL;
  if (fd < 0) return wgts_i32(env, -EBADF);
  /* Linux always releases the descriptor, even when close reports EINTR: never retry. */
  int r = close(fd);
  return wgts_i32(env, r < 0 && errno != EINTR ? -errno : 0);
}

/* poll.c's reader for a plain TUN fd (slot TUN_MAX_PACKET) and the route monitor's netlink
 * socket (slot RTMON_SLOT; non-blocking, so read() is recv(..., MSG_DONTWAIT)): whole packets
 * or datagrams of at most `slot` bytes, at 16-byte aligned offsets, until EAGAIN, the batch
 * full, or an error. */
int wgts_read_batch(int fd, uint8_t *buf, size_t buflen, int32_t *meta, size_t maxpkts, size_t slot,
                    int *err) {
  size_t off = 0;
  int count = 0;
  *err = 0;
  while ((size_t)count < maxpkts && buflen - off >= slot) {
    ssize_t n = read(fd, buf + off, slot);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) *err = errno;
      break;
    }
    if (n == 0) break;
    meta[count * TUN_META_STRIDE] = (int32_t)off;
    meta[count * TUN_META_STRIDE + 1] = (int32_t)n;
    count++;
    off += ((size_t)n + 15) & ~(size_t)15;
  }
  return count;
}

/*
 * A batch from a vnet TUN fd: each read is a virtio header and a packet; super-packets are
 * segmented (gso.c) into the area right behind themselves, and partial checksums completed.
 * A super-packet whose segments do not fit in what is left of the area or of `meta` is kept in
 * st->pending and segmented first in the next batch, which the poller runs at once (the fd
 * may have nothing more to say, and uv_poll would not call again).
 */
int wgts_tun_read_vnet(int fd, uint8_t *buf, size_t buflen, int32_t *meta, size_t maxpkts,
                       size_t maxreads, struct wgts_tun_vnet *st, int *err) {
  size_t off = 0, count = 0, reads = 0;
  *err = 0;
  const size_t slot = TUN_MAX_PACKET + WGTS_VNET_HDR_LEN;
  int from_pending = st->pending_len > 0;
  while (count < maxpkts && buflen - off >= slot) {
    ssize_t n;
    if (from_pending) {
      n = (ssize_t)st->pending_len;
      memcpy(buf + off, st->pending, (size_t)n);
      st->pending_len = 0;
    } else {
      if (reads >= maxreads) break;
      n = read(fd, buf + off, slot);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) *err = errno;
        break;
      }
      if (n == 0) break;
      reads++;
    }
    int first = from_pending;
    from_pending = 0;
    if ((size_t)n < WGTS_VNET_HDR_LEN) {
      st->counters[WGTS_TUN_C_BAD]++;
      continue;
    }
    struct wgts_vnet_hdr h;
    wgts_vnet_hdr_read(buf + off, &h);
    uint8_t *pkt = buf + off + WGTS_VNET_HDR_LEN;
    size_t len = (size_t)n - WGTS_VNET_HDR_LEN;
    size_t out = (off + (size_t)n + 15) & ~(size_t)15, need = 0;
    int r = wgts_gso_split(pkt, len, &h, buf + out, out < buflen ? buflen - out : 0, (int32_t)out,
                           meta + 2 * count, maxpkts - count, &need);
    if (r == 0) {
      meta[2 * count] = (int32_t)(off + WGTS_VNET_HDR_LEN);
      meta[2 * count + 1] = (int32_t)len;
      count++;
      off = out;
    } else if (r > 0) {
      st->counters[WGTS_TUN_C_SPLIT]++;
      st->counters[WGTS_TUN_C_SEGS] += r;
      count += (size_t)r;
      off = ((size_t)meta[2 * count - 2] + (size_t)meta[2 * count - 1] + 15) & ~(size_t)15;
    } else if (r == WGTS_GSO_ENOROOM && !first && count > 0) {
      memcpy(st->pending, buf + off, (size_t)n); /* deliver what we have, then this one */
      st->pending_len = (size_t)n;
      break;
    } else {
      st->counters[WGTS_TUN_C_BAD]++;
    }
  }
  return (int)count;
}

/*
 * A new AF_INET socket in the network namespace `nsfd` refers to, or -errno. Another namespace
 * means switching this (the main) thread there and back, as netns.c does; nothing else runs
 * meanwhile. The caller closes it at once: a socket holds its namespace alive, and the daemon
 * must see a container's namespace go away.
 */
static int socket_in_netns(int nsfd, const struct stat *ns) {
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) return -errno;
  struct stat cur;
  int s, e = 0;
  if (fstat(self, &cur) == 0 && cur.st_ino == ns->st_ino && cur.st_dev == ns->st_dev) {
    s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) e = errno;
  } else if (setns(nsfd, CLONE_NEWNET) < 0) {
    e = errno;
    s = -1;
  } else {
    s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) e = errno;
    if (setns(self, CLONE_NEWNET) < 0) abort(); /* cannot happen: we were just there */
  }
  close(self);
  return s < 0 ? -e : s;
}

/*
 * tunMtu(fd) -> the device's current MTU, or -errno. Works wherever the device has been moved:
 * TUNGETDEVNETNS gives its namespace, and SIOCGIFMTU is asked there by its current name.
 */
static napi_value tun_mtu(napi_env env, napi_callback_info info) {
  int32_t fd;
  struct ifreq ifr;
  int r = tun_getiff(env, info, &fd, &ifr);
  if (r < 0) return errno_result(env, r);
  int nsfd = ioctl(fd, TUNGETDEVNETNS);
  if (nsfd < 0) return wgts_i32(env, -errno);
  struct stat ns;
  int s = fstat(nsfd, &ns) < 0 ? -errno : socket_in_netns(nsfd, &ns);
  close(nsfd);
  if (s < 0) return wgts_i32(env, s);
  r = ioctl(s, SIOCGIFMTU, &ifr);
  int e = errno;
  close(s);
  return wgts_i32(env, r < 0 ? -e : ifr.ifr_mtu);
}

/*
 * packetPair() -> [fd0, fd1]: a connected non-blocking SOCK_SEQPACKET pair. Each write is one
 * packet and each read returns one, as on a TUN fd, so a Tun can run over one end (the JIT
 * warm-up and tests do, with no device and no privileges).
 */
static napi_value packet_pair(napi_env env, napi_callback_info info) {
  (void)info;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
    return wgts_throw_errno(env, "socketpair", errno);
  napi_value result, a, b;
  if (napi_create_array_with_length(env, 2, &result) != napi_ok || napi_create_int32(env, sv[0], &a) != napi_ok ||
      napi_create_int32(env, sv[1], &b) != napi_ok || napi_set_element(env, result, 0, a) != napi_ok ||
      napi_set_element(env, result, 1, b) != napi_ok) {
    close(sv[0]);
    close(sv[1]);
    wgts_throw_last(env, "packetPair result");
    return NULL;
  }
  return result;
}

/*
 * ifIndex(name) -> the index of interface `name` in the current network namespace, or 0 when
 * there is none (SIOCGIFINDEX, as if_nametoindex(3)). For IPv6 zones ("fe80::1%eth0").
 */
static napi_value if_index(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (wgts_get_args(env, info, 1, argv) < 0) return NULL;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (get_ifname(env, argv[0], ifr.ifr_name) < 0) return NULL;
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) s = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return wgts_throw_errno(env, "socket", errno);
  int r = ioctl(s, SIOCGIFINDEX, &ifr);
  close(s);
  return wgts_i32(env, r < 0 ? 0 : ifr.ifr_ifindex);
}

napi_status wgts_init_tun(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"tunOpen", NULL, tun_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tunSetMtu", NULL, tun_set_mtu, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tunProbe", NULL, tun_probe, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tunMtu", NULL, tun_mtu, NULL, NULL, NULL, napi_enumerable, NULL},
      {"packetPair", NULL, packet_pair, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ifIndex", NULL, if_index, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fdWrite", NULL, fd_write, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tunWrite", NULL, tun_write, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tunWriteBatch", NULL, tun_write_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fdClose", NULL, fd_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
