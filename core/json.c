#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "utf8.h"

cJSON *eim_json_message(const eim_msg *m) {
  cJSON *o = cJSON_CreateObject();
  if (o == NULL) return NULL;
  cJSON_AddStringToObject(o, "msg_id", m->msg_id ? m->msg_id : "");
  cJSON_AddStringToObject(o, "conversation_id", m->conversation_id);
  cJSON_AddNumberToObject(o, "seq", (double)m->seq);
  cJSON_AddStringToObject(o, "sender", m->sender);
  cJSON_AddStringToObject(o, "client_msg_id", m->client_msg_id ? m->client_msg_id : "");
  cJSON_AddStringToObject(o, "content_type", m->content_type ? m->content_type : "text");
  cJSON_AddStringToObject(o, "content", m->content ? m->content : "");
  cJSON_AddNumberToObject(o, "created_at", (double)m->created_at);
  return o;
}

cJSON *eim_json_conversation(const eim_conv *c) {
  cJSON *o = cJSON_CreateObject();
  if (o == NULL) return NULL;
  cJSON_AddStringToObject(o, "conversation_id", c->conversation_id);
  cJSON_AddStringToObject(o, "type", c->type == EIM_CONV_SINGLE ? "single" : "group");
  cJSON_AddStringToObject(o, "name", c->name ? c->name : "");
  cJSON *mem = cJSON_AddArrayToObject(o, "members");
  for (size_t i = 0; mem && i < c->nmembers; i++)
    cJSON_AddItemToArray(mem, cJSON_CreateString(c->members[i]));
  cJSON_AddNumberToObject(o, "created_at", (double)c->created_at);
  cJSON_AddNumberToObject(o, "max_seq", (double)c->max_seq);
  uint64_t rs = c->read_seq > c->max_seq ? c->max_seq : c->read_seq;
  cJSON_AddNumberToObject(o, "read_seq", (double)rs);
  cJSON_AddNumberToObject(o, "unread", (double)(c->max_seq - rs));
  if (c->last_message)
    cJSON_AddItemToObject(o, "last_message", eim_json_message(c->last_message));
  else
    cJSON_AddNullToObject(o, "last_message");
  return o;
}

cJSON *eim_json_user(const eim_user *u) {
  cJSON *o = cJSON_CreateObject();
  if (o == NULL) return NULL;
  cJSON_AddStringToObject(o, "user_id", u->user_id);
  cJSON_AddStringToObject(o, "username", u->username);
  return o;
}

cJSON *eim_json_error(int perr, const char *message) {
  cJSON *o = cJSON_CreateObject();
  cJSON *e = cJSON_AddObjectToObject(o, "error");
  cJSON_AddStringToObject(e, "code", eim_errcode_name(perr));
  cJSON_AddStringToObject(e, "message", message);
  return o;
}

char *eim_json_print(cJSON *o) {
  if (o == NULL) return NULL;
  eim_jbuf b = {0};
  eim_jbuf_value(&b, o);
  cJSON_Delete(o);
  return eim_jbuf_finish(&b);
}

/* Room for n more bytes; 0, or -1 (and failed set). */
static int jbuf_reserve(eim_jbuf *b, size_t n) {
  if (b->failed) return -1;
  if (b->len + n <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + n) cap *= 2;
  char *p = cJSON_malloc(cap);
  if (p == NULL) {
    b->failed = 1;
    return -1;
  }
  if (b->len) memcpy(p, b->p, b->len);
  cJSON_free(b->p);
  b->p = p;
  b->cap = cap;
  return 0;
}

void eim_jbuf_raw(eim_jbuf *b, const char *s, size_t n) {
  if (jbuf_reserve(b, n) != 0) return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

void eim_jbuf_str(eim_jbuf *b, const char *s) {
  static const char hex[] = "0123456789abcdef";
  size_t n = strlen(s);
  /* Worst case: every byte a \u00XX escape. */
  if (jbuf_reserve(b, n * 6 + 2) != 0) return;
  char *o = b->p + b->len;
  *o++ = '"';
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch >= 32 && ch != '"' && ch != '\\') {
      *o++ = (char)ch;
      continue;
    }
    *o++ = '\\';
    switch (ch) {
      case '"': *o++ = '"'; break;
      case '\\': *o++ = '\\'; break;
      case '\b': *o++ = 'b'; break;
      case '\f': *o++ = 'f'; break;
      case '\n': *o++ = 'n'; break;
      case '\r': *o++ = 'r'; break;
      case '\t': *o++ = 't'; break;
      default:
        *o++ = 'u';
        *o++ = '0';
        *o++ = '0';
        *o++ = hex[ch >> 4];
        *o++ = hex[ch & 15];
    }
  }
  *o++ = '"';
  b->len = (size_t)(o - b->p);
}

