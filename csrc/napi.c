/* Node-API helpers shared by every file of the wgts addon: arguments, typed arrays, errors. */
#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const char *wgts_errno_name(int err) {
  switch (err) {
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(EBADF) E(EAGAIN) E(ENOMEM)
    E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(ENODEV) E(EINVAL) E(ENFILE) E(EMFILE)
    E(ENOSPC) E(EMSGSIZE) E(EPROTONOSUPPORT) E(EOPNOTSUPP) E(EAFNOSUPPORT) E(EADDRINUSE)
    E(EADDRNOTAVAIL) E(ENETDOWN) E(ENETUNREACH) E(ECONNREFUSED) E(EHOSTUNREACH)
    E(ENOBUFS) E(EBADFD) E(ENAMETOOLONG) E(ENOTTY)
    E(EPIPE) E(ECONNRESET) E(ECONNABORTED) E(ENOTCONN) E(ETIMEDOUT) E(ENOTSOCK)
    E(ENOPROTOOPT) E(ERANGE) E(EOVERFLOW)
#undef E
    default: return "EUNKNOWN";
  }
}

napi_value wgts_throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  return wgts_throw_errno_msg(env, err, msg);
}

napi_value wgts_throw_errno_msg(napi_env env, int err, const char *msg) {
  napi_value code, text, error;
  if (napi_create_string_utf8(env, wgts_errno_name(err), NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text) != napi_ok ||
      napi_create_error(env, code, text, &error) != napi_ok) {
    napi_throw_error(env, wgts_errno_name(err), msg);
    return NULL;
  }
  napi_value errnov;
  if (napi_create_int32(env, -err, &errnov) == napi_ok)
    napi_set_named_property(env, error, "errno", errnov);
  napi_throw(env, error);
  return NULL;
}

napi_value wgts_throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

void wgts_throw_last(napi_env env, const char *what) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return;
  const napi_extended_error_info *info = NULL;
  const char *msg = NULL;
  if (napi_get_last_error_info(env, &info) == napi_ok && info && info->error_message)
    msg = info->error_message;
  char buf[256];
  snprintf(buf, sizeof buf, "wgts: %s (%s)", msg ? msg : "Node-API call failed", what);
  napi_throw_error(env, NULL, buf);
}

int wgts_get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    wgts_throw_last(env, "napi_get_cb_info");
    return -1;
  }
  if (argc < want) {
    wgts_throw_type(env, "wgts: missing arguments");
    return -1;
  }
  return 0;
}

int wgts_get_i32(napi_env env, napi_value v, int32_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number ||
      napi_get_value_int32(env, v, out) != napi_ok) {
    wgts_throw_type(env, "wgts: expected a number");
    return -1;
  }
  return 0;
}

int wgts_get_u32(napi_env env, napi_value v, uint32_t *out) {
  napi_valuetype t;
  double d;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number ||
      napi_get_value_double(env, v, &d) != napi_ok || !(d >= 0 && d <= 4294967295.0) ||
      d != (double)(uint32_t)d) {
    wgts_throw_type(env, "wgts: expected an unsigned 32-bit integer");
    return -1;
  }
  *out = (uint32_t)d;
  return 0;
}

static int get_typed(napi_env env, napi_value v, napi_typedarray_type want, void **data,
                     size_t *count) {
  bool is = false;
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  napi_value ab;
  void *p = NULL;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, v, &type, &length, &p, &ab, &offset) != napi_ok ||
      type != want) {
    wgts_throw_type(env, want == napi_uint8_array ? "wgts: expected a Uint8Array"
                                                  : "wgts: expected an Int32Array");
    return -1;
  }
  *data = p;
  *count = length;
  return 0;
}

int wgts_get_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  void *p;
  if (get_typed(env, v, napi_uint8_array, &p, len) < 0) return -1;
  *data = p;
  return 0;
}

int wgts_get_i32array(napi_env env, napi_value v, int32_t **data, size_t *count) {
  void *p;
  if (get_typed(env, v, napi_int32_array, &p, count) < 0) return -1;
  *data = p;
  return 0;
}

napi_value wgts_i32(napi_env env, int32_t v) {
  napi_value r;
  if (napi_create_int32(env, v, &r) != napi_ok) {
    wgts_throw_last(env, "napi_create_int32");
    return NULL;
  }
  return r;
}
