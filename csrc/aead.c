/*
 * ChaCha20-Poly1305 (RFC 8439) through the OpenSSL that Node.js itself is built with (its
 * symbols are exported by the node binary; the headers ship with Node): straight on OpenSSL's
 * ChaCha20 and Poly1305 primitives where they were found and matched EVP at load (chapoly.c),
 * else through one reused EVP context per thread. node:crypto builds a Cipher object per call
 * (~14 us per 1420-byte packet here); this costs ~1 us. The protocol stays in TypeScript; this
 * is only the AEAD primitive behind crypto/aead.ts's provider seam.
 *
 *   seal(key, nonce, plaintext, aad | undefined, out, padding) -> undefined
 *       out.length must be plaintext.length + padding + 16 (ciphertext || tag)
 *   open(key, nonce, sealed, aad | undefined, out) -> boolean
 *       out.length must be sealed.length - 16
 *
 * and X25519 (RFC 7748), ~40x faster than pure JS here, which keeps handshakes off the
 * latency path of the first packet; straight on OpenSSL's scalar multiplication on the same
 * terms (x25519.c), else through EVP_PKEY:
 *
 *   x25519Key(privateKey) -> handle
 *       the key imported once, its public key derived once (freed and cleansed on GC)
 *   x25519Derive(handle, publicKey | undefined, out) -> boolean
 *       out = DH(key, publicKey), or the key's public key when publicKey is undefined; false
 *       when the result is all zeros (a low-order point)
 *
 * and the BLAKE2s constructions of the handshake (whitepaper 5.4), each a single call instead
 * of several node:crypto objects (a handshake message computes a dozen of them):
 *
 *   hash(out32, a, b | undefined)          HASH(a || b), BLAKE2s-256
 *   hmac(out32, key, input)                HMAC-BLAKE2s (RFC 2104, 64-byte block)
 *   kdf(key, input, out1, out2?, out3?)    KDF1/2/3: t0 = HMAC(key, input),
 *                                          t1 = HMAC(t0, 0x1), ti = HMAC(t0, t(i-1) || i)
 *   mac(out16, key32, input)               MAC: keyed BLAKE2s, 16-byte output (BLAKE2SMAC)
 *
 * useEvp(on) puts seal, open and X25519 (keys imported from then on) on EVP or back on the
 * primitives; aeadPath and x25519Path say which routes were found ("direct" or "evp").
 */
#include <node_api.h>
#include "chapoly.h"
#include "x25519.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TAG_LEN 16
#define KEY_LEN 32
#define NONCE_LEN 12

#define HASH_LEN 32
#define BLOCK_LEN 64
#define MAC_LEN 16

typedef struct {
  EVP_CIPHER_CTX *enc;
  EVP_CIPHER_CTX *dec;
  EVP_MD *md;         /* BLAKE2s-256, fetched once (a legacy EVP_blake2s256() is re-fetched on every init) */
  EVP_MD_CTX *mdctx;  /* reused for every digest */
  EVP_MAC *mac;       /* BLAKE2SMAC, NULL if this OpenSSL lacks it */
  EVP_MAC_CTX *macctx;
  /* The primitives' routes (chapoly.c, x25519.c) where they resolved and matched EVP at load;
   * aead/x25519 are the routes in use, which useEvp(true) turns off for tests and benchmarks. */
  int aead_found, x25519_found;
  int aead_direct, x25519_direct;
} aead_state;

static const uint8_t ZEROS[TAG_LEN];

static void free_state(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  aead_state *s = data;
  if (s->enc) EVP_CIPHER_CTX_free(s->enc);
  if (s->dec) EVP_CIPHER_CTX_free(s->dec);
  if (s->mdctx) EVP_MD_CTX_free(s->mdctx);
  if (s->md) EVP_MD_free(s->md);
  if (s->macctx) EVP_MAC_CTX_free(s->macctx);
  if (s->mac) EVP_MAC_free(s->mac);
  free(s);
}

