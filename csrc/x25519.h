/*
 * X25519 (RFC 7748) straight on OpenSSL's scalar multiplication, without the EVP_PKEY layer (see
 * x25519.c for why, and for when it is used).
 */
#ifndef WGTS_X25519_H
#define WGTS_X25519_H

#include <stdint.h>

/* Resolves the primitives in the running process. 1 if they are there, 0 otherwise. */
int wgts_x25519_resolve(void);

/* out = X25519(priv, pub); 1, or 0 when the result is all zeros (pub of small order). */
int wgts_x25519(uint8_t out[32], const uint8_t priv[32], const uint8_t pub[32]);

/* out = X25519(priv, 9): the public key. */
void wgts_x25519_public(uint8_t out[32], const uint8_t priv[32]);

#endif
