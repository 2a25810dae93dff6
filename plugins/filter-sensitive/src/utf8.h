/* Strict UTF-8 decoding shared by the matcher, the masker and the word-list
 * reader. */
#ifndef EIM_FS_UTF8_H
#define EIM_FS_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes one code point from s (n > 0 bytes available) into *cp. Returns
 * the number of bytes used (1..4), or 0 when s does not start with a valid,
 * shortest-form, non-surrogate sequence; never reads past s + n. */
static inline size_t eim_fs_utf8_decode(const unsigned char *s, size_t n,
                                        uint32_t *cp) {
  uint32_t c = s[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  if (c >= 0xC2 && c <= 0xDF) {
    if (n < 2 || (s[1] & 0xC0) != 0x80)
      return 0;
    *cp = ((c & 0x1F) << 6) | (s[1] & 0x3F);
    return 2;
  }
  if (c >= 0xE0 && c <= 0xEF) {
    if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
      return 0;
    c = ((c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    if (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF))
      return 0;
    *cp = c;
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 ||
        (s[3] & 0xC0) != 0x80)
      return 0;
    c = ((c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
        ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    if (c < 0x10000 || c > 0x10FFFF)
      return 0;
    *cp = c;
    return 4;
  }
  return 0;
}

/* 1 when the len bytes at s are valid UTF-8. */
static inline int eim_fs_utf8_valid(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  uint32_t cp;
  size_t i = 0;
  while (i < len) {
    size_t k = eim_fs_utf8_decode(p + i, len - i, &cp);
    if (k == 0)
      return 0;
    i += k;
  }
  return 1;
}

#endif
