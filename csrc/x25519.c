/*
 * X25519 (RFC 7748) on the OpenSSL inside Node.js through ossl_x25519 and
 * ossl_x25519_public_from_private, the functions EVP's X25519 key exchange itself ends in.
 *
 * Why: through EVP a Diffie-Hellman is an EVP_PKEY for the peer's key, a context, an init, a
 * set_peer and a derive, ~34 us here of which the scalar multiplication is the smaller part
 * once the caches are cold; a handshake computes eight of them on its latency path. These
 * functions clamp the private key and refuse an all-zero result (a public key of small order)
 * exactly as EVP does.
 *
 * As for chapoly.c: exported by the node binary with the rest of its OpenSSL, not public API,
 * so looked up at run time (dlsym) and used only after aead.c checked them against EVP.
 */
#define _GNU_SOURCE
#include "x25519.h"

#include <dlfcn.h>
#include <string.h>

typedef int (*dh_fn)(uint8_t out[32], const uint8_t priv[32], const uint8_t pub[32]);
typedef void (*pub_fn)(uint8_t out[32], const uint8_t priv[32]);

static dh_fn dh;
static pub_fn pub_from_priv;

int wgts_x25519_resolve(void) {
  dh_fn d = (dh_fn)dlsym(RTLD_DEFAULT, "ossl_x25519");
  pub_fn p = (pub_fn)dlsym(RTLD_DEFAULT, "ossl_x25519_public_from_private");
  if (!d || !p) return 0;
  dh = d;
  pub_from_priv = p;
  return 1;
}

int wgts_x25519(uint8_t out[32], const uint8_t priv[32], const uint8_t pub[32]) {
  if (dh(out, priv, pub) == 1) return 1;
  memset(out, 0, 32);
  return 0;
}

void wgts_x25519_public(uint8_t out[32], const uint8_t priv[32]) { pub_from_priv(out, priv); }
