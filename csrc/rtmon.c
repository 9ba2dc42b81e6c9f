/*
 * Route monitor: an rtnetlink socket subscribed to IPv4 and IPv6 route changes
 * (RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE), on which route lookups (RTM_GETROUTE) are asked too.
 * Read on the event loop by poll.c (MODE_NETLINK): whole netlink datagrams, parsed in
 * JavaScript (tun/rtmon.ts). ENOBUFS on a read means notifications were lost (the socket
 * overflowed): the caller treats it as "anything may have changed", the socket stays usable.
 */
#include "common.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RTMON_RCVBUF (1 << 20)

/* rtmonOpen() -> [fd, portId]: a non-blocking NETLINK_ROUTE socket in the current namespace. */
static napi_value rtmon_open(napi_env env, napi_callback_info info) {
  (void)info;
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0) return wgts_throw_errno(env, "socket(AF_NETLINK)", errno);
  int size = RTMON_RCVBUF;
  if (setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
    (void)setsockopt(s, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  struct sockaddr_nl a;
  memset(&a, 0, sizeof a);
  a.nl_family = AF_NETLINK;
  a.nl_groups = RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;
  socklen_t len = sizeof a;
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || getsockname(s, (struct sockaddr *)&a, &len) < 0) {
    int e = errno;
    close(s);
    return wgts_throw_errno(env, "bind(AF_NETLINK)", e);
  }
  napi_value result, v0, v1;
  if (napi_create_array_with_length(env, 2, &result) != napi_ok || napi_create_int32(env, s, &v0) != napi_ok ||
      napi_create_uint32(env, a.nl_pid, &v1) != napi_ok || napi_set_element(env, result, 0, v0) != napi_ok ||
      napi_set_element(env, result, 1, v1) != napi_ok) {
    close(s);
    wgts_throw_last(env, "rtmonOpen result");
    return NULL;
  }
  return result;
}

static void add_attr(uint8_t *buf, size_t *off, unsigned short type, const void *data, size_t len) {
  struct rtattr *ra = (struct rtattr *)(buf + *off);
  ra->rta_type = type;
  ra->rta_len = (unsigned short)RTA_LENGTH(len);
  memcpy(RTA_DATA(ra), data, len);
  *off += RTA_SPACE(len);
}

/*
 * rtmonQuery(fd, seq, family, dst, src|null, mark) -> 0 or -errno: asks the kernel for the
 * route it would use to `dst` (4 or 16 bytes), from `src` if given, with fwmark `mark`. The
 * answer comes back on the socket as an RTM_NEWROUTE (or an NLMSG_ERROR) with this `seq`.
 */
static napi_value rtmon_query(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  int32_t fd, family;
  uint32_t seq, mark;
  uint8_t *dst, *src = NULL;
  size_t dstlen, srclen = 0;
  napi_valuetype t;
  if (wgts_get_args(env, info, 6, argv) < 0 || wgts_get_i32(env, argv[0], &fd) < 0 ||
      wgts_get_u32(env, argv[1], &seq) < 0 || wgts_get_i32(env, argv[2], &family) < 0 ||
      wgts_get_bytes(env, argv[3], &dst, &dstlen) < 0 || napi_typeof(env, argv[4], &t) != napi_ok)
    return NULL;
  if (t != napi_null && t != napi_undefined && wgts_get_bytes(env, argv[4], &src, &srclen) < 0) return NULL;
  if (wgts_get_u32(env, argv[5], &mark) < 0) return NULL;
  size_t alen = family == 4 ? 4 : family == 6 ? 16 : 0;
  if (alen == 0 || dstlen != alen || (src != NULL && srclen != alen))
    return wgts_throw_type(env, "wgts: rtmonQuery wants family 4 or 6 and addresses of its size");

  union {
    struct nlmsghdr h;
    uint8_t b[NLMSG_SPACE(sizeof(struct rtmsg)) + 3 * RTA_SPACE(16)];
  } req;
  memset(&req, 0, sizeof req);
  struct rtmsg *rt = NLMSG_DATA(&req.h);
  rt->rtm_family = family == 4 ? AF_INET : AF_INET6;
  rt->rtm_dst_len = (unsigned char)(alen * 8);
  size_t off = NLMSG_SPACE(sizeof(struct rtmsg));
  add_attr(req.b, &off, RTA_DST, dst, alen);
  if (src != NULL) {
    rt->rtm_src_len = (unsigned char)(alen * 8);
    add_attr(req.b, &off, RTA_SRC, src, alen);
  }
  if (mark != 0) add_attr(req.b, &off, RTA_MARK, &mark, sizeof mark);
  req.h.nlmsg_len = (uint32_t)off;
  req.h.nlmsg_type = RTM_GETROUTE;
  req.h.nlmsg_flags = NLM_F_REQUEST;
  req.h.nlmsg_seq = seq;
  struct sockaddr_nl to;
  memset(&to, 0, sizeof to);
  to.nl_family = AF_NETLINK;
  ssize_t r;
  do {
    r = sendto(fd, req.b, off, 0, (struct sockaddr *)&to, sizeof to);
  } while (r < 0 && errno == EINTR);
  return wgts_i32(env, r < 0 ? -errno : 0);
}

napi_status wgts_init_rtmon(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"rtmonOpen", NULL, rtmon_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"rtmonQuery", NULL, rtmon_query, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
