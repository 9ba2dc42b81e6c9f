/*
 * Event-loop readers: a uv_poll_t per fd on Node's own loop (napi_get_uv_event_loop). Each
 * wake-up reads one capped batch without blocking (read() until EAGAIN for TUN, recvmmsg for
 * UDP) and hands it to JavaScript with ONE call: cb(count, errno, fromPoll), where fromPoll
 * says that errno is libuv's report of POLLERR (UV_EBADF) rather than a read error. The packets are in the
 * caller's Uint8Array, described by its Int32Array; both are kept alive by references.
 * uv_poll is level-triggered, so whatever a capped batch leaves behind wakes us up again on
 * the next loop iteration, after the other handles had their turn.
 */
#include "common.h"
#include "offload.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

enum { MODE_TUN = 0, MODE_UDP = 1, MODE_TUN_VNET = 2, MODE_NETLINK = 3 /* rtmon.c */ };

struct poller {
  uv_poll_t handle; /* first member: a handle pointer is a poller pointer */
  napi_env env;
  napi_ref cb_ref, buf_ref, meta_ref, counters_ref;
  napi_async_context actx;
  uint8_t *buf;
  size_t buflen;
  int32_t *meta;
  size_t maxpkts, maxreads;
  struct wgts_tun_vnet vnet; /* MODE_TUN_VNET */
  int fd, mode;
  int stopped;
};

/* What JavaScript holds (an External): the poller until it is stopped. */
struct box {
  struct poller *p;
};

static void on_closed(uv_handle_t *h) {
  free(((struct poller *)h)->vnet.pending);
  free(h);
}
static void env_cleanup(void *arg);

static void release_refs(struct poller *p) {
  napi_delete_reference(p->env, p->cb_ref);
  napi_delete_reference(p->env, p->buf_ref);
  napi_delete_reference(p->env, p->meta_ref);
  if (p->counters_ref) napi_delete_reference(p->env, p->counters_ref);
  napi_async_destroy(p->env, p->actx);
}

/* Stops polling; the memory goes when libuv has closed the handle. Never closes the fd. */
static void poller_stop(struct poller *p, int from_env) {
  if (p->stopped) return;
  p->stopped = 1;
  uv_poll_stop(&p->handle);
  if (!from_env) {
    napi_remove_env_cleanup_hook(p->env, env_cleanup, p);
    release_refs(p);
  }
  uv_close((uv_handle_t *)&p->handle, on_closed);
}

static void env_cleanup(void *arg) { poller_stop(arg, 1); }

/*
 * Hands one batch to JavaScript: cb(count, errno, fromPoll). From the event loop through
 * napi_make_callback (an exception goes to uncaughtException); from pollNow, inside a call from
 * JavaScript, through napi_call_function, so that an exception propagates to that caller.
 * Returns 0, or -1 when an exception is pending (sync only).
 */
static int deliver(struct poller *p, int count, int err, int from_poll, int sync) {
  napi_env env = p->env;
  napi_handle_scope scope;
  int rc = 0;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return -1;
  napi_value cb, recv, argv[3], result;
  if (napi_get_reference_value(env, p->cb_ref, &cb) == napi_ok && cb != NULL &&
      napi_get_global(env, &recv) == napi_ok && napi_create_int32(env, count, &argv[0]) == napi_ok &&
      napi_create_int32(env, err, &argv[1]) == napi_ok &&
      napi_get_boolean(env, from_poll, &argv[2]) == napi_ok) {
    if (sync) {
      if (napi_call_function(env, recv, cb, 3, argv, &result) != napi_ok) rc = -1;
    } else {
      napi_status st = napi_make_callback(env, p->actx, recv, cb, 3, argv, &result);
      bool pending = false;
      if (st != napi_ok && napi_is_exception_pending(env, &pending) == napi_ok && pending) {
        napi_value exc;
        if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
      }
    }
  }
  napi_close_handle_scope(env, scope);
  return rc;
}

