/*
 * ChaCha20-Poly1305 (RFC 8439 section 2.8) built on the ChaCha20 and Poly1305 primitives of the
 * OpenSSL inside Node.js: ChaCha20_ctr32 and Poly1305_Init/Update/Final, the assembly that EVP's
 * ChaCha20-Poly1305 itself ends in.
 *
 * Why: a transport message is one seal or one open, mostly of small packets (a ping, a TCP ACK).
 * Through EVP each costs a cipher re-init (provider dispatch, parameter parsing), several update
 * calls and a control call for the tag: ~4 us for 96 bytes here, and several times that when the
 * caches are cold after an idle gap (~27 us), which a ping pays at every hop. Straight on the
 * primitives there is one keystream block for the Poly1305 key, the bulk in place, one MAC.
 *
 * These symbols are exported by the node binary (it exports its whole OpenSSL for addons) but
 * are not OpenSSL's public API, so they are looked up at run time (dlsym), never linked: a Node
 * built against a shared system OpenSSL, which hides them, keeps the EVP path. aead.c also
 * checks this path against EVP on a set of messages before it uses it (wgts_chapoly is then 1).
 */
#define _GNU_SOURCE
#include "chapoly.h"

#include <dlfcn.h>
#include <openssl/crypto.h>
#include <string.h>

typedef void (*chacha_fn)(unsigned char *out, const unsigned char *in, size_t len, const unsigned int key[8],
                          const unsigned int counter[4]);
typedef size_t (*poly_size_fn)(void);
typedef void (*poly_init_fn)(void *ctx, const unsigned char key[32]);
typedef void (*poly_update_fn)(void *ctx, const unsigned char *in, size_t len);
typedef void (*poly_final_fn)(void *ctx, unsigned char mac[16]);

static chacha_fn chacha;
static poly_init_fn poly_init;
static poly_update_fn poly_update;
static poly_final_fn poly_final;
static size_t poly_size;

/* Room for OpenSSL's POLY1305 state (Poly1305_ctx_size(), 240 bytes in OpenSSL 3). */
#define POLY_CTX_MAX 512

int wgts_chapoly_resolve(void) {
  chacha_fn c = (chacha_fn)dlsym(RTLD_DEFAULT, "ChaCha20_ctr32");
  poly_size_fn size = (poly_size_fn)dlsym(RTLD_DEFAULT, "Poly1305_ctx_size");
  poly_init_fn init = (poly_init_fn)dlsym(RTLD_DEFAULT, "Poly1305_Init");
  poly_update_fn update = (poly_update_fn)dlsym(RTLD_DEFAULT, "Poly1305_Update");
  poly_final_fn final = (poly_final_fn)dlsym(RTLD_DEFAULT, "Poly1305_Final");
  if (!c || !size || !init || !update || !final || size() > POLY_CTX_MAX) return 0;
  chacha = c;
  poly_init = init;
  poly_update = update;
  poly_final = final;
  poly_size = size();
  return 1;
}

static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static void put_le64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

struct chapoly {
  unsigned int key[8], counter[4];
  _Alignas(64) unsigned char poly[POLY_CTX_MAX];
};

/* Key and nonce as ChaCha20 words; block 0's first 32 bytes key the MAC (RFC 8439 2.6). */
static void start(struct chapoly *c, const uint8_t key[32], const uint8_t nonce[12]) {
  for (int i = 0; i < 8; i++) c->key[i] = le32(key + 4 * i);
  c->counter[0] = 0;
  c->counter[1] = le32(nonce);
  c->counter[2] = le32(nonce + 4);
  c->counter[3] = le32(nonce + 8);
  uint8_t block[64] = {0};
  chacha(block, block, sizeof block, c->key, c->counter);
  poly_init(c->poly, block);
  OPENSSL_cleanse(block, sizeof block);
}

/* out = in ^ the keystream from block `first` on (n bytes; out may be in). */
static void crypt(struct chapoly *c, uint8_t *out, const uint8_t *in, size_t n, unsigned int first) {
  size_t whole = n & ~(size_t)63;
  c->counter[0] = first;
  if (whole) chacha(out, in, whole, c->key, c->counter);
  if (n > whole) {
    uint8_t ks[64] = {0};
    c->counter[0] = first + (unsigned int)(whole / 64);
    chacha(ks, ks, sizeof ks, c->key, c->counter);
    for (size_t i = 0; i < n - whole; i++) out[whole + i] = in[whole + i] ^ ks[i];
    OPENSSL_cleanse(ks, sizeof ks);
  }
}

/* The MAC input: aad, pad to 16, ciphertext, pad to 16, both lengths as 64-bit little-endian. */
static void mac(struct chapoly *c, const uint8_t *aad, size_t alen, const uint8_t *ct, size_t n, uint8_t tag[16]) {
  static const uint8_t zeros[16];
  if (alen) {
    poly_update(c->poly, aad, alen);
    if (alen % 16) poly_update(c->poly, zeros, 16 - alen % 16);
  }
  if (n) {
    poly_update(c->poly, ct, n);
    if (n % 16) poly_update(c->poly, zeros, 16 - n % 16);
  }
  uint8_t lens[16];
  put_le64(lens, alen);
  put_le64(lens + 8, n);
  poly_update(c->poly, lens, sizeof lens);
  poly_final(c->poly, tag);
}

/* Key and MAC state: what would let anyone forge or decrypt. */
static void wipe(struct chapoly *c) {
  OPENSSL_cleanse(c->key, sizeof c->key);
  OPENSSL_cleanse(c->poly, poly_size);
}

void wgts_chapoly_seal(const uint8_t key[32], const uint8_t nonce[12], const uint8_t *pt, size_t plen, size_t padding,
                       const uint8_t *aad, size_t alen, uint8_t *out) {
  struct chapoly c;
  start(&c, key, nonce);
  /* Whole blocks straight from the plaintext (RFC 8439 2.8: block 0 went to the MAC key); the
   * rest of it and its zero padding, under 64 + 16 bytes, through a block of our own. */
  size_t whole = plen & ~(size_t)63, rest = plen - whole, n = plen + padding;
  uint8_t tail[64 + 16];
  memcpy(tail, pt + whole, rest);
  memset(tail + rest, 0, padding);
  crypt(&c, out, pt, whole, 1);
  crypt(&c, out + whole, tail, rest + padding, 1 + (unsigned int)(whole / 64));
  mac(&c, aad, alen, out, n, out + n);
  wipe(&c);
}

int wgts_chapoly_open(const uint8_t key[32], const uint8_t nonce[12], const uint8_t *sealed, size_t slen,
                      const uint8_t *aad, size_t alen, uint8_t *out) {
  size_t n = slen - 16;
  struct chapoly c;
  uint8_t tag[16];
  start(&c, key, nonce);
  mac(&c, aad, alen, sealed, n, tag);
  /* Constant time: how many bytes match must not show. */
  uint8_t diff = 0;
  for (int i = 0; i < 16; i++) diff |= tag[i] ^ sealed[n + i];
  int ok = diff == 0;
  if (ok) crypt(&c, out, sealed, n, 1);
  wipe(&c);
  return ok;
}
