/*
 * Conversations and their members.
 */
#include "sq.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static int sq_nomem(eim_err *err) {
  return eim_err_set(err, EIM_ENOMEM, "out of memory");
}

/* Fills out with conversation `id` as user `viewer` sees it (viewer 0 or a
 * non-member sees read_seq 0). Runs inside the caller's transaction.
 * EIM_ENOTFOUND when there is no such conversation. */
static int sq_conv_fill(sq_conn *c, sqlite3_int64 id, sqlite3_int64 viewer, eim_conv *out,
                        eim_arena *a, eim_err *err) {
  const eim_host *h = c->st->host;
  sqlite3_stmt *s;
  int code = EIM_OK;
  int rc;

  memset(out, 0, sizeof *out);
  s = sq__stmt(c, SQ_CONV_ROW, &code, err);
  if (s == NULL)
    return code;
  sqlite3_bind_int64(s, 1, id);
  rc = sqlite3_step(s);
  if (rc == SQLITE_DONE)
    return eim_err_set(err, EIM_ENOTFOUND, "no such conversation");
  if (rc != SQLITE_ROW)
    return sq__error(c, rc, err, "read conversation");
  out->conversation_id = sq__id_str(c, a, id);
  out->type = sqlite3_column_int(s, 0);
  out->name = sq__col_str(c, a, s, 1);
  out->created_at = sqlite3_column_int64(s, 2);
  out->max_seq = (uint64_t)sqlite3_column_int64(s, 3);
  out->last_activity = sqlite3_column_int64(s, 4);
  if (out->conversation_id == NULL || out->name == NULL)
    return sq_nomem(err);

  s = sq__stmt(c, SQ_MEMBER_READ_SEQ, &code, err);
  if (s == NULL)
    return code;
  sqlite3_bind_int64(s, 1, id);
  sqlite3_bind_int64(s, 2, viewer);
  rc = sqlite3_step(s);
  if (rc == SQLITE_ROW)
    out->read_seq = (uint64_t)sqlite3_column_int64(s, 0);
  else if (rc != SQLITE_DONE)
    return sq__error(c, rc, err, "read cursor");
  if (out->read_seq > out->max_seq)
    out->read_seq = out->max_seq;

  s = sq__stmt(c, SQ_MEMBERS, &code, err);
  if (s == NULL)
    return code;
  sqlite3_bind_int64(s, 1, id);
  code = sq__id_list(c, s, a, &out->members, &out->nmembers, err);
  if (code != EIM_OK)
    return code;

  if (out->max_seq == 0)
    return EIM_OK;
  s = sq__stmt(c, SQ_MSG_BY_SEQ, &code, err);
  if (s == NULL)
    return code;
  sqlite3_bind_int64(s, 1, id);
  sqlite3_bind_int64(s, 2, (sqlite3_int64)out->max_seq);
  rc = sqlite3_step(s);
  if (rc == SQLITE_DONE)
    return EIM_OK;
  if (rc != SQLITE_ROW)
    return sq__error(c, rc, err, "read last message");
  out->last_message = h->arena_alloc(a, sizeof *out->last_message);
  if (out->last_message == NULL)
    return sq_nomem(err);
  return sq__msg_row(c, s, out->last_message, a, err);
}

/* EIM_OK when user `id` exists, EIM_ENOTFOUND when not. */
static int sq_user_exists(sq_conn *c, const char *user_id, sqlite3_int64 *id, eim_err *err) {
  sqlite3_stmt *s;
  int code = EIM_OK;
  int rc;

  if (sq__parse_id(user_id, id) != 0)
    return eim_err_set(err, EIM_ENOTFOUND, "no such user");
  s = sq__stmt(c, SQ_USER_BY_ID, &code, err);
  if (s == NULL)
    return code;
  sqlite3_bind_int64(s, 1, *id);
  rc = sqlite3_step(s);
  if (rc == SQLITE_DONE)
    return eim_err_set(err, EIM_ENOTFOUND, "no such user");
  if (rc != SQLITE_ROW)
    return sq__error(c, rc, err, "look up user");
  return EIM_OK;
}

static int sq_member_add(sq_conn *c, sqlite3_int64 conv, sqlite3_int64 user, int64_t now,
                         eim_err *err) {
  sqlite3_stmt *s;
  int code = EIM_OK;
  int rc;

  s = sq__stmt(c, SQ_MEMBER_INSERT, &code, err);
  if (s == NULL)
    return code;
  sqlite3_bind_int64(s, 1, conv);
  sqlite3_bind_int64(s, 2, user);
  sqlite3_bind_int64(s, 3, now);
  rc = sqlite3_step(s);
  if (rc != SQLITE_DONE)
    return sq__error(c, rc, err, "add member");
  return EIM_OK;
}

