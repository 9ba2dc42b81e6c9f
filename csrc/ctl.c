/*
 * The control socket of the host service (docs/SERVICE.md): an abstract-namespace UNIX
 * SOCK_SEQPACKET socket; one packet per message, a namespace fd passed with SCM_RIGHTS, the
 * peer's credentials from SO_PEERCRED / SO_PEERGROUPS. Every socket is non-blocking and
 * CLOEXEC; the event loop watches them with pollNotify (poll.c).
 */
#include "common.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59 /* Linux 4.13 */
#endif

#define LISTEN_BACKLOG 512
/* Room for this many descriptors in one receive: enough to see (and close) a few extra. */
#define RECV_MAX_FDS 16
#define GROUPS_INLINE 64

/* An abstract address: sun_path[0] = 0, then the name's bytes, no terminating NUL. */
static int get_abstract(napi_env env, napi_value v, struct sockaddr_un *sa, socklen_t *len, char *shown,
                        size_t shownlen) {
  char name[sizeof sa->sun_path + 1];
  size_t n = 0;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string ||
      napi_get_value_string_utf8(env, v, name, sizeof name, &n) != napi_ok || n == 0 ||
      n >= sizeof sa->sun_path || strlen(name) != n) {
    wgts_throw_type(env, "wgts: abstract socket name must be 1 to 107 bytes without NUL");
    return -1;
  }
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  memcpy(sa->sun_path + 1, name, n);
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
  snprintf(shown, shownlen, "@%s", name);
  return 0;
}

static napi_value throw_ctl(napi_env env, int err, const char *op, const char *who) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s %s: %s", op, who, strerror(err));
  return wgts_throw_errno_msg(env, err, msg);
}

static int set_i32(napi_env env, napi_value obj, const char *key, int64_t v) {
  napi_value x;
  if (napi_create_int64(env, v, &x) != napi_ok || napi_set_named_property(env, obj, key, x) != napi_ok) {
    wgts_throw_last(env, key);
    return -1;
  }
  return 0;
}

/*
 * {fd, pid, uid, gid, groups} of the peer of connected socket s (SO_PEERCRED, SO_PEERGROUPS),
 * or NULL with -errno in *err (nothing thrown) or a pending exception (*err = 0).
 */
static napi_value peer_object(napi_env env, int s, int *err) {
  *err = 0;
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
    *err = -errno;
    return NULL;
  }
  gid_t inline_groups[GROUPS_INLINE];
  gid_t *groups = inline_groups;
  len = sizeof inline_groups;
  if (getsockopt(s, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
    if (errno != ERANGE) {
      *err = -errno;
      return NULL;
    }
    /* len is now the size needed (NGROUPS_MAX = 65536 groups at most: 256 KiB). */
    groups = malloc(len);
    if (!groups) {
      *err = -ENOMEM;
      return NULL;
    }
    if (getsockopt(s, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
      *err = -errno;
      free(groups);
      return NULL;
    }
  }
  size_t count = len / sizeof(gid_t);
  napi_value obj, arr = NULL, g;
  int ok = napi_create_object(env, &obj) == napi_ok && set_i32(env, obj, "fd", s) == 0 &&
           set_i32(env, obj, "pid", cred.pid) == 0 && set_i32(env, obj, "uid", cred.uid) == 0 &&
           set_i32(env, obj, "gid", cred.gid) == 0 && napi_create_array_with_length(env, count, &arr) == napi_ok;
  for (size_t i = 0; ok && i < count; i++)
    ok = napi_create_int64(env, groups[i], &g) == napi_ok && napi_set_element(env, arr, (uint32_t)i, g) == napi_ok;
  ok = ok && napi_set_named_property(env, obj, "groups", arr) == napi_ok;
  if (groups != inline_groups) free(groups);
  if (!ok) {
    wgts_throw_last(env, "peer credentials");
    return NULL;
  }
  return obj;
}

/* ctlListen(name, nsFd) -> fd: bound and listening (backlog 512), non-blocking, CLOEXEC. */
static napi_value ctl_listen(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t nsfd;
  struct sockaddr_un sa;
  socklen_t salen;
  char shown[sizeof sa.sun_path + 2];
  if (wgts_get_args(env, info, 2, argv) < 0 || get_abstract(env, argv[0], &sa, &salen, shown, sizeof shown) < 0 ||
      wgts_get_i32(env, argv[1], &nsfd) < 0)
    return NULL;
  int s = wgts_socket_in_netns(nsfd, AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0);
  if (s < 0) return throw_ctl(env, -s, "socket for", shown);
  if (bind(s, (struct sockaddr *)&sa, salen) < 0) {
    int e = errno;
    close(s);
    return throw_ctl(env, e, "bind", shown);
  }
  if (listen(s, LISTEN_BACKLOG) < 0) {
    int e = errno;
    close(s);
    return throw_ctl(env, e, "listen on", shown);
  }
  return wgts_i32(env, s);
}

/* ctlAccept(fd) -> {fd, pid, uid, gid, groups}, or null when no connection is pending. */
static napi_value ctl_accept(napi_env env, napi_callback_info info) {
  napi_value argv[1], null;
  int32_t fd;
  if (wgts_get_args(env, info, 1, argv) < 0 || wgts_get_i32(env, argv[0], &fd) < 0) return NULL;
  for (;;) {
    int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        NAPI_CALL(env, napi_get_null(env, &null));
        return null;
      }
      return throw_ctl(env, errno, "accept on", "the control socket");
    }
    int err;
    napi_value obj = peer_object(env, c, &err);
    if (obj) return obj;
    close(c);
    if (err) return throw_ctl(env, -err, "peer credentials of", "a control connection");
    return NULL;
  }
}

