/*
 * rtnetlink requests, synchronous and acknowledged, each in the network namespace a namespace
 * file descriptor refers to (-1: the calling thread's own). The netlink socket is created
 * inside that namespace (setns there and back around socket(), see wgts_socket_in_netns) and
 * closed before the call returns: a socket would keep the namespace alive. No process is run.
 *
 * Errors are thrown as Errors whose .code is the errno name and whose message names the
 * operation, with the kernel's extended ACK message when it gave one.
 */
#include "common.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71 /* Linux 5.14 */
#endif
#ifndef RTEXT_FILTER_SKIP_STATS
#define RTEXT_FILTER_SKIP_STATS (1 << 3)
#endif

#define KMSG_MAX 160
#define REQ_MAX 512
#define REPLY_MAX 32768

/* A request under construction: header, family header, attributes. */
struct req {
  union {
    struct nlmsghdr h;
    char raw[REQ_MAX];
  } u;
};

struct linkinfo {
  int index;
  char name[IFNAMSIZ];
};

static void req_init(struct req *r, uint16_t type, uint16_t flags, const void *fam, size_t famlen) {
  memset(r, 0, sizeof *r);
  r->u.h.nlmsg_type = type;
  r->u.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
  r->u.h.nlmsg_len = NLMSG_LENGTH(famlen);
  memcpy(NLMSG_DATA(&r->u.h), fam, famlen);
}

/* Appends one attribute; the requests built here are far below REQ_MAX. */
static void req_put(struct req *r, uint16_t type, const void *data, size_t len) {
  size_t off = NLMSG_ALIGN(r->u.h.nlmsg_len);
  if (off + RTA_SPACE(len) > sizeof r->u.raw) abort();
  struct rtattr *a = (struct rtattr *)(r->u.raw + off);
  a->rta_type = type;
  a->rta_len = (unsigned short)RTA_LENGTH(len);
  memcpy(RTA_DATA(a), data, len);
  r->u.h.nlmsg_len = (uint32_t)(off + RTA_SPACE(len));
}

/* A NETLINK_ROUTE socket in namespace nsfd, with extended ACKs; fd or -errno. */
static int nl_open(int nsfd) {
  int s = wgts_socket_in_netns(nsfd, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
  if (s < 0) return s;
  int one = 1;
  /* Both are optional: without them errors just carry no kernel message. */
  (void)setsockopt(s, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  (void)setsockopt(s, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  /* rtnetlink answers within sendmsg(); the timeout only guards against the impossible. */
  struct timeval tv = {.tv_sec = 5, .tv_usec = 0};
  (void)setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return s;
}

static void parse_extack(const struct nlmsghdr *h, char *kmsg) {
  if (!kmsg || !(h->nlmsg_flags & NLM_F_ACK_TLVS)) return;
  /* With NETLINK_CAP_ACK the error carries only the request's header, then the TLVs. */
  size_t off = NLMSG_LENGTH(sizeof(struct nlmsgerr));
  const char *base = (const char *)h;
  while (off + NLA_HDRLEN <= h->nlmsg_len) {
    const struct nlattr *a = (const struct nlattr *)(base + off);
    if (a->nla_len < NLA_HDRLEN || off + a->nla_len > h->nlmsg_len) return;
    if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG) {
      size_t n = a->nla_len - NLA_HDRLEN;
      if (n >= KMSG_MAX) n = KMSG_MAX - 1;
      memcpy(kmsg, base + off + NLA_HDRLEN, n);
      kmsg[n] = 0;
      kmsg[strcspn(kmsg, "\n")] = 0;
      return;
    }
    off += NLA_ALIGN(a->nla_len);
  }
}

static void parse_link(const struct nlmsghdr *h, struct linkinfo *out) {
  if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg))) return;
  const struct ifinfomsg *ifi = NLMSG_DATA(h);
  out->index = ifi->ifi_index;
  int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *ifi));
  for (const struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (a->rta_type != IFLA_IFNAME) continue;
    size_t n = RTA_PAYLOAD(a);
    if (n >= IFNAMSIZ) n = IFNAMSIZ - 1;
    memcpy(out->name, RTA_DATA(a), n);
    out->name[n] = 0;
  }
}

