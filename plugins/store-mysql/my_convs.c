/* Conversations and members. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "my_internal.h"

#define NOMEM(err) eim_err_set((err), EIM_ENOMEM, "out of memory")

void eim__my_conv_cols(eim__my_val *cols) {
  static const int types[7] = {EIM__MY_I64, EIM__MY_I64, EIM__MY_STR, EIM__MY_I64,
                               EIM__MY_I64, EIM__MY_I64, EIM__MY_I64};
  int i;

  for (i = 0; i < 7; i++)
    cols[i].type = types[i];
}

int eim__my_conv_from_row(eim__my_conn *c, const eim__my_val *row, eim_conv *out,
                          eim_arena *a, eim_err *err) {
  memset(out, 0, sizeof *out);
  out->conversation_id = eim__my_id_make(c, a, 'c', (unsigned long long)row[0].i);
  if (out->conversation_id == NULL)
    return NOMEM(err);
  out->type = (int)row[1].i;
  out->name = row[2].s;
  out->created_at = row[3].i;
  out->max_seq = (uint64_t)row[4].i;
  out->last_activity = row[5].i;
  out->read_seq = (uint64_t)row[6].i;
  if (out->read_seq > out->max_seq)
    out->read_seq = out->max_seq;
  return EIM_OK;
}

/* Reads every remaining row of statement id, whose column `col` is a user
 * key, into an arena array of ids; rows where it is NULL are skipped. */
static int collect_ids(eim__my_conn *c, eim__my_stmt_id id, size_t ncols, size_t col,
                       eim_id_list *out, eim_arena *a, eim_err *err) {
  unsigned long long rows = mysql_stmt_num_rows(c->stmts[id]);
  eim__my_val row[2] = {{.type = EIM__MY_I64}, {.type = EIM__MY_I64}};
  int rc;

  out->n = 0;
  out->ids = eim__my_alloc(c, a, (size_t)(rows + 1) * sizeof *out->ids);
  if (out->ids == NULL)
    return NOMEM(err);
  while ((rc = eim__my_next(c, id, row, ncols, a, err)) == 1) {
    if (row[col].is_null)
      continue;
    out->ids[out->n] = eim__my_id_make(c, a, 'u', (unsigned long long)row[col].i);
    if (out->ids[out->n] == NULL)
      return NOMEM(err);
    out->n++;
  }
  return rc;
}

/* Loads conversation conv as seen by user (0 for nobody) into out. */
static int load_conv(eim__my_conn *c, unsigned long long conv, unsigned long long user,
                     eim_conv *out, eim_arena *a, eim_err *err) {
  eim__my_val p[2] = {EIM__I64(user), EIM__I64(conv)};
  eim__my_val row[EIM__MY_MSG_COLS];
  eim_id_list members;
  int rc;

  rc = eim__my_exec(c, EIM__ST_CONV_GET, p, 2, err);
  if (rc != EIM_OK)
    return rc;
  eim__my_conv_cols(row);
  rc = eim__my_next(c, EIM__ST_CONV_GET, row, 7, a, err);
  if (rc < 0)
    return rc;
  if (rc == 0)
    return eim_err_set(err, EIM_ENOTFOUND, "no such conversation");
  eim__my_done(c, EIM__ST_CONV_GET);
  rc = eim__my_conv_from_row(c, row, out, a, err);
  if (rc != EIM_OK)
    return rc;

  p[0] = EIM__I64(conv);
  rc = eim__my_exec(c, EIM__ST_MEMBERS_OF, p, 1, err);
  if (rc == EIM_OK)
    rc = collect_ids(c, EIM__ST_MEMBERS_OF, 1, 0, &members, a, err);
  if (rc != EIM_OK)
    return rc;
  out->members = members.ids;
  out->nmembers = members.n;

  if (out->max_seq == 0)
    return EIM_OK;
  p[1] = EIM__I64(out->max_seq);
  rc = eim__my_exec(c, EIM__ST_MSG_BY_SEQ, p, 2, err);
  if (rc != EIM_OK)
    return rc;
  eim__my_msg_cols(row);
  rc = eim__my_next(c, EIM__ST_MSG_BY_SEQ, row, EIM__MY_MSG_COLS, a, err);
  if (rc <= 0)
    return rc;
  eim__my_done(c, EIM__ST_MSG_BY_SEQ);
  out->last_message = eim__my_alloc(c, a, sizeof *out->last_message);
  if (out->last_message == NULL)
    return NOMEM(err);
  return eim__my_msg_from_row(c, row, out->last_message, a) == EIM_OK ? EIM_OK
                                                                      : NOMEM(err);
}