/* Inserts the conversations row; pair is NULL for a group. */
static int sq_conv_insert(sq_conn *c, int type, const char *name, const char *pair,
                          int64_t created_at, sqlite3_int64 *id, eim_err *err) {
  sqlite3_stmt *s;
  int code = EIM_OK;
  int rc;

  s = sq__stmt(c, SQ_CONV_INSERT, &code, err);
  if (s == NULL)
    return code;
  sqlite3_bind_int(s, 1, type);
  sq__bind_str(s, 2, name);
  if (pair != NULL)
    sq__bind_str(s, 3, pair);
  sqlite3_bind_int64(s, 4, created_at);
  rc = sqlite3_step(s);
  if (rc != SQLITE_ROW)
    return sq__error(c, rc, err, "create conversation");
  *id = sqlite3_column_int64(s, 0);
  return EIM_OK;
}

/* The single chat of the pair, found or created. The write transaction
 * serialises concurrent creates; the unique pair index backs it up. */
static int sq_single(sq_conn *c, sqlite3_int64 u1, sqlite3_int64 u2, int64_t created_at,
                     sqlite3_int64 *id, int *existed, eim_err *err) {
  char pair[48];
  sqlite3_stmt *s;
  int code = EIM_OK;
  int rc;

  snprintf(pair, sizeof pair, "%" PRId64 ":%" PRId64, (int64_t)(u1 < u2 ? u1 : u2),
           (int64_t)(u1 < u2 ? u2 : u1));
  s = sq__stmt(c, SQ_CONV_BY_PAIR, &code, err);
  if (s == NULL)
    return code;
  sq__bind_str(s, 1, pair);
  rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    *id = sqlite3_column_int64(s, 0);
    *existed = 1;
    return EIM_OK;
  }
  if (rc != SQLITE_DONE)
    return sq__error(c, rc, err, "find single chat");
  code = sq_conv_insert(c, EIM_CONV_SINGLE, "", pair, created_at, id, err);
  if (code == EIM_OK)
    code = sq_member_add(c, *id, u1, created_at, err);
  if (code == EIM_OK)
    code = sq_member_add(c, *id, u2, created_at, err);
  return code;
}

int sq__conv_create(void *conn, const eim_conv_new *req, eim_conv *out, int *existed,
                    eim_arena *a, eim_err *err) {
  sq_conn *c = conn;
  sqlite3_int64 creator, member, id = 0;
  const char *name = req->name != NULL ? req->name : "";
  int code;

  *existed = 0;
  if (req->type != EIM_CONV_SINGLE && req->type != EIM_CONV_GROUP)
    return eim_err_set(err, EIM_EINVAL, "unknown conversation type %d", req->type);
  if (req->type == EIM_CONV_SINGLE && req->nmembers != 1)
    return eim_err_set(err, EIM_EINVAL, "a single chat has exactly one peer");
  if (strlen(name) > SQ_MAX_FIELD)
    return eim_err_set(err, EIM_ETOOBIG, "conversation name too long");
  code = sq__begin(c, 1, err);
  if (code != EIM_OK)
    return code;
  code = sq_user_exists(c, req->creator, &creator, err);
  for (size_t i = 0; code == EIM_OK && i < req->nmembers; i++)
    code = sq_user_exists(c, req->members[i], &member, err);
  if (code != EIM_OK)
    goto fail;

  if (req->type == EIM_CONV_SINGLE) {
    sq__parse_id(req->members[0], &member);
    if (member == creator) {
      code = eim_err_set(err, EIM_EINVAL, "a single chat needs two different users");
      goto fail;
    }
    code = sq_single(c, creator, member, req->created_at, &id, existed, err);
  } else {
    code = sq_conv_insert(c, EIM_CONV_GROUP, name, NULL, req->created_at, &id, err);
    if (code == EIM_OK)
      code = sq_member_add(c, id, creator, req->created_at, err);
    for (size_t i = 0; code == EIM_OK && i < req->nmembers; i++) {
      sq__parse_id(req->members[i], &member);
      code = sq_member_add(c, id, member, req->created_at, err);
    }
  }
  if (code == EIM_OK)
    code = sq_conv_fill(c, id, creator, out, a, err);
  if (code != EIM_OK)
    goto fail;
  return sq__commit(c, err);

fail:
  sq__rollback(c);
  return code;
}

int sq__conv_get(void *conn, const char *conversation_id, const char *user_id,
                 eim_conv *out, eim_arena *a, eim_err *err) {
  sq_conn *c = conn;
  sqlite3_int64 id, viewer = 0;
  int code;

  if (sq__parse_id(conversation_id, &id) != 0)
    return eim_err_set(err, EIM_ENOTFOUND, "no such conversation");
  if (user_id != NULL)
    sq__parse_id(user_id, &viewer);
  code = sq__begin(c, 0, err);
  if (code != EIM_OK)
    return code;
  code = sq_conv_fill(c, id, viewer, out, a, err);
  if (code != EIM_OK)
    goto fail;
  return sq__commit(c, err);

fail:
  sq__rollback(c);
  return code;
}