/* Fetch a Uint8Array (or any TypedArray/Buffer) as bytes; 0 on success. */
static int bytes_of(napi_env env, napi_value v, uint8_t **p, size_t *n) {
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) return -1;
  napi_typedarray_type t;
  size_t len, off;
  napi_value ab;
  void *data;
  if (napi_get_typedarray_info(env, v, &t, &len, &data, &ab, &off) != napi_ok) return -1;
  if (t != napi_uint8_array && t != napi_uint8_clamped_array) return -1;
  *p = data;
  *n = len;
  return 0;
}

static int optional_bytes(napi_env env, napi_value v, uint8_t **p, size_t *n) {
  napi_valuetype vt;
  if (napi_typeof(env, v, &vt) != napi_ok) return -1;
  if (vt == napi_undefined || vt == napi_null) {
    *p = NULL;
    *n = 0;
    return 0;
  }
  return bytes_of(env, v, p, n);
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

/* EVP's ChaCha20-Poly1305 with the state's reused contexts; 1 on success. */
static int evp_seal(aead_state *s, const uint8_t *key, const uint8_t *nonce, const uint8_t *pt, size_t plen, size_t padding,
                    const uint8_t *aad, size_t alen, uint8_t *out) {
  int n = 0, ok = EVP_EncryptInit_ex(s->enc, NULL, NULL, key, nonce);
  size_t off = 0;
  if (ok && alen) ok = EVP_EncryptUpdate(s->enc, NULL, &n, aad, (int)alen);
  if (ok && plen) {
    ok = EVP_EncryptUpdate(s->enc, out, &n, pt, (int)plen);
    off += (size_t)n;
  }
  if (ok && padding) {
    ok = EVP_EncryptUpdate(s->enc, out + off, &n, ZEROS, (int)padding);
    off += (size_t)n;
  }
  if (ok) {
    ok = EVP_EncryptFinal_ex(s->enc, out + off, &n);
    off += (size_t)n;
  }
  if (ok) ok = EVP_CIPHER_CTX_ctrl(s->enc, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, out + off);
  if (!ok) ERR_clear_error(); /* as in x25519_with */
  return ok && off == plen + padding;
}

/* 1 when authentic (out holds the plaintext), 0 otherwise. */
static int evp_open(aead_state *s, const uint8_t *key, const uint8_t *nonce, const uint8_t *ct, size_t clen, const uint8_t *aad,
                    size_t alen, uint8_t *out) {
  size_t plen = clen - TAG_LEN;
  int n = 0, ok = EVP_DecryptInit_ex(s->dec, NULL, NULL, key, nonce);
  /* The tag must not be modified by OpenSSL: copy it (it may alias `out`'s memory). */
  uint8_t tag[TAG_LEN];
  memcpy(tag, ct + plen, TAG_LEN);
  if (ok) ok = EVP_CIPHER_CTX_ctrl(s->dec, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, tag);
  if (ok && alen) ok = EVP_DecryptUpdate(s->dec, NULL, &n, aad, (int)alen);
  if (ok && plen) ok = EVP_DecryptUpdate(s->dec, out, &n, ct, (int)plen);
  if (ok) ok = EVP_DecryptFinal_ex(s->dec, out + (plen ? (size_t)n : 0), &n);
  if (ok != 1) ERR_clear_error(); /* as in x25519_with */
  return ok == 1;
}

/*
 * Whether the direct path (chapoly.c) gives what EVP gives, byte for byte, on messages of every
 * length class around the 16-byte MAC blocks and 64-byte ChaCha20 blocks, with and without aad
 * and padding, and refuses each of them with one bit flipped. Any difference: EVP it is.
 */
static int direct_agrees(aead_state *s) {
  static const size_t lens[] = {0, 1, 15, 16, 17, 63, 64, 65, 127, 128, 129, 1420};
  uint8_t key[KEY_LEN], nonce[NONCE_LEN], aad[32], pt[1420], a[1420 + 2 * TAG_LEN], b[sizeof a], back[sizeof a];
  for (size_t i = 0; i < sizeof key; i++) key[i] = (uint8_t)(i * 7 + 1);
  for (size_t i = 0; i < sizeof nonce; i++) nonce[i] = (uint8_t)(i * 13 + 5);
  for (size_t i = 0; i < sizeof aad; i++) aad[i] = (uint8_t)(i * 3 + 2);
  for (size_t i = 0; i < sizeof pt; i++) pt[i] = (uint8_t)(i * 31 + 11);
  for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
    for (int variant = 0; variant < 3; variant++) {
      size_t plen = lens[l], alen = variant == 1 ? sizeof aad : 0, pad = variant == 2 ? 13 : 0, total = plen + pad + TAG_LEN;
      if (!evp_seal(s, key, nonce, pt, plen, pad, aad, alen, a)) return 0;
      wgts_chapoly_seal(key, nonce, pt, plen, pad, aad, alen, b);
      if (memcmp(a, b, total) != 0) return 0;
      if (!wgts_chapoly_open(key, nonce, b, total, aad, alen, back) || memcmp(back, pt, plen) != 0) return 0;
      for (size_t i = 0; i < pad; i++)
        if (back[plen + i] != 0) return 0;
      b[total / 2] ^= 0x20;
      if (wgts_chapoly_open(key, nonce, b, total, aad, alen, back)) return 0;
    }
  }
  return 1;
}