/* EIM_OK when user_id names an existing user, whose key goes to *key. */
static int user_key(eim__my_conn *c, const char *user_id, unsigned long long *key,
                    eim_err *err) {
  eim__my_val p, row = {.type = EIM__MY_I64};
  int rc;

  if (eim__my_id_parse(user_id, 'u', key) != 0)
    return eim_err_set(err, EIM_ENOTFOUND, "no such user '%s'",
                       user_id != NULL ? user_id : "(null)");
  p = EIM__I64(*key);
  rc = eim__my_exec(c, EIM__ST_USER_EXISTS, &p, 1, err);
  if (rc != EIM_OK)
    return rc;
  rc = eim__my_next(c, EIM__ST_USER_EXISTS, &row, 1, NULL, err);
  if (rc < 0)
    return rc;
  if (rc == 0)
    return eim_err_set(err, EIM_ENOTFOUND, "no such user '%s'", user_id);
  eim__my_done(c, EIM__ST_USER_EXISTS);
  return EIM_OK;
}

static int add_member(eim__my_conn *c, unsigned long long conv,
                      unsigned long long user, int64_t now, eim_err *err) {
  eim__my_val p[3] = {EIM__I64(conv), EIM__I64(user), EIM__I64(now)};

  return eim__my_exec(c, EIM__ST_MEMBER_INSERT, p, 3, err);
}

typedef struct create_ctx {
  const eim_conv_new *req;
  eim_conv *out;
  int *existed;
  eim_arena *a;
} create_ctx;

/* A single chat: one row per pair, found by its pair_key. A concurrent
 * creator losing the unique-key race gets EIM__MY_DUP and, on the retry,
 * finds the winner's conversation. */
static int create_single(eim__my_conn *c, create_ctx *x, unsigned long long creator,
                         unsigned long long *conv, eim_err *err) {
  const eim_conv_new *req = x->req;
  unsigned long long peer, lo, hi;
  eim__my_val p[5], row = {.type = EIM__MY_I64};
  char pair[48];
  size_t i;
  int rc;

  if (req->nmembers < 1)
    return eim_err_set(err, EIM_EINVAL, "a single chat needs a peer");
  for (i = 1; i < req->nmembers; i++)
    if (req->members[i] == NULL || strcmp(req->members[i], req->members[0]) != 0)
      return eim_err_set(err, EIM_EINVAL, "a single chat has exactly two members");
  rc = user_key(c, req->members[0], &peer, err);
  if (rc != EIM_OK)
    return rc;
  if (peer == creator)
    return eim_err_set(err, EIM_EINVAL, "a single chat needs two different users");
  lo = creator < peer ? creator : peer;
  hi = creator < peer ? peer : creator;
  snprintf(pair, sizeof pair, "%llu:%llu", lo, hi);

  p[0] = EIM__CSTR(pair);
  rc = eim__my_exec(c, EIM__ST_CONV_BY_PAIR, p, 1, err);
  if (rc != EIM_OK)
    return rc;
  rc = eim__my_next(c, EIM__ST_CONV_BY_PAIR, &row, 1, NULL, err);
  if (rc < 0)
    return rc;
  if (rc == 1) {
    eim__my_done(c, EIM__ST_CONV_BY_PAIR);
    *conv = (unsigned long long)row.i;
    *x->existed = 1;
    return EIM_OK;
  }
  p[0] = EIM__I64(EIM_CONV_SINGLE);
  p[1] = EIM__STR("", 0);
  p[2] = EIM__CSTR(pair);
  p[3] = EIM__I64(req->created_at);
  p[4] = EIM__I64(req->created_at);
  rc = eim__my_exec(c, EIM__ST_CONV_INSERT, p, 5, err);
  if (rc != EIM_OK)
    return rc;
  *conv = eim__my_insert_id(c, EIM__ST_CONV_INSERT);
  rc = add_member(c, *conv, creator, req->created_at, err);
  if (rc == EIM_OK)
    rc = add_member(c, *conv, peer, req->created_at, err);
  return rc;
}