/* Ids first, then one fill each: the fills reuse statements while the
 * listing would still be stepping. */
int sq__conv_list(void *conn, const char *user_id, eim_conv_list *out, eim_arena *a,
                  eim_err *err) {
  sq_conn *c = conn;
  sqlite3_int64 viewer, *ids = NULL;
  size_t n = 0, cap = 0;
  sqlite3_stmt *s;
  int code;
  int rc;

  out->items = NULL;
  out->n = 0;
  if (sq__parse_id(user_id, &viewer) != 0)
    return EIM_OK;
  code = sq__begin(c, 0, err);
  if (code != EIM_OK)
    return code;
  s = sq__stmt(c, SQ_CONV_LIST, &code, err);
  if (s == NULL)
    goto fail;
  sqlite3_bind_int64(s, 1, viewer);
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (n == cap) {
      size_t ncap = cap != 0 ? cap * 2 : 16;
      sqlite3_int64 *grown = realloc(ids, ncap * sizeof *ids);
      if (grown == NULL) {
        code = sq_nomem(err);
        goto fail;
      }
      ids = grown;
      cap = ncap;
    }
    ids[n++] = sqlite3_column_int64(s, 0);
  }
  if (rc != SQLITE_DONE) {
    code = sq__error(c, rc, err, "list conversations");
    goto fail;
  }
  out->items = c->st->host->arena_alloc(a, (n != 0 ? n : 1) * sizeof *out->items);
  if (out->items == NULL) {
    code = sq_nomem(err);
    goto fail;
  }
  for (size_t i = 0; i < n; i++) {
    code = sq_conv_fill(c, ids[i], viewer, &out->items[i], a, err);
    if (code != EIM_OK)
      goto fail;
  }
  out->n = n;
  free(ids);
  return sq__commit(c, err);

fail:
  free(ids);
  out->items = NULL;
  out->n = 0;
  sq__rollback(c);
  return code;
}

/* All or nothing: an unknown user anywhere in the list adds nobody. */
int sq__conv_add_members(void *conn, const char *conversation_id,
                         const char *const *user_ids, size_t n, int64_t now,
                         eim_err *err) {
  sq_conn *c = conn;
  sqlite3_int64 id, user;
  sqlite3_stmt *s;
  int code;
  int rc;

  if (sq__parse_id(conversation_id, &id) != 0)
    return eim_err_set(err, EIM_ENOTFOUND, "no such conversation");
  code = sq__begin(c, 1, err);
  if (code != EIM_OK)
    return code;
  s = sq__stmt(c, SQ_CONV_ROW, &code, err);
  if (s == NULL)
    goto fail;
  sqlite3_bind_int64(s, 1, id);
  rc = sqlite3_step(s);
  if (rc == SQLITE_DONE) {
    code = eim_err_set(err, EIM_ENOTFOUND, "no such conversation");
    goto fail;
  }
  if (rc != SQLITE_ROW) {
    code = sq__error(c, rc, err, "read conversation");
    goto fail;
  }
  if (sqlite3_column_int(s, 0) != EIM_CONV_GROUP) {
    code = eim_err_set(err, EIM_EINVAL, "members can only be added to a group");
    goto fail;
  }
  for (size_t i = 0; i < n; i++) {
    code = sq_user_exists(c, user_ids[i], &user, err);
    if (code == EIM_OK)
      code = sq_member_add(c, id, user, now, err);
    if (code != EIM_OK)
      goto fail;
  }
  return sq__commit(c, err);

fail:
  sq__rollback(c);
  return code;
}

int sq__conv_members(void *conn, const char *conversation_id, eim_id_list *out,
                     eim_arena *a, eim_err *err) {
  sq_conn *c = conn;
  sqlite3_int64 id;
  sqlite3_stmt *s;
  int code;
  int rc;

  out->ids = NULL;
  out->n = 0;
  if (sq__parse_id(conversation_id, &id) != 0)
    return eim_err_set(err, EIM_ENOTFOUND, "no such conversation");
  code = sq__begin(c, 0, err);
  if (code != EIM_OK)
    return code;
  s = sq__stmt(c, SQ_CONV_ROW, &code, err);
  if (s == NULL)
    goto fail;
  sqlite3_bind_int64(s, 1, id);
  rc = sqlite3_step(s);
  if (rc == SQLITE_DONE) {
    code = eim_err_set(err, EIM_ENOTFOUND, "no such conversation");
    goto fail;
  }
  if (rc != SQLITE_ROW) {
    code = sq__error(c, rc, err, "read conversation");
    goto fail;
  }
  s = sq__stmt(c, SQ_MEMBERS, &code, err);
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
