#include "json.h"

#include <math.h>
#include <stdio.h>
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
  char *s = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
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
