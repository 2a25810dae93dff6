/* Users: create and look up. */
#include <string.h>

#include "my_internal.h"

typedef struct user_ctx {
  const char *username;
  const char *user_id;
  const char *password_hash;
  int64_t created_at;
  eim_user *out;
  eim_arena *a;
} user_ctx;

static int op_user_create(eim__my_conn *c, void *arg, eim_err *err) {
  user_ctx *x = arg;
  eim__my_val p[3];
  int rc;

  rc = eim__my_begin(c, err);
  if (rc != EIM_OK)
    return rc;
  p[0] = EIM__CSTR(x->username);
  p[1] = EIM__CSTR(x->password_hash);
  p[2] = EIM__I64(x->created_at);
  rc = eim__my_exec(c, EIM__ST_USER_INSERT, p, 3, err);
  if (rc == EIM__MY_DUP)
    return eim_err_set(err, EIM_ECONFLICT, "username '%s' is taken", x->username);
  if (rc != EIM_OK)
    return rc;
  x->out->user_id = eim__my_id_make(c, x->a, 'u',
                                    eim__my_insert_id(c, EIM__ST_USER_INSERT));
  x->out->username = c->st->host->arena_strndup(x->a, x->username,
                                                strlen(x->username));
  x->out->password_hash = c->st->host->arena_strndup(x->a, x->password_hash,
                                                     strlen(x->password_hash));
  x->out->created_at = x->created_at;
  if (x->out->user_id == NULL || x->out->username == NULL ||
      x->out->password_hash == NULL)
    return eim_err_set(err, EIM_ENOMEM, "out of memory");
  return eim__my_commit(c, err);
}

int eim__my_user_create(void *conn, const char *username, const char *password_hash,
                        int64_t created_at, eim_user *out, eim_arena *a,
                        eim_err *err) {
  user_ctx x = {.username = username, .password_hash = password_hash,
                .created_at = created_at, .out = out, .a = a};

  if (username == NULL || username[0] == '\0' ||
      strlen(username) > EIM__MY_USERNAME_MAX)
    return eim_err_set(err, EIM_EINVAL, "username must be 1 to %d bytes",
                       EIM__MY_USERNAME_MAX);
  if (password_hash == NULL || strlen(password_hash) > EIM__MY_TEXT_MAX)
    return eim_err_set(err, EIM_EINVAL, "password hash must be at most %d bytes",
                       EIM__MY_TEXT_MAX);
  return eim__my_run(conn, op_user_create, &x, 0, err);
}

/* Runs the look-up prepared by the caller's statement id: one row or
 * EIM_ENOTFOUND. */
static int fetch_user(eim__my_conn *c, eim__my_stmt_id id, const eim__my_val *key,
                      user_ctx *x, eim_err *err) {
  eim__my_val row[4] = {{.type = EIM__MY_I64}, {.type = EIM__MY_STR},
                        {.type = EIM__MY_STR}, {.type = EIM__MY_I64}};
  int rc;

  rc = eim__my_exec(c, id, key, 1, err);
  if (rc != EIM_OK)
    return rc;
  rc = eim__my_next(c, id, row, 4, x->a, err);
  if (rc < 0)
    return rc;
  if (rc == 0)
    return eim_err_set(err, EIM_ENOTFOUND, "no such user");
  eim__my_done(c, id);
  x->out->user_id = eim__my_id_make(c, x->a, 'u', (unsigned long long)row[0].i);
  if (x->out->user_id == NULL)
    return eim_err_set(err, EIM_ENOMEM, "out of memory");
  x->out->username = row[1].s;
  x->out->password_hash = row[2].s;
  x->out->created_at = row[3].i;
  return EIM_OK;
}

static int op_user_by_name(eim__my_conn *c, void *arg, eim_err *err) {
  user_ctx *x = arg;
  eim__my_val key = EIM__CSTR(x->username);

  return fetch_user(c, EIM__ST_USER_BY_NAME, &key, x, err);
}

int eim__my_user_by_name(void *conn, const char *username, eim_user *out,
                         eim_arena *a, eim_err *err) {
  user_ctx x = {.username = username, .out = out, .a = a};

  if (username == NULL || strlen(username) > EIM__MY_USERNAME_MAX)
    return eim_err_set(err, EIM_ENOTFOUND, "no such user");
  return eim__my_run(conn, op_user_by_name, &x, 1, err);
}

static int op_user_by_id(eim__my_conn *c, void *arg, eim_err *err) {
  user_ctx *x = arg;
  unsigned long long key;
  eim__my_val p;

  if (eim__my_id_parse(x->user_id, 'u', &key) != 0)
    return eim_err_set(err, EIM_ENOTFOUND, "no such user");
  p = EIM__I64(key);
  return fetch_user(c, EIM__ST_USER_BY_ID, &p, x, err);
}

int eim__my_user_by_id(void *conn, const char *user_id, eim_user *out,
                       eim_arena *a, eim_err *err) {
  user_ctx x = {.user_id = user_id, .out = out, .a = a};

  return eim__my_run(conn, op_user_by_id, &x, 1, err);
}