/*
 * Sends `r` and reads until its ACK: 0 or -errno. A RTM_NEWLINK answer (to RTM_GETLINK) goes
 * into *link; the kernel's message for an error into kmsg (KMSG_MAX bytes), if given.
 */
static int nl_talk(int s, struct req *r, struct linkinfo *link, char *kmsg) {
  static __thread uint32_t seq;
  if (kmsg) kmsg[0] = 0;
  r->u.h.nlmsg_seq = ++seq;
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  ssize_t n;
  do n = sendto(s, r->u.raw, r->u.h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel);
  while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  static __thread union {
    struct nlmsghdr h;
    char raw[REPLY_MAX];
  } buf;
  for (;;) {
    struct sockaddr_nl from;
    struct iovec iov = {.iov_base = buf.raw, .iov_len = sizeof buf.raw};
    struct msghdr m = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1};
    do n = recvmsg(s, &m, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) return errno == EAGAIN ? -ETIMEDOUT : -errno;
    if (m.msg_flags & MSG_TRUNC) return -EMSGSIZE;
    if (from.nl_pid != 0) continue;
    int left = (int)n;
    for (struct nlmsghdr *h = &buf.h; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_seq != r->u.h.nlmsg_seq) continue;
      if (h->nlmsg_type == NLMSG_ERROR) {
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr))) return -EPROTO;
        const struct nlmsgerr *e = NLMSG_DATA(h);
        if (e->error != 0) parse_extack(h, kmsg);
        return e->error;
      }
      if (h->nlmsg_type == RTM_NEWLINK && link) parse_link(h, link);
    }
  }
}

/* RTM_GETLINK by name, or by index when name is NULL: 0 and *out, -ENODEV when there is none. */
static int get_link(int s, int index, const char *name, struct linkinfo *out, char *kmsg) {
  struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = name ? 0 : index};
  struct req r;
  req_init(&r, RTM_GETLINK, 0, &ifi, sizeof ifi);
  if (name) req_put(&r, IFLA_IFNAME, name, strlen(name) + 1);
  uint32_t mask = RTEXT_FILTER_SKIP_STATS;
  req_put(&r, IFLA_EXT_MASK, &mask, sizeof mask);
  memset(out, 0, sizeof *out);
  int err = nl_talk(s, &r, out, kmsg);
  if (err == 0 && out->index <= 0) err = -ENODEV;
  return err;
}

/* RTM_NEWLINK on link `index` of socket s's namespace: into namespace nsfd, renamed if name. */
static int set_netns(int s, int index, int nsfd, const char *name, char *kmsg) {
  struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = index};
  struct req r;
  req_init(&r, RTM_NEWLINK, 0, &ifi, sizeof ifi);
  uint32_t fd = (uint32_t)nsfd;
  req_put(&r, IFLA_NET_NS_FD, &fd, sizeof fd);
  if (name) req_put(&r, IFLA_IFNAME, name, strlen(name) + 1);
  return nl_talk(s, &r, NULL, kmsg);
}

/* RTM_DELLINK by name, or by index when name is NULL. */
static int del_link(int s, int index, const char *name, char *kmsg) {
  struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = name ? 0 : index};
  struct req r;
  req_init(&r, RTM_DELLINK, 0, &ifi, sizeof ifi);
  if (name) req_put(&r, IFLA_IFNAME, name, strlen(name) + 1);
  return nl_talk(s, &r, NULL, kmsg);
}

