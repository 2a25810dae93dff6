/* The WebSocket envelope parser on arbitrary bytes: eim_json_parse_object,
 * the field validators eim_json_str / eim_json_u64 on every member, and the
 * two byte-level guards it relies on, each checked against an independent
 * reference:
 *   - eim_utf8_valid against the filter plugin's strict decoder;
 *   - eim_json_has_nul finds every \u0000 a string-aware scan
 *     finds, on every document cJSON accepts;
 *   - an accepted document holds no U+0000 in any string (C strings would
 *     cut it short): no raw NUL byte, no \u0000, and no malformed \u
 *     escape, which cJSON decodes as U+0000;
 *   - an accepted document renders to valid UTF-8 without \u0000, and
 *     rendering is a fixed point: parse(render(doc)) renders the same. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "utf8.h"
/* The filter plugin's decoder, an independent implementation. */
#include "../plugins/filter-sensitive/src/utf8.h"

#define REQUIRE(cond)                                                          \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: broken contract: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                 \
    }                                                                          \
  } while (0)

/* 1 when a string of the JSON text s holds the escape \u0000. Follows
 * string boundaries, unlike the core's guard, which may rely on
 * backslashes appearing only inside strings. */
static int ref_nul_escape(const char *s, size_t len) {
  int in_str = 0;
  for (size_t i = 0; i < len; i++) {
    if (!in_str) {
      in_str = s[i] == '"';
      continue;
    }
    if (s[i] == '"') {
      in_str = 0;
    } else if (s[i] == '\\' && i + 1 < len) {
      if (s[i + 1] == 'u' && i + 6 <= len && memcmp(s + i + 2, "0000", 4) == 0) return 1;
      i++;
    }
  }
  return 0;
}

static int is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* 1 when a string of the JSON text s would decode to one holding U+0000:
 * a raw NUL byte, \u0000, or a \u not followed by four hex digits. */
static int ref_decodes_nul(const char *s, size_t len) {
  int in_str = 0;
  for (size_t i = 0; i < len; i++) {
    if (!in_str) {
      in_str = s[i] == '"';
      continue;
    }
    if (s[i] == '\0') return 1;
    if (s[i] == '"') {
      in_str = 0;
    } else if (s[i] == '\\' && i + 1 < len) {
      if (s[i + 1] == 'u') {
        if (i + 6 > len) return 1;
        for (int k = 2; k < 6; k++)
          if (!is_hex(s[i + k])) return 1;
        if (memcmp(s + i + 2, "0000", 4) == 0) return 1;
      }
      i++;
    }
  }
  return 0;
}

static void check_fields(const cJSON *obj) {
  const cJSON *it;
  cJSON_ArrayForEach(it, obj) {
    if (it->string == NULL) continue;
    char why[256] = "";
    const char *s = NULL;
    int rc = eim_json_str(obj, it->string, 1, 1, 16, &s, why, sizeof why);
    if (rc == 0) {
      /* Lookup is by first match, so a repeated key may give another
       * member than it. */
      REQUIRE(s != NULL && strlen(s) >= 1 && strlen(s) <= 16);
    } else {
      REQUIRE(why[0] != '\0');
    }
    uint64_t v = 12345;
    why[0] = '\0';
    rc = eim_json_u64(obj, it->string, 0, (uint64_t)1 << 53, &v, why, sizeof why);
    if (rc == 0)
      REQUIRE(v <= (uint64_t)1 << 53);
    else
      REQUIRE(why[0] != '\0');
    if (cJSON_IsObject(it)) check_fields(it);
  }
  /* A field that is absent: optional keeps the default, required fails. */
  const char *s = "default";
  char why[256] = "";
  if (cJSON_GetObjectItemCaseSensitive(obj, "\001absent") == NULL) {
    REQUIRE(eim_json_str(obj, "\001absent", 0, 1, 8, &s, why, sizeof why) == 0);
    REQUIRE(strcmp(s, "default") == 0);
    REQUIRE(eim_json_str(obj, "\001absent", 1, 1, 8, &s, why, sizeof why) == -1);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  int valid = eim_utf8_valid(text, size);
  REQUIRE(valid == eim_fs_utf8_valid(text, size));

  int nul = eim_json_has_nul(text, size);
  /* Outside strings only whitespace and structure can precede the end of
   * what cJSON accepted, so both scans must agree on that prefix. */
  const char *end = NULL;
  cJSON *raw = cJSON_ParseWithLengthOpts(text, size, &end, 0);
  if (raw != NULL) {
    size_t used = (size_t)(end - text);
    if (ref_nul_escape(text, used)) REQUIRE(eim_json_has_nul(text, used));
    cJSON_Delete(raw);
  }

  char why[256] = "";
  cJSON *o = eim_json_parse_object(text, size, why, sizeof why);
  if (o == NULL) {
    REQUIRE(why[0] != '\0');
    return 0;
  }
  REQUIRE(valid && !nul && cJSON_IsObject(o));
  check_fields(o);

  if (ref_decodes_nul(text, size)) {
    fprintf(stderr, "eim_json_parse_object accepted a document whose strings decode to U+0000, "
                    "which C strings silently cut short\n");
    abort();
  }

  char *out = eim_json_print(cJSON_Duplicate(o, 1));
  REQUIRE(out != NULL);
  size_t olen = strlen(out);
  REQUIRE(eim_utf8_valid(out, olen));
  REQUIRE(!eim_json_has_nul(out, olen));
  cJSON *again = eim_json_parse_object(out, olen, why, sizeof why);
  REQUIRE(again != NULL);
  char *out2 = eim_json_print(again);
  REQUIRE(out2 != NULL && strcmp(out, out2) == 0);
  cJSON_free(out2);
  cJSON_free(out);
  cJSON_Delete(o);
  return 0;
}
