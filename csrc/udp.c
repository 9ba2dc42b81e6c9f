/*
 * UDP: one IPv4 and one IPv6 (IPV6_V6ONLY) socket on the same port, like wireguard-go's
 * StdNetBind. recvmmsg/sendmmsg batches; IP_PKTINFO / IPV6_RECVPKTINFO for the sticky source.
 * Offloads: UDP GSO on send (a run of equal-size datagrams to one endpoint leaves as one
 * message with a UDP_SEGMENT control message) and UDP GRO on receive (the kernel hands a run
 * of datagrams from one source as one buffer with its segment size in a UDP_GRO control
 * message; JavaScript splits it).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "common.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif

#define MAX_BATCH 64   /* datagrams per recvmmsg */
#define MAX_SEND 128   /* datagrams per udpSendBatch call */
#define GSO_MAX_SEGS 64 /* UDP_MAX_SEGMENTS before Linux 6.9 */
#define SOCK_BUF (7 << 20) /* like wireguard-go: 7 MiB socket buffers when allowed */
#define CTRL_SIZE \
  (CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct in_pktinfo)) + CMSG_SPACE(sizeof(int)))
#define SEG_CTRL CMSG_SPACE(sizeof(uint16_t))

static void set_buffers(int s) {
  int size = SOCK_BUF;
  /* The FORCE variants pass net.core.[rw]mem_max when we have CAP_NET_ADMIN; best effort. */
  if (setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
    (void)setsockopt(s, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  if (setsockopt(s, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
    (void)setsockopt(s, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
}

/* Returns the socket or -errno; *what names the failing step. */
static int make_socket(int family, uint16_t port, uint32_t fwmark, int loopback, const char **what) {
  int one = 1;
  int s = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) {
    *what = "socket";
    return -errno;
  }
  if (family == AF_INET6) {
    if (setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) {
      *what = "setsockopt IPV6_V6ONLY";
      goto fail;
    }
    if (setsockopt(s, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) < 0) {
      *what = "setsockopt IPV6_RECVPKTINFO";
      goto fail;
    }
  } else if (setsockopt(s, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) < 0) {
    *what = "setsockopt IP_PKTINFO";
    goto fail;
  }
  if (fwmark != 0 && setsockopt(s, SOL_SOCKET, SO_MARK, &fwmark, sizeof fwmark) < 0) {
    *what = "setsockopt SO_MARK";
    goto fail;
  }
  set_buffers(s);
  int r;
  if (family == AF_INET6) {
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    a.sin6_addr = loopback ? in6addr_loopback : in6addr_any;
    r = bind(s, (struct sockaddr *)&a, sizeof a);
  } else {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(loopback ? INADDR_LOOPBACK : INADDR_ANY);
    r = bind(s, (struct sockaddr *)&a, sizeof a);
  }
  if (r < 0) {
    *what = "bind";
    goto fail;
  }
  return s;
fail:;
  int e = errno;
  close(s);
  return -e;
}

static int local_port(int s) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(s, (struct sockaddr *)&ss, &len) < 0) return -errno;
  if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/*
 * udpOpen(port, fwmark, loopback?) -> [fd4, fd6, port]; fd4 or fd6 is -1 when that family is
 * unsupported by the kernel (or, with loopback, has no loopback address). Port 0 picks a port
 * that is free for both families (retrying like wireguard-go). loopback binds 127.0.0.1 and ::1
 * instead of the wildcard addresses (tests, the JIT warm-up).
 */
static napi_value udp_open(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  uint32_t port, fwmark;
  bool loopback = false;
  napi_valuetype t3;
  if (wgts_get_args(env, info, 3, argv) < 0 || wgts_get_u32(env, argv[0], &port) < 0 ||
      wgts_get_u32(env, argv[1], &fwmark) < 0 || napi_typeof(env, argv[2], &t3) != napi_ok)
    return NULL;
  if (t3 == napi_boolean && napi_get_value_bool(env, argv[2], &loopback) != napi_ok) return NULL;
  if (port > 65535) return wgts_throw_type(env, "wgts: port out of range");

  int fd4 = -1, fd6 = -1, bound = -1;
  const char *what = "bind";
  for (int attempt = 0; attempt < 100; attempt++) {
    fd4 = make_socket(AF_INET, (uint16_t)port, fwmark, loopback, &what);
    if (fd4 == -EAFNOSUPPORT || (loopback && fd4 == -EADDRNOTAVAIL)) {
      fd4 = -1;
    } else if (fd4 < 0) {
      return wgts_throw_errno(env, what, -fd4);
    }
    uint16_t p = (uint16_t)port;
    if (fd4 >= 0 && p == 0) {
      int lp = local_port(fd4);
      if (lp < 0) {
        close(fd4);
        return wgts_throw_errno(env, "getsockname", -lp);
      }
      p = (uint16_t)lp;
    }
    fd6 = make_socket(AF_INET6, p, fwmark, loopback, &what);
    if (fd6 == -EAFNOSUPPORT || (loopback && fd6 == -EADDRNOTAVAIL)) {
      fd6 = -1;
    } else if (fd6 < 0) {
      int e = -fd6;
      if (fd4 >= 0) close(fd4);
      fd4 = fd6 = -1;
      if (e == EADDRINUSE && port == 0) continue; /* the v4 pick is taken in v6: try again */
      return wgts_throw_errno(env, what, e);
    }
    if (fd4 < 0 && fd6 < 0) return wgts_throw_errno(env, "socket", EAFNOSUPPORT);
    int lp = local_port(fd4 >= 0 ? fd4 : fd6);
    if (lp < 0) {
      if (fd4 >= 0) close(fd4);
      if (fd6 >= 0) close(fd6);
      return wgts_throw_errno(env, "getsockname", -lp);
    }
    bound = lp;
    break;
  }
  if (bound < 0) return wgts_throw_errno(env, "bind", EADDRINUSE);

  napi_value result, v0, v1, v2;
  if (napi_create_array_with_length(env, 3, &result) != napi_ok ||
      napi_create_int32(env, fd4, &v0) != napi_ok || napi_create_int32(env, fd6, &v1) != napi_ok ||
      napi_create_int32(env, bound, &v2) != napi_ok ||
      napi_set_element(env, result, 0, v0) != napi_ok ||
      napi_set_element(env, result, 1, v1) != napi_ok ||
      napi_set_element(env, result, 2, v2) != napi_ok) {
    if (fd4 >= 0) close(fd4);
    if (fd6 >= 0) close(fd6);
    wgts_throw_last(env, "udpOpen result");
    return NULL;
  }
  return result;
}

/* sockSetMark(fd, mark): SO_MARK (0 clears it). */
static napi_value sock_set_mark(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  uint32_t mark;
  if (wgts_get_args(env, info, 2, argv) < 0 || wgts_get_i32(env, argv[0], &fd) < 0 ||
      wgts_get_u32(env, argv[1], &mark) < 0)
    return NULL;
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) < 0)
    return wgts_throw_errno(env, "setsockopt SO_MARK", errno);
  return NULL;
}

static int is_link_local6(const uint8_t *a) { return a[0] == 0xfe && (a[1] & 0xc0) == 0x80; }

int wgts_udp_recv_batch(int fd, uint8_t *buf, size_t buflen, int32_t *meta, size_t maxpkts,
                        int *err) {
  struct mmsghdr msgs[MAX_BATCH];
  struct iovec iov[MAX_BATCH];
  struct sockaddr_storage from[MAX_BATCH];
  union {
    char buf[CTRL_SIZE];
    struct cmsghdr align;
  } ctrl[MAX_BATCH];
  size_t n = buflen / UDP_SLOT;
  if (n > maxpkts) n = maxpkts;
  if (n > MAX_BATCH) n = MAX_BATCH;
  *err = 0;
  if (n == 0) return 0;
  memset(msgs, 0, n * sizeof msgs[0]);
  for (size_t i = 0; i < n; i++) {
    iov[i].iov_base = buf + i * UDP_SLOT;
    iov[i].iov_len = UDP_SLOT;
    msgs[i].msg_hdr.msg_name = &from[i];
    msgs[i].msg_hdr.msg_namelen = sizeof from[i];
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_control = ctrl[i].buf;
    msgs[i].msg_hdr.msg_controllen = sizeof ctrl[i].buf;
  }
  int r;
  do {
    r = recvmmsg(fd, msgs, (unsigned)n, MSG_DONTWAIT, NULL);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) *err = errno;
    return 0;
  }
  int count = 0;
  for (int i = 0; i < r; i++) {
    struct msghdr *h = &msgs[i].msg_hdr;
    if (h->msg_flags & MSG_TRUNC) continue; /* cannot happen with 64 KiB slots; be safe */
    int32_t *m = meta + (size_t)count * UDP_META_STRIDE;
    uint8_t *addr = (uint8_t *)(m + UDP_M_ADDR);
    uint8_t *local = (uint8_t *)(m + UDP_M_LOCAL);
    memset(addr, 0, 32);
    m[UDP_M_IFINDEX] = 0;
    m[UDP_M_HASLOCAL] = 0;
    m[UDP_M_STATUS] = 0;
    m[UDP_M_GSO] = 0;
    if (from[i].ss_family == AF_INET && h->msg_namelen >= sizeof(struct sockaddr_in)) {
      struct sockaddr_in *a = (struct sockaddr_in *)&from[i];
      m[UDP_M_FAMILY] = 4;
      m[UDP_M_PORT] = ntohs(a->sin_port);
      memcpy(addr, &a->sin_addr, 4);
    } else if (from[i].ss_family == AF_INET6 && h->msg_namelen >= sizeof(struct sockaddr_in6)) {
      struct sockaddr_in6 *a = (struct sockaddr_in6 *)&from[i];
      m[UDP_M_FAMILY] = 6;
      m[UDP_M_PORT] = ntohs(a->sin6_port);
      memcpy(addr, &a->sin6_addr, 16);
      m[UDP_M_IFINDEX] = (int32_t)a->sin6_scope_id;
    } else {
      continue;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
      if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
          c->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
        struct in_pktinfo pi;
        memcpy(&pi, CMSG_DATA(c), sizeof pi);
        memcpy(local, &pi.ipi_spec_dst, 4);
        m[UDP_M_IFINDEX] = pi.ipi_ifindex;
        m[UDP_M_HASLOCAL] = 1;
      } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
                 c->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
        struct in6_pktinfo pi;
        memcpy(&pi, CMSG_DATA(c), sizeof pi);
        memcpy(local, &pi.ipi6_addr, 16);
        m[UDP_M_IFINDEX] = (int32_t)pi.ipi6_ifindex;
        m[UDP_M_HASLOCAL] = 1;
      } else if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO &&
                 c->cmsg_len >= CMSG_LEN(sizeof(int))) {
        int gso;
        memcpy(&gso, CMSG_DATA(c), sizeof gso);
        if (gso > 0 && (size_t)gso < msgs[i].msg_len) m[UDP_M_GSO] = gso;
      }
    }
    m[UDP_M_OFF] = (int32_t)((size_t)i * UDP_SLOT);
    m[UDP_M_LEN] = (int32_t)msgs[i].msg_len;
    count++;
  }
  return count;
}