/* Throws "<op>: [<stage>: ]<strerror>[ (kernel: <kmsg>)][; <note>]" with .code. */
static napi_value throw_op(napi_env env, int err, const char *op, const char *stage, const char *kmsg,
                           const char *note) {
  char msg[512];
  snprintf(msg, sizeof msg, "%s: %s%s%s%s%s%s%s", op, stage ? stage : "", stage ? ": " : "", strerror(err),
           kmsg && kmsg[0] ? " (kernel: " : "", kmsg && kmsg[0] ? kmsg : "", kmsg && kmsg[0] ? ")" : "",
           note ? note : "");
  return wgts_throw_errno_msg(env, err, msg);
}

/* Opens the netlink socket of an operation, or throws (naming the namespace fd). */
static int open_or_throw(napi_env env, int nsfd, const char *op) {
  int s = nl_open(nsfd);
  if (s < 0) {
    char stage[64];
    if (nsfd >= 0)
      snprintf(stage, sizeof stage, "netlink socket in the network namespace of fd %d", nsfd);
    else
      snprintf(stage, sizeof stage, "netlink socket");
    throw_op(env, -s, op, stage, NULL, NULL);
  }
  return s;
}

/* The kernel's dev_valid_name() plus no control characters (tun/ifname.ts). */
static int get_ifname(napi_env env, napi_value v, char name[IFNAMSIZ]) {
  size_t len = 0;
  char buf[IFNAMSIZ + 2];
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string ||
      napi_get_value_string_utf8(env, v, buf, sizeof buf, &len) != napi_ok) {
    wgts_throw_type(env, "wgts: interface name must be a string");
    return -1;
  }
  int bad = len == 0 || len >= IFNAMSIZ || strlen(buf) != len || !strcmp(buf, ".") || !strcmp(buf, "..");
  for (size_t i = 0; i < len && !bad; i++) {
    unsigned char c = (unsigned char)buf[i];
    bad = c == '/' || c == ':' || isspace(c) || c < 0x20 || c == 0x7f;
  }
  if (bad) {
    wgts_throw_type(env, "wgts: invalid interface name (1-15 bytes, no '/', ':', spaces or control characters)");
    return -1;
  }
  memcpy(name, buf, len + 1);
  return 0;
}

/* A namespace fd argument: -1 (the calling thread's namespace) or a descriptor. */
static int get_nsfd(napi_env env, napi_value v, int32_t *fd) {
  if (wgts_get_i32(env, v, fd) < 0) return -1;
  if (*fd < -1) {
    wgts_throw_type(env, "wgts: namespace fd must be -1 or a file descriptor");
    return -1;
  }
  return 0;
}

static int get_ifindex(napi_env env, napi_value v, int32_t *index) {
  if (wgts_get_i32(env, v, index) < 0) return -1;
  if (*index <= 0) {
    wgts_throw_type(env, "wgts: interface index must be a positive integer");
    return -1;
  }
  return 0;
}

/* nlLinkIndex(nsFd, name) -> the index of link `name` in that namespace, 0 if there is none. */
static napi_value nl_link_index(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t nsfd;
  char name[IFNAMSIZ], op[64], kmsg[KMSG_MAX];
  if (wgts_get_args(env, info, 2, argv) < 0 || get_nsfd(env, argv[0], &nsfd) < 0 ||
      get_ifname(env, argv[1], name) < 0)
    return NULL;
  snprintf(op, sizeof op, "index of link %s", name);
  int s = open_or_throw(env, nsfd, op);
  if (s < 0) return NULL;
  struct linkinfo li;
  int err = get_link(s, 0, name, &li, kmsg);
  close(s);
  if (err == -ENODEV) return wgts_i32(env, 0);
  if (err < 0) return throw_op(env, -err, op, NULL, kmsg, NULL);
  return wgts_i32(env, li.index);
}

/*
 * Puts a link that a failed move left in the target namespace under its old name back where it
 * was, or deletes it: the result of a failed move is never a link stranded under a temporary
 * name. Returns what was done, for the error message.
 */