static napi_value seal(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value a[6];
  aead_state *s;
  if (napi_get_cb_info(env, info, &argc, a, NULL, (void **)&s) != napi_ok || argc < 5) return throw_type(env, "seal: expected 5 or 6 arguments");
  uint8_t *key, *nonce, *pt, *aad, *out;
  size_t klen, nlen, plen, alen, olen;
  uint32_t padding = 0;
  if (bytes_of(env, a[0], &key, &klen) || klen != KEY_LEN) return throw_type(env, "seal: key must be 32 bytes");
  if (bytes_of(env, a[1], &nonce, &nlen) || nlen != NONCE_LEN) return throw_type(env, "seal: nonce must be 12 bytes");
  if (bytes_of(env, a[2], &pt, &plen)) return throw_type(env, "seal: plaintext must be a Uint8Array");
  if (optional_bytes(env, a[3], &aad, &alen)) return throw_type(env, "seal: aad must be a Uint8Array or undefined");
  if (bytes_of(env, a[4], &out, &olen)) return throw_type(env, "seal: out must be a Uint8Array");
  if (argc > 5) {
    napi_valuetype vt;
    napi_typeof(env, a[5], &vt);
    if (vt != napi_undefined && napi_get_value_uint32(env, a[5], &padding) != napi_ok) return throw_type(env, "seal: padding must be a number");
  }
  if (padding > TAG_LEN || plen > INT32_MAX - TAG_LEN * 2 || olen != plen + padding + TAG_LEN) return throw_type(env, "seal: out must be plaintext + padding + 16 bytes");
  if (s->aead_direct)
    wgts_chapoly_seal(key, nonce, pt, plen, padding, aad, alen, out);
  else if (!evp_seal(s, key, nonce, pt, plen, padding, aad, alen, out))
    napi_throw_error(env, NULL, "seal: OpenSSL failure");
  return NULL;
}

static napi_value open_(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value a[5];
  aead_state *s;
  if (napi_get_cb_info(env, info, &argc, a, NULL, (void **)&s) != napi_ok || argc < 5) return throw_type(env, "open: expected 5 arguments");
  uint8_t *key, *nonce, *ct, *aad, *out;
  size_t klen, nlen, clen, alen, olen;
  if (bytes_of(env, a[0], &key, &klen) || klen != KEY_LEN) return throw_type(env, "open: key must be 32 bytes");
  if (bytes_of(env, a[1], &nonce, &nlen) || nlen != NONCE_LEN) return throw_type(env, "open: nonce must be 12 bytes");
  if (bytes_of(env, a[2], &ct, &clen)) return throw_type(env, "open: sealed must be a Uint8Array");
  if (optional_bytes(env, a[3], &aad, &alen)) return throw_type(env, "open: aad must be a Uint8Array or undefined");
  if (bytes_of(env, a[4], &out, &olen)) return throw_type(env, "open: out must be a Uint8Array");
  napi_value result;
  int ok = 0;
  if (clen >= TAG_LEN && clen <= INT32_MAX && olen == clen - TAG_LEN)
    ok = s->aead_direct ? wgts_chapoly_open(key, nonce, ct, clen, aad, alen, out) : evp_open(s, key, nonce, ct, clen, aad, alen, out);
  napi_get_boolean(env, ok, &result);
  return result;
}

