/* store-mongo: users. A user is {_id: id, username, hash, at}; the unique
 * index on username makes user_create race-free. */
#include "mongo.h"

#include <string.h>

static int fill_user(eim__mongo *st, const bson_t *doc, int with_hash, eim_user *out,
                     eim_arena *a) {
  const char *id, *name, *hash;
  uint32_t idlen, namelen, hashlen;

  id = eim__get_str(doc, "_id", &idlen);
  name = eim__get_str(doc, "username", &namelen);
  hash = eim__get_str(doc, "hash", &hashlen);
  if (id == NULL || name == NULL || hash == NULL) return EIM_EINTERNAL;
  memset(out, 0, sizeof *out);
  if ((out->user_id = eim__dup(st, a, id, idlen)) == NULL ||
      (out->username = eim__dup(st, a, name, namelen)) == NULL ||
      (with_hash && (out->password_hash = eim__dup(st, a, hash, hashlen)) == NULL))
    return EIM_ENOMEM;
  out->created_at = eim__get_i64(doc, "at");
  return EIM_OK;
}

int eim__user_create(void *conn, const char *username, const char *password_hash,
                     int64_t created_at, eim_user *out, eim_arena *a, eim_err *err) {
  eim__mongo *st = ((eim__conn *)conn)->st;
  mongoc_client_t *c = NULL;
  mongoc_collection_t *users = NULL;
  bson_t doc = BSON_INITIALIZER;
  bson_error_t e;
  char id[25];
  int rc = EIM_OK;

  if (username == NULL || username[0] == '\0' || strlen(username) > EIM__KEY_MAX ||
      password_hash == NULL || strlen(password_hash) > EIM__FIELD_MAX) {
    rc = eim_err_set(err, EIM_EINVAL, "username or password hash empty or too long");
    goto cleanup;
  }
  eim__new_id(id);
  BSON_APPEND_UTF8(&doc, "_id", id);
  BSON_APPEND_UTF8(&doc, "username", username);
  BSON_APPEND_UTF8(&doc, "hash", password_hash);
  BSON_APPEND_INT64(&doc, "at", created_at);
  c = eim__client(st);
  users = eim__coll(st, c, EIM__C_USERS);
  if (!mongoc_collection_insert_one(users, &doc, NULL, NULL, &e)) {
    rc = eim__mongo_error(st, &e, "user_create", err);
    if (rc == EIM_ECONFLICT) eim_err_set(err, rc, "username '%s' is taken", username);
    goto cleanup;
  }
  rc = fill_user(st, &doc, 1, out, a);
  if (rc != EIM_OK) eim_err_set(err, rc, "user_create: out of memory");

cleanup:
  mongoc_collection_destroy(users);
  eim__release(st, c);
  bson_destroy(&doc);
  return rc;
}

/* Looks up the one user whose `key` equals value. */
static int find_user(eim__mongo *st, const char *key, const char *value, int with_hash,
                     eim_user *out, eim_arena *a, eim_err *err) {
  mongoc_client_t *c = eim__client(st);
  mongoc_collection_t *users = eim__coll(st, c, EIM__C_USERS);
  mongoc_cursor_t *cur;
  bson_t filter = BSON_INITIALIZER;
  const bson_t *doc;
  bson_error_t e;
  int rc;

  bson_append_utf8(&filter, key, -1, value, -1);
  cur = mongoc_collection_find_with_opts(users, &filter, NULL, NULL);
  if (mongoc_cursor_next(cur, &doc)) {
    rc = fill_user(st, doc, with_hash, out, a);
    if (rc != EIM_OK) eim_err_set(err, rc, "reading user: %s", rc == EIM_ENOMEM ? "out of memory" : "malformed document");
  } else if (mongoc_cursor_error(cur, &e)) {
    rc = eim__mongo_error(st, &e, "user lookup", err);
  } else {
    rc = eim_err_set(err, EIM_ENOTFOUND, "no such user");
  }
  mongoc_cursor_destroy(cur);
  mongoc_collection_destroy(users);
  eim__release(st, c);
  bson_destroy(&filter);
  return rc;
}

int eim__user_by_name(void *conn, const char *username, eim_user *out, eim_arena *a,
                      eim_err *err) {
  if (username == NULL || strlen(username) > EIM__KEY_MAX)
    return eim_err_set(err, EIM_ENOTFOUND, "no such user");
  return find_user(((eim__conn *)conn)->st, "username", username, 1, out, a, err);
}

int eim__user_by_id(void *conn, const char *user_id, eim_user *out, eim_arena *a,
                    eim_err *err) {
  if (!eim__valid_id(user_id)) return eim_err_set(err, EIM_ENOTFOUND, "no such user");
  return find_user(((eim__conn *)conn)->st, "_id", user_id, 0, out, a, err);
}

/* EIM_OK when every id names a user; EIM_ENOTFOUND naming the first that
 * does not. One look-up by _id each: FerretDB v1 hands an equality on _id to
 * its backend, but would filter an $in in Go over every user. */
int eim__users_exist(eim__mongo *st, mongoc_client_t *c, const char *const *ids, size_t n,
                     eim_err *err) {
  mongoc_collection_t *users = eim__coll(st, c, EIM__C_USERS);
  int rc = EIM_OK;

  for (size_t i = 0; i < n && rc == EIM_OK; i++) {
    bson_t doc;
    if (!eim__valid_id(ids[i])) {
      rc = eim_err_set(err, EIM_ENOTFOUND, "no such user");
      break;
    }
    rc = eim__find_id(st, users, ids[i], &doc, "user lookup", err);
    if (rc == EIM_OK) bson_destroy(&doc);
    else if (rc == EIM_ENOTFOUND) eim_err_set(err, rc, "no such user '%s'", ids[i]);
  }
  mongoc_collection_destroy(users);
  return rc;
}
