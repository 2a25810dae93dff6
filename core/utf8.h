/* UTF-8 validation (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). */
#ifndef EIM_UTF8_H
#define EIM_UTF8_H

#include <stddef.h>

/* 1 when s[0..len) is valid UTF-8, else 0. */
int eim_utf8_valid(const char *s, size_t len);

/* 1 when JSON text could decode to a string holding U+0000, which C strings
 * cannot carry, so the server refuses it: a raw NUL byte, a \u0000 escape
 * (outside an escaped backslash), or a \u without four hex digits (which
 * cJSON decodes as U+0000). */
int eim_json_has_nul(const char *s, size_t len);

#endif