static const char *undo_move(int here, int there, const struct linkinfo *before) {
  struct linkinfo li;
  if (get_link(here, before->index, NULL, &li, NULL) == 0 && !strcmp(li.name, before->name)) return NULL;
  if (get_link(there, 0, before->name, &li, NULL) != 0) return NULL;
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self >= 0) {
    int err = set_netns(there, li.index, self, NULL, NULL);
    close(self);
    if (err == 0) return "; the link was moved back";
  }
  if (del_link(there, li.index, NULL, NULL) == 0) return "; the link was deleted";
  return "; the link could not be moved back nor deleted";
}

/*
 * nlLinkMove(ifindex, nsFd, newName[, precheck = true]) -> the link's index in the target.
 *
 * One RTM_NEWLINK with IFLA_NET_NS_FD and IFLA_IFNAME. The kernel moves the link first, under
 * its current name (it uses IFLA_IFNAME there only when that current name is taken), and
 * renames it afterwards: with `newName` taken in the target, the link would arrive under its
 * old name and the request fail with EEXIST. So the name is looked up there first (EEXIST,
 * nothing moved); should it appear in between, the link is moved back (undo_move) and EEXIST
 * thrown. `precheck` false skips the lookup (tests of that path).
 */
static napi_value nl_link_move(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  size_t argc = 4;
  int32_t index, nsfd;
  bool precheck = true;
  char name[IFNAMSIZ], op[96], kmsg[KMSG_MAX];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) return wgts_throw_type(env, "wgts: missing arguments");
  if (get_ifindex(env, argv[0], &index) < 0 || wgts_get_i32(env, argv[1], &nsfd) < 0 ||
      get_ifname(env, argv[2], name) < 0)
    return NULL;
  if (nsfd < 0) return wgts_throw_type(env, "wgts: namespace fd must be a file descriptor");
  if (argc > 3 && napi_get_value_bool(env, argv[3], &precheck) != napi_ok)
    return wgts_throw_type(env, "wgts: precheck must be a boolean");
  snprintf(op, sizeof op, "move link %d into the network namespace of fd %d as %s", index, nsfd, name);

  int here = open_or_throw(env, -1, op);
  if (here < 0) return NULL;
  int there = open_or_throw(env, nsfd, op);
  if (there < 0) {
    close(here);
    return NULL;
  }
  struct linkinfo before, found;
  int err = get_link(here, index, NULL, &before, kmsg);
  const char *note = NULL;
  if (err < 0) {
    note = err == -ENODEV ? "; no such link in this namespace" : NULL;
    goto fail;
  }
  if (precheck) {
    err = get_link(there, 0, name, &found, kmsg);
    if (err == 0) {
      err = -EEXIST;
      kmsg[0] = 0;
      note = "; a link of that name exists there";
      goto fail;
    }
    if (err != -ENODEV) goto fail;
  }
  err = set_netns(here, index, nsfd, name, kmsg);
  if (err < 0) {
    note = undo_move(here, there, &before);
    goto fail;
  }
  err = get_link(there, 0, name, &found, NULL);
  close(here);
  close(there);
  return wgts_i32(env, err == 0 ? found.index : 0);

fail:
  close(here);
  close(there);
  return throw_op(env, -err, op, NULL, kmsg, note);
}

