/*
 * wgts: the OS boundary of wireguard-ts (TUN, UDP with recvmmsg/sendmmsg and PKTINFO).
 * Plain Node-API (node_api.h) plus libuv's uv_poll_t; no C++ and no node-addon-api.
 */
#ifndef WGTS_COMMON_H
#define WGTS_COMMON_H

#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <stdint.h>
#include <stddef.h>

/* Status checks: on failure throw (if nothing is pending) and return NULL from the callback. */
#define NAPI_CALL(env, call)                                                   \
  do {                                                                         \
    if ((call) != napi_ok) {                                                   \
      wgts_throw_last(env, #call);                                             \
      return NULL;                                                             \
    }                                                                          \
  } while (0)

void wgts_throw_last(napi_env env, const char *what);
/* Throws an Error whose message is "<what>: strerror(err)" and whose .code is the errno name. */
napi_value wgts_throw_errno(napi_env env, const char *what, int err);
/* The same with the whole message given (it should name the operation). */
napi_value wgts_throw_errno_msg(napi_env env, int err, const char *msg);
napi_value wgts_throw_type(napi_env env, const char *msg);
const char *wgts_errno_name(int err);

/* Argument helpers; they throw a TypeError and return -1 on a bad argument. */
int wgts_get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv);
int wgts_get_i32(napi_env env, napi_value v, int32_t *out);
int wgts_get_u32(napi_env env, napi_value v, uint32_t *out);
/* A Uint8Array / Int32Array (or Buffer); returns the data pointer and byte length. */
int wgts_get_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len);
int wgts_get_i32array(napi_env env, napi_value v, int32_t **data, size_t *count);
napi_value wgts_i32(napi_env env, int32_t v);

/* Layout of one UDP message descriptor in the shared meta area (Int32 units). */
#define UDP_META_STRIDE 16 /* 64 bytes */
#define UDP_M_OFF 0
#define UDP_M_LEN 1
#define UDP_M_FAMILY 2
#define UDP_M_PORT 3
#define UDP_M_IFINDEX 4
#define UDP_M_HASLOCAL 5
#define UDP_M_ADDR 6   /* 16 bytes: peer address (v4 in the first 4) */
#define UDP_M_LOCAL 10 /* 16 bytes: local address (v4 in the first 4) */
#define UDP_M_STATUS 14
#define UDP_M_GSO 15   /* receive: the UDP_GRO segment size of a coalesced datagram, else 0 */
#define UDP_SLOT 65536 /* receive slot: any UDP datagram fits */

/* Layout of one TUN packet descriptor (Int32 units). */
#define TUN_META_STRIDE 2
#define TUN_MAX_PACKET 65535

/* Route monitor datagrams (rtmon.c, poll.c's MODE_NETLINK): room per read. */
#define RTMON_SLOT 32768

/* Registration of the module's functions, one per file. */
napi_status wgts_init_tun(napi_env env, napi_value exports);
napi_status wgts_init_udp(napi_env env, napi_value exports);
napi_status wgts_init_poll(napi_env env, napi_value exports);
napi_status wgts_init_netns(napi_env env, napi_value exports);
napi_status wgts_init_rtmon(napi_env env, napi_value exports);
napi_status wgts_init_offload(napi_env env, napi_value exports);
napi_status wgts_init_netlink(napi_env env, napi_value exports);
napi_status wgts_init_ctl(napi_env env, napi_value exports);

/*
 * A socket (SOCK_CLOEXEC is added) created inside the network namespace `nsfd` refers to, or
 * in the calling thread's own when nsfd < 0; returns the fd or -errno. The thread setns()es
 * there and back before returning, on every path; the socket stays in that namespace for its
 * whole life (and keeps it alive while open). netns.c.
 */
int wgts_socket_in_netns(int nsfd, int domain, int type, int protocol);
/* Aborts the process: the thread could not return to its own network namespace. */
void wgts_netns_restore_failed(int err);

/* Poll reader used by poll.c for a plain TUN fd (slot TUN_MAX_PACKET) and the route monitor
 * (slot RTMON_SLOT): fills the batch, returns the count; *err gets a fatal errno or 0. tun.c. */
int wgts_read_batch(int fd, uint8_t *buf, size_t buflen, int32_t *meta, size_t maxpkts, size_t slot,
                    int *err);
/* A vnet TUN reader's state across batches: a super-packet that did not fit, and counters. */
#define WGTS_TUN_C_BAD 0   /* packets dropped: virtio header that does not fit the packet */
#define WGTS_TUN_C_SPLIT 1 /* super-packets segmented */
#define WGTS_TUN_C_SEGS 2  /* segments made of them */
#define WGTS_TUN_COUNTERS 3
struct wgts_tun_vnet {
  uint8_t *pending; /* TUN_MAX_PACKET + 10 bytes */
  size_t pending_len;
  int32_t *counters; /* WGTS_TUN_COUNTERS, in JavaScript's Int32Array */
};
int wgts_tun_read_vnet(int fd, uint8_t *buf, size_t buflen, int32_t *meta, size_t maxpkts,
                       size_t maxreads, struct wgts_tun_vnet *st, int *err);
int wgts_udp_recv_batch(int fd, uint8_t *buf, size_t buflen, int32_t *meta, size_t maxpkts,
                        int *err);

#endif
