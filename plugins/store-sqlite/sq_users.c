/*
 * Users and the peers a user shares conversations with.
 */
#include "sq.h"

#include <string.h>

static int sq_nomem(eim_err *err) {
  return eim_err_set(err, EIM_ENOMEM, "out of memory");
}

/* Fills out from a users row (id, username, password_hash, created_at). */
static int sq_user_row(sq_conn *c, sqlite3_stmt *s, eim_user *out, eim_arena *a,
                       eim_err *err) {
  out->user_id = sq__id_str(c, a, sqlite3_column_int64(s, 0));
  out->username = sq__col_str(c, a, s, 1);
  out->password_hash = sq__col_str(c, a, s, 2);
  out->created_at = sqlite3_column_int64(s, 3);
  if (out->user_id == NULL || out->username == NULL || out->password_hash == NULL)
    return sq_nomem(err);
  return EIM_OK;
}

int sq__user_create(void *conn, const char *username, const char *password_hash,
                    int64_t created_at, eim_user *out, eim_arena *a, eim_err *err) {
  sq_conn *c = conn;
  sqlite3_stmt *s;
  int code;
  int rc;

  if (username == NULL || password_hash == NULL || username[0] == '\0')
    return eim_err_set(err, EIM_EINVAL, "username and password hash are required");
  if (strlen(username) > SQ_MAX_FIELD || strlen(password_hash) > SQ_MAX_FIELD)
    return eim_err_set(err, EIM_ETOOBIG, "username or password hash too long");
  code = sq__begin(c, 1, err);
  if (code != EIM_OK)
    return code;
  s = sq__stmt(c, SQ_USER_INSERT, &code, err);
  if (s == NULL)
    goto fail;
  sq__bind_str(s, 1, username);
  sq__bind_str(s, 2, password_hash);
  sqlite3_bind_int64(s, 3, created_at);
  rc = sqlite3_step(s);
  if (rc == SQLITE_DONE) {
    code = eim_err_set(err, EIM_ECONFLICT, "username is taken");
    goto fail;
  }
  if (rc != SQLITE_ROW) {
    code = sq__error(c, rc, err, "create user");
    goto fail;
  }
  out->user_id = sq__id_str(c, a, sqlite3_column_int64(s, 0));
  out->username = c->st->host->arena_strndup(a, username, strlen(username));
  out->password_hash = c->st->host->arena_strndup(a, password_hash, strlen(password_hash));
  out->created_at = created_at;
  if (out->user_id == NULL || out->username == NULL || out->password_hash == NULL) {
    code = sq_nomem(err);
    goto fail;
  }
  return sq__commit(c, err);

fail:
  sq__rollback(c);
  return code;
}

/* Runs a users look-up whose key is already bound at ?1. */
static int sq_user_lookup(sq_conn *c, sqlite3_stmt *s, eim_user *out, eim_arena *a,
                          eim_err *err) {
  int rc = sqlite3_step(s);

  if (rc == SQLITE_DONE)
    return eim_err_set(err, EIM_ENOTFOUND, "no such user");
  if (rc != SQLITE_ROW)
    return sq__error(c, rc, err, "look up user");
  return sq_user_row(c, s, out, a, err);
}

int sq__user_by_name(void *conn, const char *username, eim_user *out, eim_arena *a,
                     eim_err *err) {
  sq_conn *c = conn;
  sqlite3_stmt *s;
  int code;

  if (username == NULL)
    return eim_err_set(err, EIM_EINVAL, "username is required");
  code = sq__begin(c, 0, err);
  if (code != EIM_OK)
    return code;
  s = sq__stmt(c, SQ_USER_BY_NAME, &code, err);
  if (s == NULL)
    goto fail;
  sq__bind_str(s, 1, username);
  code = sq_user_lookup(c, s, out, a, err);
  if (code != EIM_OK)
    goto fail;
  return sq__commit(c, err);

fail:
  sq__rollback(c);
  return code;
}

int sq__user_by_id(void *conn, const char *user_id, eim_user *out, eim_arena *a,
                   eim_err *err) {
  sq_conn *c = conn;
  sqlite3_int64 id;
  sqlite3_stmt *s;
  int code;

  if (sq__parse_id(user_id, &id) != 0)
    return eim_err_set(err, EIM_ENOTFOUND, "no such user");
  code = sq__begin(c, 0, err);
  if (code != EIM_OK)
    return code;
  s = sq__stmt(c, SQ_USER_BY_ID, &code, err);
  if (s == NULL)
    goto fail;
  sqlite3_bind_int64(s, 1, id);
  code = sq_user_lookup(c, s, out, a, err);
  if (code != EIM_OK)
    goto fail;
  return sq__commit(c, err);

fail:
  sq__rollback(c);
  return code;
}

/* An unknown user shares nothing with anyone: an empty list, not an error. */
int sq__user_peers(void *conn, const char *user_id, eim_id_list *out, eim_arena *a,
                   eim_err *err) {
  sq_conn *c = conn;
  sqlite3_int64 id;
  sqlite3_stmt *s;
  int code;

  out->ids = NULL;
  out->n = 0;
  if (sq__parse_id(user_id, &id) != 0)
    return EIM_OK;
  code = sq__begin(c, 0, err);
  if (code != EIM_OK)
    return code;
  s = sq__stmt(c, SQ_USER_PEERS, &code, err);
  if (s == NULL)
    goto fail;
  sqlite3_bind_int64(s, 1, id);
  code = sq__id_list(c, s, a, &out->ids, &out->n, err);
  if (code != EIM_OK)
    goto fail;
  return sq__commit(c, err);

fail:
  sq__rollback(c);
  return code;
}