/* One wake-up's reading: a batch (more only for a vnet TUN's left-over super-packet), delivered. */
static void read_and_deliver(struct poller *p, int status, int sync) {
  /* More than one batch only when a vnet TUN's super-packet did not fit in the last one. */
  do {
    int err = 0, count = 0, from_poll = 0;
    if (status < 0) {
      from_poll = 1;
      /* libuv stops the watcher on POLLERR and reports UV_EBADF; TUN says so on device removal. */
      err = -status;
      status = 0;
      uv_poll_stop(&p->handle);
    } else if (p->mode == MODE_TUN) {
      count = wgts_read_batch(p->fd, p->buf, p->buflen, p->meta, p->maxpkts, TUN_MAX_PACKET, &err);
    } else if (p->mode == MODE_TUN_VNET) {
      count = wgts_tun_read_vnet(p->fd, p->buf, p->buflen, p->meta, p->maxpkts, p->maxreads, &p->vnet, &err);
    } else if (p->mode == MODE_UDP) {
      count = wgts_udp_recv_batch(p->fd, p->buf, p->buflen, p->meta, p->maxpkts, &err);
    } else {
      count = wgts_read_batch(p->fd, p->buf, p->buflen, p->meta, p->maxpkts, RTMON_SLOT, &err);
    }
    if (count == 0 && err == 0) continue;
    if (err != 0 && (p->mode == MODE_TUN || p->mode == MODE_TUN_VNET)) uv_poll_stop(&p->handle); /* fatal for a TUN fd */
    if (deliver(p, count, err, from_poll, sync) < 0) return;
  } while (!p->stopped && p->vnet.pending_len > 0);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  struct poller *p = (struct poller *)h;
  (void)events;
  if (p->stopped) return;
  read_and_deliver(p, status, 0);
}

static void box_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  /* A poller that is still running keeps its own references; only the box goes. */
  free(data);
}

/* pollStart(fd, mode, buf, meta, maxPerWake, cb[, counters]) -> External handle. For a vnet
 * TUN (mode 2) maxPerWake caps the reads, `meta` the packets after segmentation, and counters
 * (an Int32Array of WGTS_TUN_COUNTERS) is required. */
static napi_value poll_start(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  int32_t fd, mode, maxper;
  uint8_t *buf;
  size_t buflen, metalen;
  int32_t *meta;
  napi_valuetype t;
  size_t argc = 7;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    wgts_throw_last(env, "napi_get_cb_info");
    return NULL;
  }
  if (argc < 6) return wgts_throw_type(env, "wgts: missing arguments");
  if (wgts_get_i32(env, argv[0], &fd) < 0 ||
      wgts_get_i32(env, argv[1], &mode) < 0 || wgts_get_bytes(env, argv[2], &buf, &buflen) < 0 ||
      wgts_get_i32array(env, argv[3], &meta, &metalen) < 0 ||
      wgts_get_i32(env, argv[4], &maxper) < 0)
    return NULL;
  if (napi_typeof(env, argv[5], &t) != napi_ok || t != napi_function)
    return wgts_throw_type(env, "wgts: callback must be a function");
  if (fd < 0 || (mode != MODE_TUN && mode != MODE_UDP && mode != MODE_TUN_VNET && mode != MODE_NETLINK) || maxper <= 0)
    return wgts_throw_type(env, "wgts: bad pollStart arguments");
  int32_t *counters = NULL;
  size_t ncounters = 0;
  if (mode == MODE_TUN_VNET &&
      (argc < 7 || wgts_get_i32array(env, argv[6], &counters, &ncounters) < 0 || ncounters < WGTS_TUN_COUNTERS))
    return wgts_throw_type(env, "wgts: a vnet TUN reader needs an Int32Array of counters");
  size_t stride = mode == MODE_UDP ? UDP_META_STRIDE : TUN_META_STRIDE;
  size_t maxpkts = metalen / stride;
  if (mode != MODE_TUN_VNET && (size_t)maxper < maxpkts) maxpkts = (size_t)maxper;
  /* A vnet area holds a read, then the worst segmentation of it behind it. */
  size_t minbuf = mode == MODE_TUN       ? TUN_MAX_PACKET
                  : mode == MODE_UDP     ? UDP_SLOT
                  : mode == MODE_NETLINK ? RTMON_SLOT
                                         : 2 * (TUN_MAX_PACKET + 16) + WGTS_GSO_MAX_SEGS * (WGTS_GSO_MAX_HDR + 16);
  if (maxpkts == 0 || buflen < minbuf || buflen > 0x7fffffff ||
      (mode == MODE_TUN_VNET && maxpkts < WGTS_GSO_MAX_SEGS))
    return wgts_throw_type(env, "wgts: pollStart buffers too small");

  uv_loop_t *loop = NULL;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  struct poller *p = calloc(1, sizeof *p);
  struct box *b = calloc(1, sizeof *b);
  if (!p || !b) {
    free(p);
    free(b);
    return wgts_throw_errno(env, "pollStart", ENOMEM);
  }
  p->env = env;
  p->buf = buf;
  p->buflen = buflen;
  p->meta = meta;
  p->maxpkts = maxpkts;
  p->maxreads = (size_t)maxper;
  p->vnet.counters = counters;
  if (mode == MODE_TUN_VNET && !(p->vnet.pending = malloc(TUN_MAX_PACKET + WGTS_VNET_HDR_LEN))) {
    free(p);
    free(b);
    return wgts_throw_errno(env, "pollStart", ENOMEM);
  }
  p->fd = fd;
  p->mode = mode;
  napi_value resname, ext;
  int r = uv_poll_init(loop, &p->handle, fd);
  if (r < 0) {
    free(p->vnet.pending);
    free(p);
    free(b);
    return wgts_throw_errno(env, "uv_poll_init", -r);
  }
  /* From here on the handle is registered with the loop: it must be closed, never freed. */
  if (napi_create_string_utf8(env, mode == MODE_UDP ? "wgts.udp" : mode == MODE_NETLINK ? "wgts.rtmon" : "wgts.tun", NAPI_AUTO_LENGTH,
                              &resname) != napi_ok ||
      napi_async_init(env, NULL, resname, &p->actx) != napi_ok) {
    wgts_throw_last(env, "napi_async_init");
    free(b);
    p->stopped = 1;
    uv_close((uv_handle_t *)&p->handle, on_closed);
    return NULL;
  }
  if (napi_create_reference(env, argv[5], 1, &p->cb_ref) != napi_ok ||
      napi_create_reference(env, argv[2], 1, &p->buf_ref) != napi_ok ||
      napi_create_reference(env, argv[3], 1, &p->meta_ref) != napi_ok ||
      (counters && napi_create_reference(env, argv[6], 1, &p->counters_ref) != napi_ok) ||
      napi_add_env_cleanup_hook(env, env_cleanup, p) != napi_ok) {
    wgts_throw_last(env, "pollStart references");
    free(b);
    release_refs(p); /* deleting a NULL reference only reports an error */
    p->stopped = 1;
    uv_close((uv_handle_t *)&p->handle, on_closed);
    return NULL;
  }
  r = uv_poll_start(&p->handle, UV_READABLE, on_poll);
  if (r < 0) {
    poller_stop(p, 0);
    free(b);
    return wgts_throw_errno(env, "uv_poll_start", -r);
  }
  b->p = p;
  if (napi_create_external(env, b, box_finalize, NULL, &ext) != napi_ok) {
    poller_stop(p, 0);
    free(b);
    wgts_throw_last(env, "napi_create_external");
    return NULL;
  }
  return ext;
}

