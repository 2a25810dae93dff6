/* JSON rendering of protocol objects and small helpers over cJSON. */
#ifndef EIM_JSON_H
#define EIM_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "exampleim/plugin.h"

/* protocol.md objects. */
cJSON *eim_json_message(const eim_msg *m);
cJSON *eim_json_conversation(const eim_conv *c);
cJSON *eim_json_user(const eim_user *u);
/* {"error": {"code", "message"}} */
cJSON *eim_json_error(int perr, const char *message);

/* Renders and frees `o` (eim_jbuf_value); NULL on OOM. Free the text with
 * cJSON_free. */
char *eim_json_print(cJSON *o);

/* A growing buffer of JSON text, for the messages the server sends most:
 * cJSON_PrintUnformatted prints every number with sprintf and reads it back
 * with sscanf, which cost more than the rest of a fan-out together. Errors
 * (out of memory, an invalid item) stick: eim_jbuf_finish then returns
 * NULL. Start from an all-zero buffer. */
typedef struct eim_jbuf {
  char *p;
  size_t len, cap;
  int failed;
} eim_jbuf;

void eim_jbuf_raw(eim_jbuf *b, const char *s, size_t n);
/* s as a JSON string, quoted and escaped as cJSON does. */
void eim_jbuf_str(eim_jbuf *b, const char *s);
/* A whole number within +-2^53 is printed exactly as an integer; others as
 * the shortest of %.15g and %.17g that reads back the same; NaN and
 * infinities as null (as cJSON). */
void eim_jbuf_num(eim_jbuf *b, double d);
/* item, unformatted, as cJSON_PrintUnformatted would (but for numbers
 * printed as above). */
void eim_jbuf_value(eim_jbuf *b, const cJSON *item);
/* The NUL-terminated text (to free with cJSON_free), or NULL after an error
 * (the buffer is freed either way). */
char *eim_jbuf_finish(eim_jbuf *b);

/* Field access with validation. Each returns 0 and sets *out, or -1 with a
 * message in why ("field 'x' must be a string"). `required` 0 lets a missing
 * field keep the caller's default. */
int eim_json_str(const cJSON *obj, const char *name, int required, size_t minlen,
                 size_t maxlen, const char **out, char *why, size_t whylen);
int eim_json_u64(const cJSON *obj, const char *name, int required, uint64_t max,
                 uint64_t *out, char *why, size_t whylen);

/* Parses a JSON object from len bytes, refusing invalid UTF-8 and \u0000.
 * NULL with why on failure. */
cJSON *eim_json_parse_object(const char *data, size_t len, char *why, size_t whylen);

#endif