/*
 * useEvp(bool): route seal/open, X25519 keys imported from now on and one-shot X25519 through
 * EVP (true), or the direct routes where they are available (tests, benchmarks).
 */
static napi_value use_evp(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value a[1];
  aead_state *s;
  bool on = false;
  if (napi_get_cb_info(env, info, &argc, a, NULL, (void **)&s) != napi_ok || argc < 1 || napi_get_value_bool(env, a[0], &on) != napi_ok)
    return throw_type(env, "useEvp: expected a boolean");
  s->aead_direct = s->aead_found && !on;
  s->x25519_direct = s->x25519_found && !on;
  return NULL;
}

/* out = DH(sk, pub), or sk's public key when pub is NULL. 1 on success, 0 otherwise (out zeroed). */
static int x25519_with(EVP_PKEY *sk, const uint8_t *pub, uint8_t *out) {
  int ok = 0;
  size_t n = KEY_LEN;
  if (sk && !pub) {
    ok = EVP_PKEY_get_raw_public_key(sk, out, &n) == 1 && n == KEY_LEN;
  } else if (sk) {
    EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, pub, KEY_LEN);
    EVP_PKEY_CTX *ctx = pk ? EVP_PKEY_CTX_new(sk, NULL) : NULL;
    /* OpenSSL refuses an all-zero shared secret (RFC 7748 section 6.1): derive fails then. */
    ok = ctx && EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer(ctx, pk) == 1 && EVP_PKEY_derive(ctx, out, &n) == 1 && n == KEY_LEN;
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pk);
  }
  if (!ok) {
    memset(out, 0, KEY_LEN);
    /* A refusal leaves errors on this thread's OpenSSL queue, where node:crypto would later
     * find them and fail an unrelated call. */
    ERR_clear_error();
  }
  return ok;
}

/* A private key imported once: an EVP_PKEY, or (direct route) the raw key and its public key. */
struct xkey {
  EVP_PKEY *sk;
  uint8_t priv[KEY_LEN], pub[KEY_LEN];
  int has_pub;
};

/* k (zeroed) holds priv on the route in use; 0 when OpenSSL refused it. */
static int xkey_init(aead_state *s, struct xkey *k, const uint8_t *priv) {
  if (s->x25519_direct) {
    memcpy(k->priv, priv, KEY_LEN);
    return 1;
  }
  return (k->sk = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, KEY_LEN)) != NULL;
}

static void free_xkey(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  struct xkey *k = data;
  EVP_PKEY_free(k->sk);
  OPENSSL_cleanse(k, sizeof *k);
  free(k);
}

/* out = DH(k, pub), or k's public key when pub is NULL; 1, or 0 (out zeroed). */
static int xkey_derive(struct xkey *k, const uint8_t *pub, uint8_t *out) {
  if (k->sk) return x25519_with(k->sk, pub, out);
  if (pub) return wgts_x25519(out, k->priv, pub);
  if (!k->has_pub) {
    wgts_x25519_public(k->pub, k->priv);
    k->has_pub = 1;
  }
  memcpy(out, k->pub, KEY_LEN);
  return 1;
}

/* Whether the direct route gives EVP's public keys and shared secrets, and refuses what EVP refuses. */
static int x25519_agrees(void) {
  uint8_t priv[3][KEY_LEN], pubs[3][KEY_LEN], a[KEY_LEN], b[KEY_LEN];
  static const uint8_t small_order[KEY_LEN]; /* 0: a point of order 1 */
  for (int k = 0; k < 3; k++) {
    for (int i = 0; i < KEY_LEN; i++) priv[k][i] = (uint8_t)(i * (17 + 2 * k) + 3 * k + 1);
    EVP_PKEY *sk = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv[k], KEY_LEN);
    int ok = x25519_with(sk, NULL, pubs[k]);
    wgts_x25519_public(a, priv[k]);
    int zero_evp = x25519_with(sk, small_order, b), zero_direct = wgts_x25519(b, priv[k], small_order);
    EVP_PKEY_free(sk);
    if (!ok || memcmp(a, pubs[k], KEY_LEN) != 0 || zero_evp || zero_direct) return 0;
  }
  for (int k = 0; k < 3; k++) {
    EVP_PKEY *sk = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv[k], KEY_LEN);
    int ok = x25519_with(sk, pubs[(k + 1) % 3], a) && wgts_x25519(b, priv[k], pubs[(k + 1) % 3]);
    EVP_PKEY_free(sk);
    if (!ok || memcmp(a, b, KEY_LEN) != 0) return 0;
  }
  OPENSSL_cleanse(priv, sizeof priv);
  return 1;
}

