/*
 * Node-API entry points of the offload functions on plain buffers, for the unit tests (every
 * edge of segmentation and coalescing without a TUN) and for bench/offload.ts. The data path
 * itself calls gso.c and gro.c from tun.c and poll.c, never through these.
 */
#include "common.h"
#include "offload.h"

#include <errno.h>
#include <string.h>

/* gsoSplit(input, out, meta) -> segments (> 0), 0 (not a super-packet: its checksum, if it
 * was partial, is completed in place in `input`), or < 0 (WGTS_GSO_EBADHDR, WGTS_GSO_ENOROOM).
 * input = virtio header + packet; segments go to `out`, (offset, length) pairs to `meta`. */
static napi_value gso_split_js(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  uint8_t *in, *out;
  size_t inlen, outlen, metalen;
  int32_t *meta;
  if (wgts_get_args(env, info, 3, argv) < 0 || wgts_get_bytes(env, argv[0], &in, &inlen) < 0 ||
      wgts_get_bytes(env, argv[1], &out, &outlen) < 0 ||
      wgts_get_i32array(env, argv[2], &meta, &metalen) < 0)
    return NULL;
  if (inlen < WGTS_VNET_HDR_LEN) return wgts_i32(env, WGTS_GSO_EBADHDR);
  struct wgts_vnet_hdr h;
  wgts_vnet_hdr_read(in, &h);
  size_t need;
  int n = wgts_gso_split(in + WGTS_VNET_HDR_LEN, inlen - WGTS_VNET_HDR_LEN, &h, out, outlen, 0,
                         meta, metalen / 2, &need);
  return wgts_i32(env, n);
}

struct buf_sink {
  uint8_t *out;
  size_t cap, used;
  int32_t *meta;
  size_t metacap, count;
};

static int buf_sink_write(void *ctx, const struct iovec *iov, int iovcnt, int members) {
  struct buf_sink *b = ctx;
  size_t total = 0;
  for (int i = 0; i < iovcnt; i++) total += iov[i].iov_len;
  if (b->count >= b->metacap || b->used + total > b->cap) return -ENOSPC;
  b->meta[3 * b->count] = (int32_t)b->used;
  b->meta[3 * b->count + 1] = (int32_t)total;
  b->meta[3 * b->count + 2] = members;
  b->count++;
  for (int i = 0; i < iovcnt; i++) {
    memcpy(b->out + b->used, iov[i].iov_base, iov[i].iov_len);
    b->used += iov[i].iov_len;
  }
  return 0;
}

/* groCoalesce(area, meta, count, flags, out, outMeta) -> packets written to `out`: each one a
 * virtio header and a packet, described by (offset, length, members) triples in outMeta.
 * Headers in `area` are rewritten in place, as on the data path. */
static napi_value gro_coalesce_js(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  uint8_t *area, *out;
  size_t arealen, outlen, metalen, ometalen;
  int32_t *meta, *ometa, count, flags;
  if (wgts_get_args(env, info, 6, argv) < 0 || wgts_get_bytes(env, argv[0], &area, &arealen) < 0 ||
      wgts_get_i32array(env, argv[1], &meta, &metalen) < 0 || wgts_get_i32(env, argv[2], &count) < 0 ||
      wgts_get_i32(env, argv[3], &flags) < 0 || wgts_get_bytes(env, argv[4], &out, &outlen) < 0 ||
      wgts_get_i32array(env, argv[5], &ometa, &ometalen) < 0)
    return NULL;
  if (count < 0 || count > WGTS_GRO_MAX_BATCH || (size_t)count * 2 > metalen)
    return wgts_throw_type(env, "wgts: bad packet count");
  for (int32_t i = 0; i < count; i++) {
    int32_t off = meta[2 * i], len = meta[2 * i + 1];
    if (off < 0 || len < 0 || (size_t)off > arealen || (size_t)len > arealen - (size_t)off)
      return wgts_throw_type(env, "wgts: packet outside the area");
  }
  struct buf_sink b = {out, outlen, 0, ometa, ometalen / 3, 0};
  struct wgts_gro_stats st;
  wgts_gro_write(area, meta, count, flags, buf_sink_write, &b, &st);
  if (st.last_err != 0) return wgts_throw_errno(env, "groCoalesce", -st.last_err);
  return wgts_i32(env, (int32_t)b.count);
}

/* csum(data) -> the folded ones' complement sum of data (bench/offload.ts). */
static napi_value csum_js(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  uint8_t *p;
  size_t n;
  if (wgts_get_args(env, info, 1, argv) < 0 || wgts_get_bytes(env, argv[0], &p, &n) < 0) return NULL;
  return wgts_i32(env, (int32_t)wgts_csum_fold(wgts_csum_add(0, p, n)));
}

napi_status wgts_init_offload(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"gsoSplit", NULL, gso_split_js, NULL, NULL, NULL, napi_enumerable, NULL},
      {"groCoalesce", NULL, gro_coalesce_js, NULL, NULL, NULL, napi_enumerable, NULL},
      {"csum", NULL, csum_js, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
