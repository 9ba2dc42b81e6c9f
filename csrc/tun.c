/* TUN devices: open /dev/net/tun (IFF_TUN | IFF_NO_PI), MTU, probe, synchronous writes. */
#include "common.h"

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

/* tunOpen(name) -> [fd, actualName]. The fd is O_NONBLOCK and O_CLOEXEC. */
static napi_value tun_open(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  char name[IFNAMSIZ];
  if (wgts_get_args(env, info, 1, argv) < 0 || get_ifname(env, argv[0], name) < 0) return NULL;

  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return wgts_throw_errno(env, "open /dev/net/tun", errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  /* IFF_TUN_EXCL: fail with EBUSY instead of attaching to an existing (persistent) device. */
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_TUN_EXCL;
  memcpy(ifr.ifr_name, name, strlen(name) + 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    close(fd);
    return wgts_throw_errno(env, "TUNSETIFF", e);
  }
  ifr.ifr_name[IFNAMSIZ - 1] = 0;

  napi_value result, fdv, namev;
  NAPI_CALL(env, napi_create_array_with_length(env, 2, &result));
  if (napi_create_int32(env, fd, &fdv) != napi_ok ||
      napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &namev) != napi_ok ||
      napi_set_element(env, result, 0, fdv) != napi_ok ||
      napi_set_element(env, result, 1, namev) != napi_ok) {
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

/* fdWrite(fd, bytes) -> bytes written or -errno (never blocks: the fd is non-blocking). */
static napi_value fd_write(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  uint8_t *data;
  size_t len;
  if (wgts_get_args(env, info, 2, argv) < 0 || wgts_get_i32(env, argv[0], &fd) < 0 ||
      wgts_get_bytes(env, argv[1], &data, &len) < 0)
    return NULL;
  ssize_t n;
  do {
    n = write(fd, data, len);
  } while (n < 0 && errno == EINTR);
  return wgts_i32(env, n < 0 ? -errno : (int32_t)n);
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

int wgts_tun_read_batch(int fd, uint8_t *buf, size_t buflen, int32_t *meta, size_t maxpkts,
                        int *err) {
  size_t off = 0;
  int count = 0;
  *err = 0;
  while ((size_t)count < maxpkts && buflen - off >= TUN_MAX_PACKET) {
    ssize_t n = read(fd, buf + off, TUN_MAX_PACKET);
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
      {"fdClose", NULL, fd_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