static napi_value x25519_key(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value a[1];
  aead_state *s;
  if (napi_get_cb_info(env, info, &argc, a, NULL, (void **)&s) != napi_ok || argc < 1) return throw_type(env, "x25519Key: expected 1 argument");
  uint8_t *priv;
  size_t privlen;
  if (bytes_of(env, a[0], &priv, &privlen) || privlen != KEY_LEN) return throw_type(env, "x25519Key: private key must be 32 bytes");
  struct xkey *k = calloc(1, sizeof *k);
  if (!k) {
    napi_throw_error(env, NULL, "x25519Key: out of memory");
    return NULL;
  }
  if (!xkey_init(s, k, priv)) {
    free(k);
    napi_throw_error(env, NULL, "x25519Key: OpenSSL failure");
    return NULL;
  }
  napi_value handle;
  if (napi_create_external(env, k, free_xkey, NULL, &handle) != napi_ok) {
    free_xkey(env, k, NULL);
    return NULL;
  }
  return handle;
}

static napi_value x25519_derive(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value a[3];
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 3) return throw_type(env, "x25519Derive: expected 3 arguments");
  napi_valuetype vt;
  void *k = NULL;
  if (napi_typeof(env, a[0], &vt) != napi_ok || vt != napi_external || napi_get_value_external(env, a[0], &k) != napi_ok || !k)
    return throw_type(env, "x25519Derive: expected a key handle");
  uint8_t *pub, *out;
  size_t publen, outlen;
  if (optional_bytes(env, a[1], &pub, &publen) || (pub && publen != KEY_LEN)) return throw_type(env, "x25519Derive: public key must be 32 bytes or undefined");
  if (bytes_of(env, a[2], &out, &outlen) || outlen != KEY_LEN) return throw_type(env, "x25519Derive: out must be 32 bytes");
  napi_value result;
  napi_get_boolean(env, xkey_derive(k, pub, out), &result);
  return result;
}

/* ---- BLAKE2s ---------------------------------------------------------------------------- */

/* out = BLAKE2s-256(a || b); b may be NULL. */
static int digest2(aead_state *s, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, uint8_t *out) {
  unsigned int n = 0;
  return EVP_DigestInit_ex(s->mdctx, s->md, NULL) == 1 && (alen == 0 || EVP_DigestUpdate(s->mdctx, a, alen) == 1) &&
         (blen == 0 || EVP_DigestUpdate(s->mdctx, b, blen) == 1) && EVP_DigestFinal_ex(s->mdctx, out, &n) == 1 &&
         n == HASH_LEN;
}

/* out = HMAC-BLAKE2s(key, a || b). */
static int hmac2(aead_state *s, const uint8_t *key, size_t klen, const uint8_t *a, size_t alen, const uint8_t *b,
                 size_t blen, uint8_t *out) {
  uint8_t k[BLOCK_LEN], pad[BLOCK_LEN], inner[HASH_LEN];
  int ok = 1;
  memset(k, 0, sizeof k);
  if (klen > BLOCK_LEN)
    ok = digest2(s, key, klen, NULL, 0, k);
  else if (klen)
    memcpy(k, key, klen);
  for (int i = 0; i < BLOCK_LEN; i++) pad[i] = k[i] ^ 0x36;
  ok = ok && EVP_DigestInit_ex(s->mdctx, s->md, NULL) == 1 && EVP_DigestUpdate(s->mdctx, pad, BLOCK_LEN) == 1 &&
       (alen == 0 || EVP_DigestUpdate(s->mdctx, a, alen) == 1) && (blen == 0 || EVP_DigestUpdate(s->mdctx, b, blen) == 1);
  unsigned int n = 0;
  ok = ok && EVP_DigestFinal_ex(s->mdctx, inner, &n) == 1 && n == HASH_LEN;
  for (int i = 0; i < BLOCK_LEN; i++) pad[i] = k[i] ^ 0x5c;
  ok = ok && digest2(s, pad, BLOCK_LEN, inner, HASH_LEN, out);
  OPENSSL_cleanse(k, sizeof k);
  OPENSSL_cleanse(pad, sizeof pad);
  OPENSSL_cleanse(inner, sizeof inner);
  return ok;
}