/* nlAddrAdd(nsFd, ifindex, address, prefixLen, nodad): RTM_NEWADDR (create, exclusive). */
static napi_value nl_addr_add(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int32_t nsfd, index, plen;
  bool nodad = false;
  char text[INET6_ADDRSTRLEN + 1], op[128], kmsg[KMSG_MAX];
  size_t tlen = 0;
  napi_valuetype t;
  if (wgts_get_args(env, info, 5, argv) < 0 || get_nsfd(env, argv[0], &nsfd) < 0 ||
      get_ifindex(env, argv[1], &index) < 0 || wgts_get_i32(env, argv[3], &plen) < 0)
    return NULL;
  if (napi_typeof(env, argv[2], &t) != napi_ok || t != napi_string ||
      napi_get_value_string_utf8(env, argv[2], text, sizeof text, &tlen) != napi_ok ||
      tlen >= sizeof text - 1)
    return wgts_throw_type(env, "wgts: address must be an IPv4 or IPv6 address string");
  if (napi_get_value_bool(env, argv[4], &nodad) != napi_ok)
    return wgts_throw_type(env, "wgts: nodad must be a boolean");
  unsigned char addr[16];
  int family = strchr(text, ':') ? AF_INET6 : AF_INET;
  if (inet_pton(family, text, addr) != 1)
    return wgts_throw_type(env, "wgts: address must be an IPv4 or IPv6 address string");
  size_t alen = family == AF_INET ? 4 : 16;
  if (plen < 0 || plen > (int32_t)alen * 8) return wgts_throw_type(env, "wgts: prefix length out of range");
  snprintf(op, sizeof op, "add address %s/%d to link %d", text, plen, index);

  struct ifaddrmsg ifa = {.ifa_family = (unsigned char)family,
                          .ifa_prefixlen = (unsigned char)plen,
                          .ifa_flags = (unsigned char)(nodad && family == AF_INET6 ? IFA_F_NODAD : 0),
                          .ifa_scope = RT_SCOPE_UNIVERSE,
                          .ifa_index = (unsigned)index};
  struct req r;
  req_init(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof ifa);
  /* As `ip addr add`: without a peer, IFA_ADDRESS is the local address too. */
  req_put(&r, IFA_LOCAL, addr, alen);
  req_put(&r, IFA_ADDRESS, addr, alen);
  int s = open_or_throw(env, nsfd, op);
  if (s < 0) return NULL;
  int err = nl_talk(s, &r, NULL, kmsg);
  close(s);
  if (err < 0) return throw_op(env, -err, op, NULL, kmsg, NULL);
  return NULL;
}

/* nlLinkUp(nsFd, ifindex): IFF_UP on. */
static napi_value nl_link_up(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t nsfd, index;
  char op[64], kmsg[KMSG_MAX];
  if (wgts_get_args(env, info, 2, argv) < 0 || get_nsfd(env, argv[0], &nsfd) < 0 ||
      get_ifindex(env, argv[1], &index) < 0)
    return NULL;
  snprintf(op, sizeof op, "set link %d up", index);
  struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = index, .ifi_flags = IFF_UP, .ifi_change = IFF_UP};
  struct req r;
  req_init(&r, RTM_NEWLINK, 0, &ifi, sizeof ifi);
  int s = open_or_throw(env, nsfd, op);
  if (s < 0) return NULL;
  int err = nl_talk(s, &r, NULL, kmsg);
  close(s);
  if (err < 0) return throw_op(env, -err, op, NULL, kmsg, NULL);
  return NULL;
}

/* nlLinkDel(nsFd, name): RTM_DELLINK by name; ENODEV when there is none. */
static napi_value nl_link_del(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t nsfd;
  char name[IFNAMSIZ], op[64], kmsg[KMSG_MAX];
  if (wgts_get_args(env, info, 2, argv) < 0 || get_nsfd(env, argv[0], &nsfd) < 0 ||
      get_ifname(env, argv[1], name) < 0)
    return NULL;
  snprintf(op, sizeof op, "delete link %s", name);
  int s = open_or_throw(env, nsfd, op);
  if (s < 0) return NULL;
  int err = del_link(s, 0, name, kmsg);
  close(s);
  if (err < 0) return throw_op(env, -err, op, NULL, kmsg, NULL);
  return NULL;
}