static int create_group(eim__my_conn *c, create_ctx *x, unsigned long long creator,
                        unsigned long long *conv, eim_err *err) {
  const eim_conv_new *req = x->req;
  const char *name = req->name != NULL ? req->name : "";
  unsigned long long *keys;
  eim__my_val p[5];
  size_t i;
  int rc;

  keys = eim__my_alloc(c, x->a, (req->nmembers + 1) * sizeof *keys);
  if (keys == NULL)
    return NOMEM(err);
  for (i = 0; i < req->nmembers; i++) {
    rc = user_key(c, req->members[i], &keys[i], err);
    if (rc != EIM_OK)
      return rc;
  }
  p[0] = EIM__I64(EIM_CONV_GROUP);
  p[1] = EIM__CSTR(name);
  p[2] = EIM__STR(NULL, 0);
  p[3] = EIM__I64(req->created_at);
  p[4] = EIM__I64(req->created_at);
  rc = eim__my_exec(c, EIM__ST_CONV_INSERT, p, 5, err);
  if (rc != EIM_OK)
    return rc;
  *conv = eim__my_insert_id(c, EIM__ST_CONV_INSERT);
  /* The creator joins first; repeats are skipped by the unique key. */
  rc = add_member(c, *conv, creator, req->created_at, err);
  for (i = 0; rc == EIM_OK && i < req->nmembers; i++)
    rc = add_member(c, *conv, keys[i], req->created_at, err);
  return rc;
}

static int op_conv_create(eim__my_conn *c, void *arg, eim_err *err) {
  create_ctx *x = arg;
  unsigned long long creator, conv = 0;
  int rc;

  *x->existed = 0;
  rc = eim__my_begin(c, err);
  if (rc != EIM_OK)
    return rc;
  rc = user_key(c, x->req->creator, &creator, err);
  if (rc != EIM_OK)
    return rc;
  if (x->req->type == EIM_CONV_SINGLE)
    rc = create_single(c, x, creator, &conv, err);
  else
    rc = create_group(c, x, creator, &conv, err);
  if (rc == EIM_OK)
    rc = load_conv(c, conv, creator, x->out, x->a, err);
  if (rc != EIM_OK)
    return rc;
  return eim__my_commit(c, err);
}

int eim__my_conv_create(void *conn, const eim_conv_new *req, eim_conv *out,
                        int *existed, eim_arena *a, eim_err *err) {
  create_ctx x = {.req = req, .out = out, .existed = existed, .a = a};

  if (req == NULL || (req->type != EIM_CONV_SINGLE && req->type != EIM_CONV_GROUP))
    return eim_err_set(err, EIM_EINVAL, "unknown conversation type");
  if (req->nmembers > 0 && req->members == NULL)
    return eim_err_set(err, EIM_EINVAL, "members missing");
  if (req->name != NULL && strlen(req->name) > EIM__MY_TEXT_MAX)
    return eim_err_set(err, EIM_EINVAL, "name must be at most %d bytes",
                       EIM__MY_TEXT_MAX);
  return eim__my_run(conn, op_conv_create, &x, 0, err);
}

typedef struct get_ctx {
  const char *conversation_id;
  const char *user_id;
  const char *const *user_ids;
  size_t n;
  int64_t now;
  eim_conv *out;
  eim_id_list *ids;
  eim_arena *a;
} get_ctx;

static int op_conv_get(eim__my_conn *c, void *arg, eim_err *err) {
  get_ctx *x = arg;
  unsigned long long conv, user = 0;
  int rc;

  if (eim__my_id_parse(x->conversation_id, 'c', &conv) != 0)
    return eim_err_set(err, EIM_ENOTFOUND, "no such conversation");
  /* Membership is the host's business: an unknown user reads as one with
   * no cursor. */
  if (eim__my_id_parse(x->user_id, 'u', &user) != 0)
    user = 0;
  rc = eim__my_begin_snapshot(c, err);
  if (rc == EIM_OK)
    rc = load_conv(c, conv, user, x->out, x->a, err);
  if (rc == EIM_OK)
    rc = eim__my_commit(c, err);
  return rc;
}

int eim__my_conv_get(void *conn, const char *conversation_id, const char *user_id,
                     eim_conv *out, eim_arena *a, eim_err *err) {
  get_ctx x = {.conversation_id = conversation_id, .user_id = user_id,
               .out = out, .a = a};

  return eim__my_run(conn, op_conv_get, &x, 1, err);
}