/* ctlConnect(name, nsFd) -> {fd, pid, uid, gid, groups} of the server. Non-blocking. */
static napi_value ctl_connect(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t nsfd;
  struct sockaddr_un sa;
  socklen_t salen;
  char shown[sizeof sa.sun_path + 2];
  if (wgts_get_args(env, info, 2, argv) < 0 || get_abstract(env, argv[0], &sa, &salen, shown, sizeof shown) < 0 ||
      wgts_get_i32(env, argv[1], &nsfd) < 0)
    return NULL;
  int s = wgts_socket_in_netns(nsfd, AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0);
  if (s < 0) return throw_ctl(env, -s, "socket for", shown);
  int r;
  do r = connect(s, (struct sockaddr *)&sa, salen);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    /* EAGAIN: the listener's backlog is full (a UNIX socket never says EINPROGRESS). */
    int e = errno;
    close(s);
    return throw_ctl(env, e, "connect to", shown);
  }
  int err;
  napi_value obj = peer_object(env, s, &err);
  if (obj) return obj;
  close(s);
  if (err) return throw_ctl(env, -err, "peer credentials of", shown);
  return NULL;
}

static void close_fds(const struct msghdr *m) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR((struct msghdr *)m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      close(fd);
    }
  }
}

/*
 * ctlRecv(fd, buf) -> {length, fd, truncated, fdsRefused}, or null when nothing is pending.
 * length 0: the peer closed (or reset) the connection. fd: the one descriptor that came with
 * the packet (CLOEXEC), or -1. truncated: the packet was longer than buf (the rest is lost).
 * fdsRefused: more than one descriptor came, or the kernel had to drop some (MSG_CTRUNC):
 * every descriptor that arrived was closed and fd is -1.
 */
static napi_value ctl_recv(napi_env env, napi_callback_info info) {
  napi_value argv[2], obj, null, b;
  int32_t fd;
  uint8_t *buf;
  size_t buflen;
  if (wgts_get_args(env, info, 2, argv) < 0 || wgts_get_i32(env, argv[0], &fd) < 0 ||
      wgts_get_bytes(env, argv[1], &buf, &buflen) < 0)
    return NULL;
  union {
    struct cmsghdr align;
    char raw[CMSG_SPACE(RECV_MAX_FDS * sizeof(int))];
  } ctl;
  struct iovec iov = {.iov_base = buf, .iov_len = buflen};
  struct msghdr m;
  ssize_t n;
  /*
   * ECONNRESET: the peer closed with data of ours unread. The kernel reports that before any
   * packet the peer sent first, and clears it, so those are still there: read once more.
   */
  for (int tries = 0; tries < 2; tries++) {
    do {
      memset(&m, 0, sizeof m);
      m.msg_iov = &iov;
      m.msg_iovlen = 1;
      m.msg_control = ctl.raw;
      m.msg_controllen = sizeof ctl.raw;
      n = recvmsg(fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n >= 0 || errno != ECONNRESET) break;
    if (tries == 1) n = 0;
  }
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      NAPI_CALL(env, napi_get_null(env, &null));
      return null;
    }
    return throw_ctl(env, errno, "receive on", "a control connection");
  }
  int got = -1, count = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    if (k > 0 && got < 0) memcpy(&got, CMSG_DATA(c), sizeof got);
    count += (int)k;
  }
  bool refused = count > 1 || (m.msg_flags & MSG_CTRUNC);
  if (refused || n == 0) {
    close_fds(&m);
    got = -1;
  }
  if (napi_create_object(env, &obj) != napi_ok || set_i32(env, obj, "length", n) < 0 ||
      set_i32(env, obj, "fd", got) < 0 || napi_get_boolean(env, (m.msg_flags & MSG_TRUNC) != 0, &b) != napi_ok ||
      napi_set_named_property(env, obj, "truncated", b) != napi_ok || napi_get_boolean(env, refused, &b) != napi_ok ||
      napi_set_named_property(env, obj, "fdsRefused", b) != napi_ok) {
    if (got >= 0) close(got);
    wgts_throw_last(env, "ctlRecv result");
    return NULL;
  }
  return obj;
}

/*
 * ctlSend(fd, data, passFd) -> bytes sent or -errno (EAGAIN: the peer's queue is full; EPIPE,
 * or ECONNRESET when it left packets of ours unread: it is gone). One packet; passFd >= 0 goes along with SCM_RIGHTS (the caller keeps its copy).
 */
static napi_value ctl_send(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd, pass;
  uint8_t *data;
  size_t len;
  if (wgts_get_args(env, info, 3, argv) < 0 || wgts_get_i32(env, argv[0], &fd) < 0 ||
      wgts_get_bytes(env, argv[1], &data, &len) < 0 || wgts_get_i32(env, argv[2], &pass) < 0)
    return NULL;
  union {
    struct cmsghdr align;
    char raw[CMSG_SPACE(sizeof(int))];
  } ctl;
  struct iovec iov = {.iov_base = data, .iov_len = len};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
  if (pass >= 0) {
    memset(&ctl, 0, sizeof ctl);
    m.msg_control = ctl.raw;
    m.msg_controllen = sizeof ctl.raw;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &pass, sizeof pass);
  }
  ssize_t n;
  do n = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  return wgts_i32(env, n < 0 ? -errno : (int32_t)n);
}

napi_status wgts_init_ctl(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"ctlListen", NULL, ctl_listen, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ctlAccept", NULL, ctl_accept, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ctlConnect", NULL, ctl_connect, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ctlRecv", NULL, ctl_recv, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ctlSend", NULL, ctl_send, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