/* One message of a send batch: datagrams [first, first + n) of the iovec array, to one
 * destination; with n > 1 its control data ends with a UDP_SEGMENT message. */
struct send_msg {
  union {
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
  } to;
  union {
    char buf[CTRL_SIZE];
    struct cmsghdr align;
  } ctrl;
  size_t pktinfo_len; /* bytes of control data for the sticky source (0: none) */
  int first, n;
};

/* Sends datagram k of message m alone (same destination and source, no UDP_SEGMENT). */
static int send_one(int fd, struct send_msg *m, struct iovec *iov, int k) {
  struct msghdr h;
  memset(&h, 0, sizeof h);
  h.msg_name = &m->to;
  h.msg_namelen = m->to.v4.sin_family == AF_INET ? sizeof m->to.v4 : sizeof m->to.v6;
  h.msg_iov = &iov[m->first + k];
  h.msg_iovlen = 1;
  if (m->pktinfo_len) {
    h.msg_control = m->ctrl.buf;
    h.msg_controllen = m->pktinfo_len;
  }
  ssize_t r;
  do {
    r = sendmsg(fd, &h, 0);
  } while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : 0;
}

static void set_status(int32_t **metas, struct send_msg *m, int32_t status) {
  for (int k = 0; k < m->n; k++) metas[m->first + k][UDP_M_STATUS] = status;
}

