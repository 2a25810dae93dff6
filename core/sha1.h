/* SHA-1 (FIPS 180-4), only for the WebSocket handshake (RFC 6455 4.2.2),
 * where the protocol demands it; it is not used for anything secret. */
#ifndef EIM_SHA1_H
#define EIM_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define EIM_SHA1_LEN 20

typedef struct eim_sha1 {
  uint32_t h[5];
  uint64_t total;        /* bytes hashed so far */
  uint8_t block[64];
  size_t used;           /* bytes waiting in block */
} eim_sha1;

void eim_sha1_init(eim_sha1 *s);
void eim_sha1_update(eim_sha1 *s, const void *data, size_t len);
/* Writes the 20-byte digest; s must be re-initialised before reuse. */
void eim_sha1_final(eim_sha1 *s, uint8_t out[EIM_SHA1_LEN]);
/* One-shot convenience. */
void eim_sha1_digest(const void *data, size_t len, uint8_t out[EIM_SHA1_LEN]);

#endif
