/* The wgts addon's entry point: each file registers its own functions. */
#include "common.h"

static napi_value init(napi_env env, napi_value exports) {
  if (wgts_init_tun(env, exports) != napi_ok || wgts_init_udp(env, exports) != napi_ok ||
      wgts_init_poll(env, exports) != napi_ok || wgts_init_netns(env, exports) != napi_ok ||
      wgts_init_netlink(env, exports) != napi_ok || wgts_init_ctl(env, exports) != napi_ok ||
      wgts_init_rtmon(env, exports) != napi_ok || wgts_init_offload(env, exports) != napi_ok) {
    wgts_throw_last(env, "module init");
    return NULL;
  }
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