static napi_value throw_type(napi_env env, const char *msg);

static napi_value hash_(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  aead_state *s;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, (void **)&s) != napi_ok || argc < 2)
    return throw_type(env, "hash(out, a, b?)");
  uint8_t *out, *a, *b = NULL;
  size_t olen, alen, blen = 0;
  if (bytes_of(env, argv[0], &out, &olen) || olen != HASH_LEN || bytes_of(env, argv[1], &a, &alen) ||
      (argc > 2 && optional_bytes(env, argv[2], &b, &blen)))
    return throw_type(env, "hash: bad arguments");
  if (!digest2(s, a, alen, b, blen, out)) napi_throw_error(env, NULL, "BLAKE2s failed");
  return NULL;
}

/* (out, key, input) arguments: out of exactly outlen bytes, key of 1..maxkey bytes (0: any). */
static int out_key_input(napi_env env, napi_callback_info info, aead_state **s, uint8_t **out, size_t outlen,
                         uint8_t **key, size_t *klen, size_t maxkey, uint8_t **in, size_t *inlen) {
  size_t argc = 3, olen;
  napi_value argv[3];
  return napi_get_cb_info(env, info, &argc, argv, NULL, (void **)s) == napi_ok && argc >= 3 &&
                 !bytes_of(env, argv[0], out, &olen) && olen == outlen && !bytes_of(env, argv[1], key, klen) &&
                 (maxkey == 0 || (*klen > 0 && *klen <= maxkey)) && !bytes_of(env, argv[2], in, inlen)
             ? 0
             : -1;
}

static napi_value hmac_(napi_env env, napi_callback_info info) {
  aead_state *s;
  uint8_t *out, *key, *in;
  size_t klen, inlen;
  if (out_key_input(env, info, &s, &out, HASH_LEN, &key, &klen, 0, &in, &inlen)) return throw_type(env, "hmac(out32, key, input)");
  if (!hmac2(s, key, klen, in, inlen, NULL, 0, out)) napi_throw_error(env, NULL, "HMAC-BLAKE2s failed");
  return NULL;
}

static napi_value kdf_(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  aead_state *s;
  uint8_t *key, *in, *outs[3] = {NULL, NULL, NULL};
  size_t klen, inlen, olen;
  /* argc comes back as the number of arguments given, which may exceed the 5 we read */
  if (napi_get_cb_info(env, info, &argc, argv, NULL, (void **)&s) != napi_ok || argc < 3 || argc > 5 ||
      bytes_of(env, argv[0], &key, &klen) || bytes_of(env, argv[1], &in, &inlen))
    return throw_type(env, "kdf(key, input, out1, out2?, out3?)");
  size_t n = argc - 2;
  for (size_t i = 0; i < n; i++)
    if (bytes_of(env, argv[2 + i], &outs[i], &olen) || olen != HASH_LEN) return throw_type(env, "kdf: outputs are 32 bytes");
  uint8_t prk[HASH_LEN];
  uint8_t ctr = 1;
  int ok = hmac2(s, key, klen, in, inlen, NULL, 0, prk) && hmac2(s, prk, HASH_LEN, &ctr, 1, NULL, 0, outs[0]);
  for (size_t i = 1; ok && i < n; i++) {
    ctr = (uint8_t)(i + 1);
    ok = hmac2(s, prk, HASH_LEN, outs[i - 1], HASH_LEN, &ctr, 1, outs[i]);
  }
  OPENSSL_cleanse(prk, sizeof prk);
  if (!ok) napi_throw_error(env, NULL, "KDF failed");
  return NULL;
}