static struct box *get_box(napi_env env, napi_value v) {
  napi_valuetype t;
  void *data = NULL;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external ||
      napi_get_value_external(env, v, &data) != napi_ok || data == NULL) {
    wgts_throw_type(env, "wgts: expected a poll handle");
    return NULL;
  }
  return data;
}

/* pollStop(handle): idempotent. The fd stays open (the caller closes it afterwards). */
static napi_value poll_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (wgts_get_args(env, info, 1, argv) < 0) return NULL;
  struct box *b = get_box(env, argv[0]);
  if (!b) return NULL;
  if (b->p) {
    poller_stop(b->p, 0);
    b->p = NULL;
  }
  return NULL;
}

/*
 * pollNow(handle): read and deliver one batch now, synchronously, as a wake-up would (nothing
 * when the fd has nothing). For a reader that expects its fd to have become readable during
 * the current callback, e.g. a TUN just written to, whose kernel answered at once: it saves
 * the trip through the event loop. Readers only; an exception from the callback propagates.
 */
static napi_value poll_now(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (wgts_get_args(env, info, 1, argv) < 0) return NULL;
  struct box *b = get_box(env, argv[0]);
  if (!b) return NULL;
  /* A notifier (on_notify) has no reader to run. */
  if (b->p && !b->p->stopped && b->p->handle.poll_cb == on_poll) read_and_deliver(b->p, 0, 1);
  return NULL;
}

/* pollRef(handle, keepLoopAlive). */
static napi_value poll_ref(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  bool on;
  if (wgts_get_args(env, info, 2, argv) < 0) return NULL;
  struct box *b = get_box(env, argv[0]);
  if (!b) return NULL;
  if (napi_get_value_bool(env, argv[1], &on) != napi_ok)
    return wgts_throw_type(env, "wgts: expected a boolean");
  if (b->p) {
    if (on)
      uv_ref((uv_handle_t *)&b->p->handle);
    else
      uv_unref((uv_handle_t *)&b->p->handle);
  }
  return NULL;
}

