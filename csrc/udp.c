/*
 * UDP: one IPv4 and one IPv6 (IPV6_V6ONLY) socket on the same port, like wireguard-go's
 * StdNetBind. recvmmsg/sendmmsg batches; IP_PKTINFO / IPV6_RECVPKTINFO for the sticky source.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "common.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_BATCH 64
#define SOCK_BUF (7 << 20) /* like wireguard-go: 7 MiB socket buffers when allowed */
#define CTRL_SIZE (CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct in_pktinfo)))

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
      }
    }
    m[UDP_M_OFF] = (int32_t)((size_t)i * UDP_SLOT);
    m[UDP_M_LEN] = (int32_t)msgs[i].msg_len;
    count++;
  }
  return count;
}

struct send_slot {
  union {
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
  } to;
  union {
    char buf[CTRL_SIZE];
    struct cmsghdr align;
  } ctrl;
  struct iovec iov;
};

static int sendmsg_retry(int fd, struct msghdr *h) {
  ssize_t r;
  do {
    r = sendmsg(fd, h, 0);
  } while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : 0;
}

/* Sends msgs[0..n) (all of one family) on fd; statuses go to meta. Returns how many were sent. */
static int send_run(int fd, struct mmsghdr *msgs, int32_t **metas, size_t n) {
  size_t j = 0;
  int sent = 0;
  while (j < n) {
    int r = sendmmsg(fd, msgs + j, (unsigned)(n - j), 0);
    if (r > 0) {
      for (int k = 0; k < r; k++) metas[j + k][UDP_M_STATUS] = 0;
      j += (size_t)r;
      sent += r;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    int e = r < 0 ? errno : EIO;
    if (e == EAGAIN || e == EWOULDBLOCK) {
      for (; j < n; j++) metas[j][UDP_M_STATUS] = -EAGAIN; /* socket buffer full: drop */
      break;
    }
    int32_t *m = metas[j];
    struct msghdr *h = &msgs[j].msg_hdr;
    if (h->msg_controllen != 0 && (e == ENETUNREACH || e == EINVAL || e == EADDRNOTAVAIL)) {
      /* The sticky source is gone (or unusable): let the routing table choose, and say so. */
      m[UDP_M_HASLOCAL] = 2;
      h->msg_control = NULL;
      h->msg_controllen = 0;
      int rr = sendmsg_retry(fd, h);
      m[UDP_M_STATUS] = rr < 0 ? rr : 1;
      if (rr == 0) sent++;
    } else {
      m[UDP_M_STATUS] = -e;
    }
    j++;
  }
  return sent;
}

/*
 * udpSendBatch(fd4, fd6, data, meta, count) -> number of datagrams sent. meta holds `count`
 * descriptors (see common.h); each gets STATUS = 0 (sent), 1 (sent after dropping the sticky
 * source) or -errno, and HASLOCAL = 2 when the sticky source was rejected by the kernel.
 */
static napi_value udp_send_batch(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int32_t fd4, fd6, count;
  uint8_t *data;
  size_t datalen, metalen;
  int32_t *meta;
  if (wgts_get_args(env, info, 5, argv) < 0 || wgts_get_i32(env, argv[0], &fd4) < 0 ||
      wgts_get_i32(env, argv[1], &fd6) < 0 || wgts_get_bytes(env, argv[2], &data, &datalen) < 0 ||
      wgts_get_i32array(env, argv[3], &meta, &metalen) < 0 ||
      wgts_get_i32(env, argv[4], &count) < 0)
    return NULL;
  if (count < 0 || (size_t)count > metalen / UDP_META_STRIDE)
    return wgts_throw_type(env, "wgts: bad message count");

  struct mmsghdr msgs[MAX_BATCH];
  struct send_slot slots[MAX_BATCH];
  int32_t *metas[MAX_BATCH];
  int total = 0;
  size_t i = 0;
  while (i < (size_t)count) {
    int family = meta[i * UDP_META_STRIDE + UDP_M_FAMILY];
    int fd = family == 4 ? fd4 : family == 6 ? fd6 : -1;
    size_t n = 0;
    while (i < (size_t)count && n < MAX_BATCH) {
      int32_t *m = meta + i * UDP_META_STRIDE;
      if (m[UDP_M_FAMILY] != family) break;
      i++;
      int32_t off = m[UDP_M_OFF], len = m[UDP_M_LEN], port = m[UDP_M_PORT];
      if (fd < 0 || off < 0 || len < 0 || (size_t)off > datalen ||
          (size_t)len > datalen - (size_t)off || port < 0 || port > 65535) {
        m[UDP_M_STATUS] = fd < 0 ? -EAFNOSUPPORT : -EINVAL;
        continue;
      }
      struct send_slot *s = &slots[n];
      struct msghdr *h = &msgs[n].msg_hdr;
      memset(&msgs[n], 0, sizeof msgs[n]);
      memset(&s->ctrl, 0, sizeof s->ctrl);
      s->iov.iov_base = data + off;
      s->iov.iov_len = (size_t)len;
      h->msg_iov = &s->iov;
      h->msg_iovlen = 1;
      h->msg_name = &s->to;
      const uint8_t *addr = (const uint8_t *)(m + UDP_M_ADDR);
      const uint8_t *local = (const uint8_t *)(m + UDP_M_LOCAL);
      int has_local = m[UDP_M_HASLOCAL] != 0;
      uint32_t ifindex = m[UDP_M_IFINDEX] > 0 ? (uint32_t)m[UDP_M_IFINDEX] : 0;
      if (family == 4) {
        memset(&s->to.v4, 0, sizeof s->to.v4);
        s->to.v4.sin_family = AF_INET;
        s->to.v4.sin_port = htons((uint16_t)port);
        memcpy(&s->to.v4.sin_addr, addr, 4);
        h->msg_namelen = sizeof s->to.v4;
        if (has_local) {
          struct cmsghdr *c = (struct cmsghdr *)s->ctrl.buf;
          c->cmsg_level = IPPROTO_IP;
          c->cmsg_type = IP_PKTINFO;
          c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
          struct in_pktinfo pi;
          memset(&pi, 0, sizeof pi);
          memcpy(&pi.ipi_spec_dst, local, 4);
          memcpy(CMSG_DATA(c), &pi, sizeof pi);
          h->msg_control = s->ctrl.buf;
          h->msg_controllen = CMSG_SPACE(sizeof(struct in_pktinfo));
        }
      } else {
        memset(&s->to.v6, 0, sizeof s->to.v6);
        s->to.v6.sin6_family = AF_INET6;
        s->to.v6.sin6_port = htons((uint16_t)port);
        memcpy(&s->to.v6.sin6_addr, addr, 16);
        if (is_link_local6(addr)) s->to.v6.sin6_scope_id = ifindex;
        h->msg_namelen = sizeof s->to.v6;
        if (has_local) {
          struct cmsghdr *c = (struct cmsghdr *)s->ctrl.buf;
          c->cmsg_level = IPPROTO_IPV6;
          c->cmsg_type = IPV6_PKTINFO;
          c->cmsg_len = CMSG_LEN(sizeof(struct in6_pktinfo));
          struct in6_pktinfo pi;
          memset(&pi, 0, sizeof pi);
          memcpy(&pi.ipi6_addr, local, 16);
          /* Pin the interface only for link-local sources, where the address needs a scope. */
          pi.ipi6_ifindex = is_link_local6(local) ? ifindex : 0;
          memcpy(CMSG_DATA(c), &pi, sizeof pi);
          h->msg_control = s->ctrl.buf;
          h->msg_controllen = CMSG_SPACE(sizeof(struct in6_pktinfo));
        }
      }
      metas[n] = m;
      n++;
    }
    if (n > 0) total += send_run(fd, msgs, metas, n);
  }
  return wgts_i32(env, total);
}

napi_status wgts_init_udp(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"udpOpen", NULL, udp_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sockSetMark", NULL, sock_set_mark, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpSendBatch", NULL, udp_send_batch, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