/* nlLinkSetMtu(nsFd, name, mtu): IFLA_MTU on link `name`. */
static napi_value nl_link_set_mtu(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t nsfd;
  uint32_t mtu;
  char name[IFNAMSIZ], op[64], kmsg[KMSG_MAX];
  if (wgts_get_args(env, info, 3, argv) < 0 || get_nsfd(env, argv[0], &nsfd) < 0 ||
      get_ifname(env, argv[1], name) < 0 || wgts_get_u32(env, argv[2], &mtu) < 0)
    return NULL;
  snprintf(op, sizeof op, "set the MTU of link %s to %u", name, mtu);
  struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
  struct req r;
  req_init(&r, RTM_NEWLINK, 0, &ifi, sizeof ifi);
  req_put(&r, IFLA_IFNAME, name, strlen(name) + 1);
  req_put(&r, IFLA_MTU, &mtu, sizeof mtu);
  int s = open_or_throw(env, nsfd, op);
  if (s < 0) return NULL;
  int err = nl_talk(s, &r, NULL, kmsg);
  close(s);
  if (err < 0) return throw_op(env, -err, op, NULL, kmsg, NULL);
  return NULL;
}

static napi_value bigint_u64(napi_env env, uint64_t v) {
  napi_value r;
  NAPI_CALL(env, napi_create_bigint_uint64(env, v, &r));
  return r;
}

/*
 * netnsCookie(nsFd) -> bigint: SO_NETNS_COOKIE of a socket made inside the namespace, a 64-bit
 * id the kernel never gives another namespace (unlike an inode number, never reused).
 */
static napi_value netns_cookie(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t nsfd;
  if (wgts_get_args(env, info, 1, argv) < 0 || get_nsfd(env, argv[0], &nsfd) < 0) return NULL;
  int s = wgts_socket_in_netns(nsfd, AF_UNIX, SOCK_DGRAM, 0);
  if (s < 0) {
    char stage[64];
    snprintf(stage, sizeof stage, "socket in the network namespace of fd %d", nsfd);
    return throw_op(env, -s, "network namespace cookie", nsfd >= 0 ? stage : "socket", NULL, NULL);
  }
  uint64_t cookie = 0;
  socklen_t len = sizeof cookie;
  int r = getsockopt(s, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len);
  int e = errno;
  close(s);
  if (r < 0) return throw_op(env, e, "network namespace cookie", "SO_NETNS_COOKIE", NULL, NULL);
  return bigint_u64(env, cookie);
}

/* fdIdentity(fd) -> [dev, ino] as bigints (fstat): a namespace file's identity. */
static napi_value fd_identity(napi_env env, napi_callback_info info) {
  napi_value argv[1], result, dev, ino;
  int32_t fd;
  if (wgts_get_args(env, info, 1, argv) < 0 || wgts_get_i32(env, argv[0], &fd) < 0) return NULL;
  struct stat st;
  if (fstat(fd, &st) < 0) {
    char op[48];
    snprintf(op, sizeof op, "fstat of fd %d", fd);
    return throw_op(env, errno, op, NULL, NULL, NULL);
  }
  dev = bigint_u64(env, (uint64_t)st.st_dev);
  if (!dev) return NULL;
  ino = bigint_u64(env, (uint64_t)st.st_ino);
  if (!ino) return NULL;
  NAPI_CALL(env, napi_create_array_with_length(env, 2, &result));
  NAPI_CALL(env, napi_set_element(env, result, 0, dev));
  NAPI_CALL(env, napi_set_element(env, result, 1, ino));
  return result;
}

napi_status wgts_init_netlink(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"nlLinkIndex", NULL, nl_link_index, NULL, NULL, NULL, napi_enumerable, NULL},
      {"nlLinkMove", NULL, nl_link_move, NULL, NULL, NULL, napi_enumerable, NULL},
      {"nlAddrAdd", NULL, nl_addr_add, NULL, NULL, NULL, napi_enumerable, NULL},
      {"nlLinkUp", NULL, nl_link_up, NULL, NULL, NULL, napi_enumerable, NULL},
      {"nlLinkDel", NULL, nl_link_del, NULL, NULL, NULL, napi_enumerable, NULL},
      {"nlLinkSetMtu", NULL, nl_link_set_mtu, NULL, NULL, NULL, napi_enumerable, NULL},
      {"netnsCookie", NULL, netns_cookie, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fdIdentity", NULL, fd_identity, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
