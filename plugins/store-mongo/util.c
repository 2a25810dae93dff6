/* store-mongo: ids, arena copies and reading fields out of documents. */
#include "mongo.h"

#include <string.h>

/* Ids minted by this store are ObjectIds as 24 lowercase hex digits; anything
 * else cannot name a stored record. Checking the form first also keeps the
 * composite keys built from ids (conv|user, conv|sender|client_msg_id)
 * unambiguous. */
int eim__valid_id(const char *id) {
  if (id == NULL || strlen(id) != 24) return 0;
  for (size_t i = 0; i < 24; i++)
    if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'))) return 0;
  return 1;
}

void eim__new_id(char out[25]) {
  bson_oid_t oid;

  bson_oid_init(&oid, NULL);
  bson_oid_to_string(&oid, out);
}

char *eim__dup(eim__mongo *st, eim_arena *a, const char *s, size_t n) {
  return st->host->arena_strndup(a, s, n);
}

void eim__member_key(char *out, size_t size, const char *conv, const char *user) {
  snprintf(out, size, "%s|%s", conv, user);
}

/* FNV-1a, to pick a lock stripe. */
uint32_t eim__hash(const char *s) {
  uint32_t h = 2166136261u;

  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

/* The UTF-8 string at key, or NULL when absent or of another type; the
 * pointer is into doc. */
const char *eim__get_str(const bson_t *doc, const char *key, uint32_t *len) {
  bson_iter_t it;

  if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_UTF8(&it)) return NULL;
  return bson_iter_utf8(&it, len);
}

/* The number at key as int64 (0 when absent). FerretDB and MongoDB may hand
 * back an int32 or a double for a value written as int64. */
int64_t eim__get_i64(const bson_t *doc, const char *key) {
  bson_iter_t it;

  if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_NUMBER(&it)) return 0;
  return bson_iter_as_int64(&it);
}

/* Fills every member of m from a stored message document, copying into the
 * arena. Returns EIM_OK, EIM_ENOMEM, or EIM_EINTERNAL for a malformed doc. */
int eim__read_msg(eim__mongo *st, const bson_t *doc, eim_msg *m, eim_arena *a) {
  const char *s;
  uint32_t len;
  bson_iter_t it;
  const uint8_t *bin = NULL;
  uint32_t binlen = 0;
  bson_subtype_t sub;
  struct {
    const char *key;
    const char **dst;
  } strs[] = {{"c", &m->conversation_id}, {"s", &m->sender},
              {"cm", &m->client_msg_id},  {"ct", &m->content_type},
              {"mid", &m->msg_id}};

  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
    if ((s = eim__get_str(doc, strs[i].key, &len)) == NULL) return EIM_EINTERNAL;
    if ((*strs[i].dst = eim__dup(st, a, s, len)) == NULL) return EIM_ENOMEM;
  }
  if (!bson_iter_init_find(&it, doc, "body") || !BSON_ITER_HOLDS_BINARY(&it))
    return EIM_EINTERNAL;
  bson_iter_binary(&it, &sub, &binlen, &bin);
  if ((m->content = eim__dup(st, a, (const char *)bin, binlen)) == NULL) return EIM_ENOMEM;
  m->content_len = binlen;
  m->created_at = eim__get_i64(doc, "at");
  m->seq = (uint64_t)eim__get_i64(doc, "seq");
  m->status = EIM_OK;
  m->duplicate = 0;
  return EIM_OK;
}

/* Sorts the writeErrors of an unordered insert reply: dup[i] = 1 for each
 * document i refused for a duplicate key; *other = 1 when some document
 * failed for another reason. Returns the number of errors seen. */
int eim__write_errors(const bson_t *reply, int *dup, size_t n, int *other) {
  bson_iter_t it, arr, one;
  int count = 0;

  *other = 0;
  if (!bson_iter_init_find(&it, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&it) ||
      !bson_iter_recurse(&it, &arr))
    return 0;
  while (bson_iter_next(&arr)) {
    int64_t index = -1, code = 0;
    if (!BSON_ITER_HOLDS_DOCUMENT(&arr) || !bson_iter_recurse(&arr, &one)) continue;
    while (bson_iter_next(&one)) {
      if (strcmp(bson_iter_key(&one), "index") == 0) index = bson_iter_as_int64(&one);
      else if (strcmp(bson_iter_key(&one), "code") == 0) code = bson_iter_as_int64(&one);
    }
    count++;
    if (code == 11000 && index >= 0 && (size_t)index < n) dup[index] = 1;
    else *other = 1;
  }
  return count;
}

/* Finds the first document matching filter. EIM_OK with a copy in *out (the
 * caller destroys it), EIM_ENOTFOUND (err untouched, *out not initialised)
 * or the mapped error of the query. */
int eim__find_one(eim__mongo *st, mongoc_collection_t *coll, const bson_t *filter,
                  const bson_t *opts, bson_t *out, const char *what, eim_err *err) {
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
  const bson_t *doc;
  bson_error_t e;
  int rc = EIM_ENOTFOUND;

  if (mongoc_cursor_next(cur, &doc)) {
    bson_copy_to(doc, out);
    rc = EIM_OK;
  } else if (mongoc_cursor_error(cur, &e)) {
    rc = eim__mongo_error(st, &e, what, err);
  }
  mongoc_cursor_destroy(cur);
  return rc;
}

/* eim__find_one on {_id: id}. */
int eim__find_id(eim__mongo *st, mongoc_collection_t *coll, const char *id, bson_t *out,
                 const char *what, eim_err *err) {
  bson_t filter = BSON_INITIALIZER;
  int rc;

  BSON_APPEND_UTF8(&filter, "_id", id);
  rc = eim__find_one(st, coll, &filter, NULL, out, what, err);
  bson_destroy(&filter);
  return rc;
}
