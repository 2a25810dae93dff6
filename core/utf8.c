#include "utf8.h"

#include <string.h>

int eim_utf8_valid(const char *str, size_t len) {
  const unsigned char *s = (const unsigned char *)str, *e = s + len;
  while (s < e) {
    unsigned c = *s;
    if (c < 0x80) {
      s++;
      continue;
    }
    size_t n;
    unsigned cp, min;
    if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; min = 0x10000; }
    else return 0;
    if ((size_t)(e - s) < n) return 0;
    for (size_t i = 1; i < n; i++) {
      if ((s[i] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    s += n;
  }
  return 1;
}

static int hex_digit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int eim_json_has_nul(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++) {
    /* JSON forbids raw control characters in strings; cJSON copies them,
     * and a NUL cuts the C string short. */
    if (s[i] == '\0') return 1;
    if (s[i] != '\\') continue;
    if (i + 1 < len && s[i + 1] == 'u') {
      /* cJSON decodes a \u without four hex digits as U+0000. */
      if (i + 6 > len) return 1;
      for (size_t k = i + 2; k < i + 6; k++)
        if (!hex_digit(s[k])) return 1;
      if (memcmp(s + i + 2, "0000", 4) == 0) return 1;
    }
    i++; /* skip whatever the backslash escapes, including another backslash */
  }
  return 0;
}