/* The sticky source of message m is gone (or unusable): its datagrams say so (HASLOCAL = 2),
 * it goes on without one, and *dropped is set. */
static void drop_source(int32_t **metas, struct send_msg *m, int *dropped) {
  for (int k = 0; k < m->n; k++) metas[m->first + k][UDP_M_HASLOCAL] = 2;
  m->pktinfo_len = 0;
  *dropped = 1;
}

/* Sends messages msgs[0..n) (all on fd); statuses go to the datagrams' descriptors. *gso_off
 * is set when the kernel refused segmentation offload on this socket (EIO). Returns how many
 * datagrams were sent. */
static int send_run(int fd, struct mmsghdr *hdrs, struct send_msg *msgs, size_t n, struct iovec *iov,
                    int32_t **metas, int *gso_off, int32_t *gso_stats) {
  size_t j = 0;
  int sent = 0, dropped = 0;
  while (j < n) {
    int r = sendmmsg(fd, hdrs + j, (unsigned)(n - j), 0);
    if (r > 0) {
      for (int k = 0; k < r; k++) {
        struct send_msg *m = &msgs[j + k];
        set_status(metas, m, 0);
        sent += m->n;
        if (m->n > 1 && gso_stats) {
          gso_stats[0]++;
          gso_stats[1] += m->n;
        }
      }
      j += (size_t)r;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    int e = r < 0 ? errno : EIO;
    struct send_msg *m = &msgs[j];
    struct msghdr *h = &hdrs[j].msg_hdr;
    if (e == EAGAIN || e == EWOULDBLOCK) {
      for (; j < n; j++) set_status(metas, &msgs[j], -EAGAIN); /* socket buffer full: drop */
      break;
    }
    if (m->n > 1 && (e == EIO || e == EMSGSIZE || e == EINVAL)) {
      /* Segmentation refused: EIO (the route's device cannot, e.g. IPsec) stops it on this
       * socket; EMSGSIZE or EINVAL (a segment above the path MTU) only for this message. The
       * datagrams go one by one, where a sticky source that is gone shows as such. */
      if (e == EIO) *gso_off = 1;
      for (int k = 0; k < m->n; k++) {
        int32_t *mk = metas[m->first + k];
        int rr = send_one(fd, m, iov, k);
        if (rr < 0 && m->pktinfo_len != 0 && (rr == -ENETUNREACH || rr == -EINVAL || rr == -EADDRNOTAVAIL)) {
          drop_source(metas, m, &dropped);
          rr = send_one(fd, m, iov, k);
        }
        mk[UDP_M_STATUS] = rr < 0 ? rr : 0;
        if (rr == 0) sent++;
      }
    } else if (m->pktinfo_len != 0 && (e == ENETUNREACH || e == EINVAL || e == EADDRNOTAVAIL)) {
      /* The sticky source is gone (or unusable): let the routing table choose, and say so. */
      size_t seg = h->msg_controllen - m->pktinfo_len;
      if (seg) memmove(m->ctrl.buf, m->ctrl.buf + m->pktinfo_len, seg);
      drop_source(metas, m, &dropped);
      h->msg_control = seg ? m->ctrl.buf : NULL;
      h->msg_controllen = seg;
      continue; /* again from this message, without the source */
    } else {
      set_status(metas, m, -e);
    }
    j++;
  }
  /* Datagrams sent after dropping the sticky source report 1. HASLOCAL is 2 only where
   * drop_source put it (JavaScript writes 0 or 1), so nothing to do when none was dropped. */
  if (dropped)
    for (size_t k = 0; k < n; k++)
      for (int d = 0; d < msgs[k].n; d++) {
        int32_t *md = metas[msgs[k].first + d];
        if (md[UDP_M_HASLOCAL] == 2 && md[UDP_M_STATUS] == 0) md[UDP_M_STATUS] = 1;
      }
  return sent;
}

/* Whether descriptors a and b name the same destination and source: family .. peer address
 * always, the local address only when they have one (without, JavaScript leaves stale bytes
 * there, which fill_dest never reads). */
static int same_dest(const int32_t *a, const int32_t *b) {
  for (int k = UDP_M_FAMILY; k < UDP_M_LOCAL; k++)
    if (a[k] != b[k]) return 0;
  if (a[UDP_M_HASLOCAL] != 0)
    for (int k = UDP_M_LOCAL; k < UDP_M_STATUS; k++)
      if (a[k] != b[k]) return 0;
  return 1;
}

/* Fills message m's destination and sticky-source control data from descriptor d. */
static void fill_dest(struct send_msg *m, const int32_t *d, struct msghdr *h) {
  int family = d[UDP_M_FAMILY];
  const uint8_t *addr = (const uint8_t *)(d + UDP_M_ADDR);
  const uint8_t *local = (const uint8_t *)(d + UDP_M_LOCAL);
  int has_local = d[UDP_M_HASLOCAL] != 0;
  uint32_t ifindex = d[UDP_M_IFINDEX] > 0 ? (uint32_t)d[UDP_M_IFINDEX] : 0;
  uint16_t port = (uint16_t)d[UDP_M_PORT];
  memset(&m->ctrl, 0, sizeof m->ctrl);
  m->pktinfo_len = 0;
  h->msg_name = &m->to;
  if (family == 4) {
    memset(&m->to.v4, 0, sizeof m->to.v4);
    m->to.v4.sin_family = AF_INET;
    m->to.v4.sin_port = htons(port);
    memcpy(&m->to.v4.sin_addr, addr, 4);
    h->msg_namelen = sizeof m->to.v4;
    if (has_local) {
      struct cmsghdr *c = (struct cmsghdr *)m->ctrl.buf;
      c->cmsg_level = IPPROTO_IP;
      c->cmsg_type = IP_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
      struct in_pktinfo pi;
      memset(&pi, 0, sizeof pi);
      memcpy(&pi.ipi_spec_dst, local, 4);
      memcpy(CMSG_DATA(c), &pi, sizeof pi);
      m->pktinfo_len = CMSG_SPACE(sizeof(struct in_pktinfo));
    }
  } else {
    memset(&m->to.v6, 0, sizeof m->to.v6);
    m->to.v6.sin6_family = AF_INET6;
    m->to.v6.sin6_port = htons(port);
    memcpy(&m->to.v6.sin6_addr, addr, 16);
    if (is_link_local6(addr)) m->to.v6.sin6_scope_id = ifindex;
    h->msg_namelen = sizeof m->to.v6;
    if (has_local) {
      struct cmsghdr *c = (struct cmsghdr *)m->ctrl.buf;
      c->cmsg_level = IPPROTO_IPV6;
      c->cmsg_type = IPV6_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof(struct in6_pktinfo));
      struct in6_pktinfo pi;
      memset(&pi, 0, sizeof pi);
      memcpy(&pi.ipi6_addr, local, 16);
      /* Pin the interface only for link-local sources, where the address needs a scope. */
      pi.ipi6_ifindex = is_link_local6(local) ? ifindex : 0;
      memcpy(CMSG_DATA(c), &pi, sizeof pi);
      m->pktinfo_len = CMSG_SPACE(sizeof(struct in6_pktinfo));
    }
  }
}

