/* SHA-1 against the FIPS 180-4 example vectors (the NIST "SHA1 examples"
 * document and the one-million-'a' vector) and the RFC 6455 handshake
 * example, computed in one call and in odd-sized pieces. */
#include "sha1.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static void hex(const uint8_t *d, char out[41]) {
  for (int i = 0; i < 20; i++) sprintf(out + 2 * i, "%02x", d[i]);
}

static void check(const char *name, const void *data, size_t len, const char *want) {
  uint8_t d[EIM_SHA1_LEN];
  char got[41];
  eim_sha1_digest(data, len, d);
  hex(d, got);
  if (strcmp(got, want) != 0) {
    fprintf(stderr, "FAIL %s one-shot: got %s want %s\n", name, got, want);
    failures++;
  }
  /* The same bytes fed in pieces of 1, 7, 63, 64 and 65 bytes. */
  static const size_t steps[] = {1, 7, 63, 64, 65};
  for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
    eim_sha1 s;
    eim_sha1_init(&s);
    for (size_t off = 0; off < len; off += steps[k])
      eim_sha1_update(&s, (const char *)data + off, len - off < steps[k] ? len - off : steps[k]);
    eim_sha1_final(&s, d);
    hex(d, got);
    if (strcmp(got, want) != 0) {
      fprintf(stderr, "FAIL %s in pieces of %zu: got %s want %s\n", name, steps[k], got, want);
      failures++;
    }
  }
}

int main(void) {
  check("empty", "", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  check("abc", "abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
  const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  check("448 bits", two, strlen(two), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  const char *four =
      "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlm"
      "nopqrsmnopqrstnopqrstu";
  check("896 bits", four, strlen(four), "a49b2446a02c645bf419f995b67091253a04a259");
  char *million = malloc(1000000);
  memset(million, 'a', 1000000);
  check("million a", million, 1000000, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  free(million);
  /* RFC 6455 1.3: key "dGhlIHNhbXBsZSBub25jZQ==" plus the GUID hashes to
   * the bytes whose base64 is "s3pPLMBiTxaGbAHlm21+xOo=". */
  const char *rfc = "dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  check("rfc6455", rfc, strlen(rfc), "b37a4f2cc0624f1690f64606cf385945b2bec4ea");
  if (failures) return 1;
  printf("sha1: all vectors pass\n");
  return 0;
}