static int op_conv_add_members(eim__my_conn *c, void *arg, eim_err *err) {
  get_ctx *x = arg;
  eim__my_val p, row = {.type = EIM__MY_I64};
  unsigned long long conv, key;
  size_t i;
  int rc;

  if (eim__my_id_parse(x->conversation_id, 'c', &conv) != 0)
    return eim_err_set(err, EIM_ENOTFOUND, "no such conversation");
  rc = eim__my_begin(c, err);
  if (rc != EIM_OK)
    return rc;
  /* The row lock orders concurrent additions to one conversation. */
  p = EIM__I64(conv);
  rc = eim__my_exec(c, EIM__ST_CONV_LOCK, &p, 1, err);
  if (rc != EIM_OK)
    return rc;
  rc = eim__my_next(c, EIM__ST_CONV_LOCK, &row, 1, NULL, err);
  if (rc < 0)
    return rc;
  if (rc == 0)
    return eim_err_set(err, EIM_ENOTFOUND, "no such conversation");
  eim__my_done(c, EIM__ST_CONV_LOCK);
  if (row.i != EIM_CONV_GROUP)
    return eim_err_set(err, EIM_EINVAL, "members can only be added to a group");
  for (i = 0; i < x->n; i++) {
    rc = user_key(c, x->user_ids[i], &key, err);
    if (rc == EIM_OK)
      rc = add_member(c, conv, key, x->now, err);
    if (rc != EIM_OK)
      return rc;
  }
  return eim__my_commit(c, err);
}

int eim__my_conv_add_members(void *conn, const char *conversation_id,
                             const char *const *user_ids, size_t n, int64_t now,
                             eim_err *err) {
  get_ctx x = {.conversation_id = conversation_id, .user_ids = user_ids, .n = n,
               .now = now};

  if (n > 0 && user_ids == NULL)
    return eim_err_set(err, EIM_EINVAL, "user_ids missing");
  return eim__my_run(conn, op_conv_add_members, &x, 1, err);
}

static int op_conv_members(eim__my_conn *c, void *arg, eim_err *err) {
  get_ctx *x = arg;
  unsigned long long conv;
  eim__my_val p;
  int rc;

  if (eim__my_id_parse(x->conversation_id, 'c', &conv) != 0)
    return eim_err_set(err, EIM_ENOTFOUND, "no such conversation");
  p = EIM__I64(conv);
  rc = eim__my_exec(c, EIM__ST_MEMBERS_OR_NONE, &p, 1, err);
  if (rc != EIM_OK)
    return rc;
  if (mysql_stmt_num_rows(c->stmts[EIM__ST_MEMBERS_OR_NONE]) == 0) {
    eim__my_done(c, EIM__ST_MEMBERS_OR_NONE);
    return eim_err_set(err, EIM_ENOTFOUND, "no such conversation");
  }
  return collect_ids(c, EIM__ST_MEMBERS_OR_NONE, 2, 1, x->ids, x->a, err);
}

int eim__my_conv_members(void *conn, const char *conversation_id, eim_id_list *out,
                          eim_arena *a, eim_err *err) {
  get_ctx x = {.conversation_id = conversation_id, .ids = out, .a = a};

  return eim__my_run(conn, op_conv_members, &x, 1, err);
}

static int op_user_peers(eim__my_conn *c, void *arg, eim_err *err) {
  get_ctx *x = arg;
  unsigned long long user;
  eim__my_val p[2];
  int rc;

  x->ids->ids = NULL;
  x->ids->n = 0;
  if (eim__my_id_parse(x->user_id, 'u', &user) != 0)
    return EIM_OK;
  p[0] = EIM__I64(user);
  p[1] = EIM__I64(user);
  rc = eim__my_exec(c, EIM__ST_PEERS, p, 2, err);
  if (rc != EIM_OK)
    return rc;
  return collect_ids(c, EIM__ST_PEERS, 1, 0, x->ids, x->a, err);
}

int eim__my_user_peers(void *conn, const char *user_id, eim_id_list *out,
                       eim_arena *a, eim_err *err) {
  get_ctx x = {.user_id = user_id, .ids = out, .a = a};

  return eim__my_run(conn, op_user_peers, &x, 1, err);
}
