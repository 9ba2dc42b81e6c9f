/* Network namespaces: let the calling (main) thread create sockets in another namespace. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef TUNGETDEVNETNS
#define TUNGETDEVNETNS _IO('T', 227) /* Linux 5.2 */
#endif

void wgts_netns_restore_failed(int err) {
  /* Carrying on would create sockets and devices in a namespace nobody asked for. */
  fprintf(stderr, "wgts: cannot return to the original network namespace (%s); aborting\n", strerror(err));
  abort();
}

int wgts_socket_in_netns(int nsfd, int domain, int type, int protocol) {
  if (nsfd < 0) {
    int s = socket(domain, type | SOCK_CLOEXEC, protocol);
    return s < 0 ? -errno : s;
  }
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) return -errno;
  if (setns(nsfd, CLONE_NEWNET) < 0) {
    int e = errno;
    close(self);
    return -e;
  }
  int s = socket(domain, type | SOCK_CLOEXEC, protocol);
  int e = errno;
  if (setns(self, CLONE_NEWNET) < 0) wgts_netns_restore_failed(errno);
  close(self);
  return s < 0 ? -e : s;
}

/*
 * netnsEnter(pid) -> fd of the namespace the thread was in. setns(2) changes only the calling
 * thread: the caller must restore it (netnsRestore) before returning to the event loop.
 */
static napi_value netns_enter(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t pid;
  if (wgts_get_args(env, info, 1, argv) < 0 || wgts_get_i32(env, argv[0], &pid) < 0) return NULL;
  if (pid <= 0) return wgts_throw_type(env, "wgts: bad pid");
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/ns/net", (int)pid);
  int target = open(path, O_RDONLY | O_CLOEXEC);
  if (target < 0) return wgts_throw_errno(env, path, errno);
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) {
    int e = errno;
    close(target);
    return wgts_throw_errno(env, "/proc/thread-self/ns/net", e);
  }
  if (setns(target, CLONE_NEWNET) < 0) {
    int e = errno;
    close(target);
    close(self);
    return wgts_throw_errno(env, "setns", e);
  }
  close(target);
  return wgts_i32(env, self);
}

/* netnsRestore(fd): back to the namespace saved by netnsEnter; closes fd. */
static napi_value netns_restore(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (wgts_get_args(env, info, 1, argv) < 0 || wgts_get_i32(env, argv[0], &fd) < 0) return NULL;
  int r = setns(fd, CLONE_NEWNET);
  int e = errno;
  close(fd);
  if (r < 0) return wgts_throw_errno(env, "setns (restore)", e);
  return NULL;
}

/* tunNetns(tunFd) -> a new fd of the network namespace the TUN device lives in now (TUNGETDEVNETNS). */
static napi_value tun_netns(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (wgts_get_args(env, info, 1, argv) < 0 || wgts_get_i32(env, argv[0], &fd) < 0) return NULL;
  int ns = ioctl(fd, TUNGETDEVNETNS);
  if (ns < 0) return wgts_throw_errno(env, "TUNGETDEVNETNS", errno);
  return wgts_i32(env, ns);
}

napi_status wgts_init_netns(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"tunNetns", NULL, tun_netns, NULL, NULL, NULL, napi_enumerable, NULL},
      {"netnsEnter", NULL, netns_enter, NULL, NULL, NULL, napi_enumerable, NULL},
      {"netnsRestore", NULL, netns_restore, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