/*
 * Notify mode: the poller reads nothing. cb(events, errno, fromPoll) on every wake-up, events a
 * mask of NOTIFY_READABLE and NOTIFY_DISCONNECT (the peer hung up: EPOLLRDHUP / POLLHUP). It is
 * level-triggered like the readers: the callback must drain the fd (accept or receive until
 * EAGAIN) or stop the watcher, or it is called again at once. A POLLERR stops the watcher and
 * is reported as (0, errno, true). For listening and control sockets (ctl.c).
 */
enum { NOTIFY_READABLE = 1, NOTIFY_DISCONNECT = 2 };

static void on_notify(uv_poll_t *h, int status, int events) {
  struct poller *p = (struct poller *)h;
  if (p->stopped) return;
  int mask = 0, err = 0;
  if (status < 0) {
    err = -status;
    uv_poll_stop(&p->handle);
  } else {
    mask = ((events & UV_READABLE) ? NOTIFY_READABLE : 0) | ((events & UV_DISCONNECT) ? NOTIFY_DISCONNECT : 0);
    if (mask == 0) return;
  }
  napi_env env = p->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[3], result;
  if (napi_get_reference_value(env, p->cb_ref, &cb) == napi_ok && cb != NULL &&
      napi_get_global(env, &recv) == napi_ok && napi_create_int32(env, mask, &argv[0]) == napi_ok &&
      napi_create_int32(env, err, &argv[1]) == napi_ok && napi_get_boolean(env, status < 0, &argv[2]) == napi_ok) {
    napi_status st = napi_make_callback(env, p->actx, recv, cb, 3, argv, &result);
    bool pending = false;
    if (st != napi_ok && napi_is_exception_pending(env, &pending) == napi_ok && pending) {
      napi_value exc;
      if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
    }
  }
  napi_close_handle_scope(env, scope);
}

/* pollNotify(fd, cb) -> External handle (pollStop / pollRef as for the readers). */
static napi_value poll_notify(napi_env env, napi_callback_info info) {
  napi_value argv[2], resname, ext;
  int32_t fd;
  napi_valuetype t;
  if (wgts_get_args(env, info, 2, argv) < 0 || wgts_get_i32(env, argv[0], &fd) < 0) return NULL;
  if (napi_typeof(env, argv[1], &t) != napi_ok || t != napi_function)
    return wgts_throw_type(env, "wgts: callback must be a function");
  if (fd < 0) return wgts_throw_type(env, "wgts: bad pollNotify fd");
  uv_loop_t *loop = NULL;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  struct poller *p = calloc(1, sizeof *p);
  struct box *b = calloc(1, sizeof *b);
  if (!p || !b) {
    free(p);
    free(b);
    return wgts_throw_errno(env, "pollNotify", ENOMEM);
  }
  p->env = env;
  p->fd = fd;
  p->mode = -1; /* no reader: only on_notify runs */
  int r = uv_poll_init(loop, &p->handle, fd);
  if (r < 0) {
    free(p);
    free(b);
    return wgts_throw_errno(env, "uv_poll_init", -r);
  }
  if (napi_create_string_utf8(env, "wgts.notify", NAPI_AUTO_LENGTH, &resname) != napi_ok ||
      napi_async_init(env, NULL, resname, &p->actx) != napi_ok) {
    wgts_throw_last(env, "napi_async_init");
    free(b);
    p->stopped = 1;
    uv_close((uv_handle_t *)&p->handle, on_closed);
    return NULL;
  }
  if (napi_create_reference(env, argv[1], 1, &p->cb_ref) != napi_ok ||
      napi_add_env_cleanup_hook(env, env_cleanup, p) != napi_ok) {
    wgts_throw_last(env, "pollNotify references");
    free(b);
    release_refs(p);
    p->stopped = 1;
    uv_close((uv_handle_t *)&p->handle, on_closed);
    return NULL;
  }
  r = uv_poll_start(&p->handle, UV_READABLE | UV_DISCONNECT, on_notify);
  if (r < 0) {
    poller_stop(p, 0);
    free(b);
    return wgts_throw_errno(env, "uv_poll_start", -r);
  }
  b->p = p;
  if (napi_create_external(env, b, box_finalize, NULL, &ext) != napi_ok) {
    poller_stop(p, 0);
    free(b);
    wgts_throw_last(env, "napi_create_external");
    return NULL;
  }
  return ext;
}

napi_status wgts_init_poll(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"pollStart", NULL, poll_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pollStop", NULL, poll_stop, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pollRef", NULL, poll_ref, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pollNow", NULL, poll_now, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pollNotify", NULL, poll_notify, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