/*
 * udpSendBatch(fd4, fd6, data, meta, count[, ctl]) -> number of datagrams sent. meta holds
 * `count` descriptors (see common.h); each gets STATUS = 0 (sent), 1 (sent after dropping the
 * sticky source) or -errno, and HASLOCAL = 2 when the sticky source was rejected by the kernel.
 * ctl (Int32Array of 3), when given: [0] bit 0 / bit 1 = UDP GSO on for the IPv4 / IPv6 socket
 * (cleared here when the kernel refuses it with EIO); [1] += GSO messages sent, [2] += the
 * datagrams in them. With GSO, consecutive datagrams to one destination (and from one source)
 * of one size (the last may be shorter) leave as one message of at most 64 segments and 64 KiB.
 */
static napi_value udp_send_batch(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  int32_t fd4, fd6, count;
  uint8_t *data;
  size_t datalen, metalen, ctllen = 0;
  int32_t *meta, *ctl = NULL;
  size_t argc = 6;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    wgts_throw_last(env, "napi_get_cb_info");
    return NULL;
  }
  if (argc < 5) return wgts_throw_type(env, "wgts: missing arguments");
  if (wgts_get_i32(env, argv[0], &fd4) < 0 || wgts_get_i32(env, argv[1], &fd6) < 0 ||
      wgts_get_bytes(env, argv[2], &data, &datalen) < 0 ||
      wgts_get_i32array(env, argv[3], &meta, &metalen) < 0 || wgts_get_i32(env, argv[4], &count) < 0)
    return NULL;
  if (argc >= 6) {
    napi_valuetype t;
    if (napi_typeof(env, argv[5], &t) != napi_ok) return NULL;
    if (t != napi_undefined && (wgts_get_i32array(env, argv[5], &ctl, &ctllen) < 0 || ctllen < 3))
      return wgts_throw_type(env, "wgts: udpSendBatch control must be an Int32Array of 3");
  }
  if (count < 0 || count > MAX_SEND || (size_t)count > metalen / UDP_META_STRIDE)
    return wgts_throw_type(env, "wgts: bad message count");

  struct mmsghdr hdrs[MAX_SEND];
  struct send_msg msgs[MAX_SEND];
  struct iovec iov[MAX_SEND];
  int32_t *metas[MAX_SEND];
  int total = 0;
  size_t i = 0;
  while (i < (size_t)count) {
    int family = meta[i * UDP_META_STRIDE + UDP_M_FAMILY];
    int fd = family == 4 ? fd4 : family == 6 ? fd6 : -1;
    int gso = ctl && (ctl[0] & (family == 4 ? 1 : 2));
    size_t limit = family == 4 ? 65507 : 65527;
    size_t nmsg = 0, niov = 0;
    struct send_msg *cur = NULL;
    size_t cur_bytes = 0, cur_seg = 0;
    while (i < (size_t)count) {
      int32_t *m = meta + i * UDP_META_STRIDE;
      if (m[UDP_M_FAMILY] != family) break;
      i++;
      int32_t off = m[UDP_M_OFF], len = m[UDP_M_LEN], port = m[UDP_M_PORT];
      if (fd < 0 || off < 0 || len < 0 || (size_t)off > datalen ||
          (size_t)len > datalen - (size_t)off || port < 0 || port > 65535) {
        m[UDP_M_STATUS] = fd < 0 ? -EAFNOSUPPORT : -EINVAL;
        continue;
      }
      /* Joins the current message if it goes to the same place, is no longer than its
       * segments, follows no shorter one, and fits. */
      if (gso && cur && cur->n < GSO_MAX_SEGS && (size_t)len <= cur_seg && len > 0 &&
          cur_bytes % cur_seg == 0 && cur_bytes + (size_t)len <= limit &&
          same_dest(metas[cur->first], m)) {
        iov[niov].iov_base = data + off;
        iov[niov].iov_len = (size_t)len;
        metas[niov++] = m;
        cur->n++;
        cur_bytes += (size_t)len;
        continue;
      }
      cur = &msgs[nmsg];
      struct msghdr *h = &hdrs[nmsg].msg_hdr;
      memset(&hdrs[nmsg], 0, sizeof hdrs[nmsg]);
      fill_dest(cur, m, h);
      cur->first = (int)niov;
      cur->n = 1;
      cur_bytes = cur_seg = (size_t)len;
      iov[niov].iov_base = data + off;
      iov[niov].iov_len = (size_t)len;
      metas[niov++] = m;
      nmsg++;
    }
    /* Iovec and control pointers once the messages are complete. */
    for (size_t k = 0; k < nmsg; k++) {
      struct send_msg *sm = &msgs[k];
      struct msghdr *h = &hdrs[k].msg_hdr;
      h->msg_iov = &iov[sm->first];
      h->msg_iovlen = (size_t)sm->n;
      size_t clen = sm->pktinfo_len;
      if (sm->n > 1) {
        struct cmsghdr *c = (struct cmsghdr *)(sm->ctrl.buf + clen);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        uint16_t seg = (uint16_t)iov[sm->first].iov_len;
        memcpy(CMSG_DATA(c), &seg, sizeof seg);
        clen += SEG_CTRL;
      }
      h->msg_control = clen ? sm->ctrl.buf : NULL;
      h->msg_controllen = clen;
    }
    if (nmsg > 0) {
      int gso_off = 0;
      total += send_run(fd, hdrs, msgs, nmsg, iov, metas, &gso_off, ctl ? ctl + 1 : NULL);
      if (gso_off) ctl[0] &= ~(family == 4 ? 1 : 2);
    }
  }
  return wgts_i32(env, total);
}

/*
 * udpSetOffload(fd, gro) -> bits: 1 = the kernel has UDP GSO (UDP_SEGMENT, Linux 4.18),
 * 2 = UDP GRO is on for receives (UDP_GRO, Linux 5.0; asked only when gro is true).
 */
static napi_value udp_set_offload(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  bool gro;
  if (wgts_get_args(env, info, 2, argv) < 0 || wgts_get_i32(env, argv[0], &fd) < 0) return NULL;
  if (napi_get_value_bool(env, argv[1], &gro) != napi_ok) return wgts_throw_type(env, "wgts: expected a boolean");
  int bits = 0, v = 0;
  socklen_t vl = sizeof v;
  if (getsockopt(fd, SOL_UDP, UDP_SEGMENT, &v, &vl) == 0) bits |= 1;
  int one = 1;
  if (gro && setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0) bits |= 2;
  return wgts_i32(env, bits);
}

napi_status wgts_init_udp(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"udpOpen", NULL, udp_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sockSetMark", NULL, sock_set_mark, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpSendBatch", NULL, udp_send_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpSetOffload", NULL, udp_set_offload, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
