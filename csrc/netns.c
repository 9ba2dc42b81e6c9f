/* Network namespaces: let the calling (main) thread create sockets in another namespace. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <unistd.h>

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

napi_status wgts_init_netns(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"netnsEnter", NULL, netns_enter, NULL, NULL, NULL, napi_enumerable, NULL},
      {"netnsRestore", NULL, netns_restore, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
