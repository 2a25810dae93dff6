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

/* Renders and frees `o`; NULL on OOM. */
char *eim_json_print(cJSON *o);

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