void eim_jbuf_num(eim_jbuf *b, double d) {
  char tmp[32];
  int n;
  if (isnan(d) || isinf(d)) {
    eim_jbuf_raw(b, "null", 4);
    return;
  }
  if (floor(d) == d && fabs(d) < 9007199254740992.0) {
    /* Digits from the end: no format string to interpret. */
    uint64_t v = (uint64_t)fabs(d);
    char *e = tmp + sizeof tmp, *p = e;
    do *--p = (char)('0' + v % 10); while ((v /= 10) != 0);
    if (signbit(d)) *--p = '-';
    eim_jbuf_raw(b, p, (size_t)(e - p));
    return;
  }
  n = snprintf(tmp, sizeof tmp, "%1.15g", d);
  if (strtod(tmp, NULL) != d) n = snprintf(tmp, sizeof tmp, "%1.17g", d);
  eim_jbuf_raw(b, tmp, (size_t)n);
}

void eim_jbuf_value(eim_jbuf *b, const cJSON *item) {
  if (item == NULL) {
    b->failed = 1;
    return;
  }
  switch (item->type & 0xff) {
    case cJSON_NULL: eim_jbuf_raw(b, "null", 4); return;
    case cJSON_False: eim_jbuf_raw(b, "false", 5); return;
    case cJSON_True: eim_jbuf_raw(b, "true", 4); return;
    case cJSON_Number: eim_jbuf_num(b, item->valuedouble); return;
    case cJSON_String:
      if (item->valuestring == NULL) break;
      eim_jbuf_str(b, item->valuestring);
      return;
    case cJSON_Raw:
      if (item->valuestring == NULL) break;
      eim_jbuf_raw(b, item->valuestring, strlen(item->valuestring));
      return;
    case cJSON_Array:
    case cJSON_Object: {
      int obj = (item->type & 0xff) == cJSON_Object;
      eim_jbuf_raw(b, obj ? "{" : "[", 1);
      for (const cJSON *c = item->child; c != NULL; c = c->next) {
        if (c != item->child) eim_jbuf_raw(b, ",", 1);
        if (obj) {
          if (c->string == NULL) {
            b->failed = 1;
            return;
          }
          eim_jbuf_str(b, c->string);
          eim_jbuf_raw(b, ":", 1);
        }
        eim_jbuf_value(b, c);
      }
      eim_jbuf_raw(b, obj ? "}" : "]", 1);
      return;
    }
  }
  b->failed = 1;
}

char *eim_jbuf_finish(eim_jbuf *b) {
  eim_jbuf_raw(b, "", 1);
  char *s = b->failed ? NULL : b->p;
  if (s == NULL) cJSON_free(b->p);
  *b = (eim_jbuf){0};
  return s;
}

int eim_json_str(const cJSON *obj, const char *name, int required, size_t minlen,
                 size_t maxlen, const char **out, char *why, size_t whylen) {
  const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
  if (it == NULL || cJSON_IsNull(it)) {
    if (!required) return 0;
    snprintf(why, whylen, "field '%s' is required", name);
    return -1;
  }
  if (!cJSON_IsString(it)) {
    snprintf(why, whylen, "field '%s' must be a string", name);
    return -1;
  }
  size_t l = strlen(it->valuestring);
  if (l < minlen || l > maxlen) {
    snprintf(why, whylen, "field '%s' must be %zu to %zu bytes", name, minlen, maxlen);
    return -1;
  }
  *out = it->valuestring;
  return 0;
}

int eim_json_u64(const cJSON *obj, const char *name, int required, uint64_t max,
                 uint64_t *out, char *why, size_t whylen) {
  const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
  if (it == NULL || cJSON_IsNull(it)) {
    if (!required) return 0;
    snprintf(why, whylen, "field '%s' is required", name);
    return -1;
  }
  double d = it->valuedouble;
  if (!cJSON_IsNumber(it) || d < 0 || d > (double)max || floor(d) != d) {
    snprintf(why, whylen, "field '%s' must be a whole number from 0 to %llu", name,
             (unsigned long long)max);
    return -1;
  }
  *out = (uint64_t)d;
  return 0;
}

cJSON *eim_json_parse_object(const char *data, size_t len, char *why, size_t whylen) {
  if (!eim_utf8_valid(data, len)) {
    snprintf(why, whylen, "not valid UTF-8");
    return NULL;
  }
  if (eim_json_has_nul(data, len)) {
    snprintf(why, whylen, "strings may not contain U+0000 (a NUL byte, \\u0000 or a broken \\u escape)");
    return NULL;
  }
  const char *end = NULL;
  cJSON *o = cJSON_ParseWithLengthOpts(data, len, &end, 0);
  if (o == NULL) {
    snprintf(why, whylen, "malformed JSON");
    return NULL;
  }
  /* Only whitespace may follow the value. */
  while (end && end < data + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
    end++;
  if (end != data + len) {
    cJSON_Delete(o);
    snprintf(why, whylen, "malformed JSON: trailing data");
    return NULL;
  }
  if (!cJSON_IsObject(o)) {
    cJSON_Delete(o);
    snprintf(why, whylen, "expected a JSON object");
    return NULL;
  }
  return o;
}
