/* UTF-8 validation (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). */
#ifndef EIM_UTF8_H
#define EIM_UTF8_H

#include <stddef.h>

/* 1 when s[0..len) is valid UTF-8, else 0. */
int eim_utf8_valid(const char *s, size_t len);

/* 1 when the JSON text holds a \u0000 escape outside of an escaped
 * backslash: C strings cannot carry it, so the server refuses it. */
int eim_json_has_nul_escape(const char *s, size_t len);

#endif