static napi_value mac_(napi_env env, napi_callback_info info) {
  aead_state *s;
  uint8_t *out, *key, *in;
  size_t klen, inlen;
  if (out_key_input(env, info, &s, &out, MAC_LEN, &key, &klen, HASH_LEN, &in, &inlen))
    return throw_type(env, "mac(out16, key, input)");
  if (!s->macctx) {
    napi_throw_error(env, NULL, "this OpenSSL has no BLAKE2SMAC");
    return NULL;
  }
  size_t size = MAC_LEN, n = 0;
  OSSL_PARAM params[2] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size), OSSL_PARAM_construct_end()};
  if (EVP_MAC_init(s->macctx, key, klen, params) != 1 || EVP_MAC_update(s->macctx, in, inlen) != 1 ||
      EVP_MAC_final(s->macctx, out, &n, MAC_LEN) != 1 || n != MAC_LEN)
    napi_throw_error(env, NULL, "BLAKE2SMAC failed");
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  aead_state *s = calloc(1, sizeof *s);
  if (!s) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  s->enc = EVP_CIPHER_CTX_new();
  s->dec = EVP_CIPHER_CTX_new();
  if (!s->enc || !s->dec || !EVP_EncryptInit_ex(s->enc, EVP_chacha20_poly1305(), NULL, NULL, NULL) ||
      !EVP_DecryptInit_ex(s->dec, EVP_chacha20_poly1305(), NULL, NULL, NULL) ||
      !EVP_CIPHER_CTX_ctrl(s->enc, EVP_CTRL_AEAD_SET_IVLEN, NONCE_LEN, NULL) ||
      !EVP_CIPHER_CTX_ctrl(s->dec, EVP_CTRL_AEAD_SET_IVLEN, NONCE_LEN, NULL)) {
    free_state(env, s, NULL);
    napi_throw_error(env, NULL, "OpenSSL has no ChaCha20-Poly1305");
    return NULL;
  }
  s->md = EVP_MD_fetch(NULL, "BLAKE2S-256", NULL);
  s->mdctx = EVP_MD_CTX_new();
  if (!s->md || !s->mdctx) {
    free_state(env, s, NULL);
    napi_throw_error(env, NULL, "OpenSSL has no BLAKE2s-256");
    return NULL;
  }
  s->aead_direct = s->aead_found = wgts_chapoly_resolve() && direct_agrees(s);
  s->x25519_direct = s->x25519_found = wgts_x25519_resolve() && x25519_agrees();
  s->mac = EVP_MAC_fetch(NULL, "BLAKE2SMAC", NULL);
  s->macctx = s->mac ? EVP_MAC_CTX_new(s->mac) : NULL;
  /* The state lives as long as this module instance (one per thread/worker). */
  napi_value holder;
  napi_create_object(env, &holder);
  napi_wrap(env, holder, s, free_state, NULL, NULL);
  napi_set_named_property(env, exports, "_state", holder);
  napi_property_descriptor props[] = {
      {"seal", NULL, seal, NULL, NULL, NULL, napi_enumerable, s},
      {"open", NULL, open_, NULL, NULL, NULL, napi_enumerable, s},
      {"useEvp", NULL, use_evp, NULL, NULL, NULL, napi_enumerable, s},
      {"x25519Key", NULL, x25519_key, NULL, NULL, NULL, napi_enumerable, s},
      {"x25519Derive", NULL, x25519_derive, NULL, NULL, NULL, napi_enumerable, NULL},
      {"hash", NULL, hash_, NULL, NULL, NULL, napi_enumerable, s},
      {"hmac", NULL, hmac_, NULL, NULL, NULL, napi_enumerable, s},
      {"kdf", NULL, kdf_, NULL, NULL, NULL, napi_enumerable, s},
      {"mac", NULL, mac_, NULL, NULL, NULL, napi_enumerable, s},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  napi_value hasmac;
  napi_get_boolean(env, s->macctx != NULL, &hasmac);
  napi_set_named_property(env, exports, "hasMac", hasmac);
  napi_value path;
  napi_create_string_utf8(env, s->aead_found ? "direct" : "evp", NAPI_AUTO_LENGTH, &path);
  napi_set_named_property(env, exports, "aeadPath", path);
  napi_create_string_utf8(env, s->x25519_found ? "direct" : "evp", NAPI_AUTO_LENGTH, &path);
  napi_set_named_property(env, exports, "x25519Path", path);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
