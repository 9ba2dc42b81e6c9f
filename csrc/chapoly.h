/*
 * ChaCha20-Poly1305 (RFC 8439) straight on OpenSSL's ChaCha20 and Poly1305 primitives, without
 * the EVP layer (see chapoly.c for why, and for when it is used).
 */
#ifndef WGTS_CHAPOLY_H
#define WGTS_CHAPOLY_H

#include <stddef.h>
#include <stdint.h>

/* Resolves the primitives in the running process. 1 if they are there, 0 otherwise. */
int wgts_chapoly_resolve(void);

/*
 * out = ChaCha20(pt || `padding` zero bytes) || tag: plen + padding + 16 bytes, padding at
 * most 16. `out` may be `pt` itself. Needs a successful wgts_chapoly_resolve().
 */
void wgts_chapoly_seal(const uint8_t key[32], const uint8_t nonce[12], const uint8_t *pt, size_t plen, size_t padding,
                       const uint8_t *aad, size_t alen, uint8_t *out);

/*
 * Checks the tag of `sealed` (slen >= 16 bytes) first; only then writes the slen - 16 bytes of
 * plaintext to `out` (which may be `sealed` itself). 1 when authentic, 0 otherwise (out untouched).
 */
int wgts_chapoly_open(const uint8_t key[32], const uint8_t nonce[12], const uint8_t *sealed, size_t slen,
                      const uint8_t *aad, size_t alen, uint8_t *out);

#endif
