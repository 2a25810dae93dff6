/* Messages: rows, history, read cursors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "my_internal.h"

#define NOMEM(err) eim_err_set((err), EIM_ENOMEM, "out of memory")

void eim__my_msg_cols(eim__my_val *cols) {
  static const int types[EIM__MY_MSG_COLS] = {EIM__MY_I64, EIM__MY_I64, EIM__MY_I64,
                                              EIM__MY_STR, EIM__MY_STR, EIM__MY_STR,
                                              EIM__MY_I64};
  int i;

  for (i = 0; i < EIM__MY_MSG_COLS; i++)
    cols[i].type = types[i];
}

const char *eim__my_msg_id(eim__my_conn *c, eim_arena *a, unsigned long long conv,
                           unsigned long long seq) {
  char buf[48];
  int n = snprintf(buf, sizeof buf, "m%llu.%llu", conv, seq);

  return c->st->host->arena_strndup(a, buf, (size_t)n);
}

int eim__my_msg_from_row(eim__my_conn *c, const eim__my_val *row, eim_msg *m,
                         eim_arena *a) {
  memset(m, 0, sizeof *m);
  m->conversation_id = eim__my_id_make(c, a, 'c', (unsigned long long)row[0].i);
  m->seq = (uint64_t)row[1].i;
  m->msg_id = eim__my_msg_id(c, a, (unsigned long long)row[0].i, m->seq);
  m->sender = eim__my_id_make(c, a, 'u', (unsigned long long)row[2].i);
  m->client_msg_id = row[3].s;
  m->content_type = row[4].s;
  m->content = row[5].s;
  m->content_len = row[5].len;
  m->created_at = row[6].i;
  m->status = EIM_OK;
  if (m->msg_id == NULL || m->conversation_id == NULL || m->sender == NULL)
    return EIM_ENOMEM;
  return EIM_OK;
}

typedef struct history_ctx {
  const eim_history_q *q;
  eim_msg_list *out;
  eim_arena *a;
  const char *conversation_id;
  const char *user_id;
  uint64_t seq;
  uint64_t *read_seq, *max_seq;
} history_ctx;

static int conv_exists(eim__my_conn *c, unsigned long long conv, eim_err *err) {
  eim__my_val p[2] = {EIM__I64(0), EIM__I64(conv)};
  eim__my_val row[2] = {{.type = EIM__MY_I64}, {.type = EIM__MY_I64}};
  int rc;

  rc = eim__my_exec(c, EIM__ST_READ_GET, p, 2, err);
  if (rc != EIM_OK)
    return rc;
  rc = eim__my_next(c, EIM__ST_READ_GET, row, 2, NULL, err);
  if (rc < 0)
    return rc;
  if (rc == 0)
    return eim_err_set(err, EIM_ENOTFOUND, "no such conversation");
  eim__my_done(c, EIM__ST_READ_GET);
  return EIM_OK;
}

static int op_history(eim__my_conn *c, void *arg, eim_err *err) {
  history_ctx *x = arg;
  const eim_history_q *q = x->q;
  eim__my_val p[3], row[EIM__MY_MSG_COLS];
  eim__my_stmt_id id;
  unsigned long long conv, rows;
  size_t limit = q->limit, count, j, pos;
  int asc, rc;

  x->out->items = NULL;
  x->out->n = 0;
  x->out->has_more = 0;
  if (eim__my_id_parse(q->conversation_id, 'c', &conv) != 0)
    return eim_err_set(err, EIM_ENOTFOUND, "no such conversation");
  /* One row past the page tells whether more exist. */
  p[0] = EIM__I64(conv);
  if (q->after_seq > 0) {
    id = EIM__ST_MSG_AFTER;
    asc = 1;
    p[1] = EIM__I64(q->after_seq);
    p[2] = EIM__I64(limit + 1);
  } else if (q->before_seq > 0) {
    id = EIM__ST_MSG_BEFORE;
    asc = 0;
    p[1] = EIM__I64(q->before_seq);
    p[2] = EIM__I64(limit + 1);
  } else {
    id = EIM__ST_MSG_LATEST;
    asc = 0;
    p[1] = EIM__I64(limit + 1);
  }
  rc = eim__my_exec(c, id, p, id == EIM__ST_MSG_LATEST ? 2 : 3, err);
  if (rc != EIM_OK)
    return rc;
  rows = mysql_stmt_num_rows(c->stmts[id]);
  if (rows == 0) {
    eim__my_done(c, id);
    return conv_exists(c, conv, err);
  }
  count = rows > limit ? limit : (size_t)rows;
  x->out->has_more = rows > limit;
  x->out->items = eim__my_alloc(c, x->a, count * sizeof *x->out->items);
  if (x->out->items == NULL)
    return NOMEM(err);
  eim__my_msg_cols(row);
  for (j = 0; j < count; j++) {
    rc = eim__my_next(c, id, row, EIM__MY_MSG_COLS, x->a, err);
    if (rc < 0)
      return rc;
    if (rc == 0)
      return eim_err_set(err, EIM_EINTERNAL, "history rows vanished");
    /* Newest-first queries fill the page from its end. */
    pos = asc ? j : count - 1 - j;
    if (eim__my_msg_from_row(c, row, &x->out->items[pos], x->a) != EIM_OK)
      return NOMEM(err);
  }
  eim__my_done(c, id);
  x->out->n = count;
  return EIM_OK;
}

int eim__my_history(void *conn, const eim_history_q *q, eim_msg_list *out,
                    eim_arena *a, eim_err *err) {
  history_ctx x = {.q = q, .out = out, .a = a};

  if (q == NULL || q->limit == 0 || q->limit > 1000)
    return eim_err_set(err, EIM_EINVAL, "limit must be 1 to 1000");
  return eim__my_run(conn, op_history, &x, 1, err);
}

static int op_read_set(eim__my_conn *c, void *arg, eim_err *err) {
  history_ctx *x = arg;
  eim__my_val p[3], row[2] = {{.type = EIM__MY_I64}, {.type = EIM__MY_I64}};
  unsigned long long conv, user;
  uint64_t seq = x->seq > INT64_MAX ? INT64_MAX : x->seq;
  int rc;

  if (eim__my_id_parse(x->conversation_id, 'c', &conv) != 0 ||
      eim__my_id_parse(x->user_id, 'u', &user) != 0)
    return eim_err_set(err, EIM_ENOTFOUND, "no such conversation member");
  /* One statement, so the cursor never passes the max_seq it reads. */
  p[0] = EIM__I64(seq);
  p[1] = EIM__I64(conv);
  p[2] = EIM__I64(user);
  rc = eim__my_exec(c, EIM__ST_READ_ADVANCE, p, 3, err);
  if (rc != EIM_OK)
    return rc;
  p[0] = EIM__I64(user);
  p[1] = EIM__I64(conv);
  rc = eim__my_exec(c, EIM__ST_READ_GET, p, 2, err);
  if (rc != EIM_OK)
    return rc;
  rc = eim__my_next(c, EIM__ST_READ_GET, row, 2, NULL, err);
  if (rc < 0)
    return rc;
  if (rc == 0)
    return eim_err_set(err, EIM_ENOTFOUND, "no such conversation");
  eim__my_done(c, EIM__ST_READ_GET);
  if (row[1].is_null)
    return eim_err_set(err, EIM_ENOTFOUND, "not a member");
  *x->max_seq = (uint64_t)row[0].i;
  *x->read_seq = (uint64_t)row[1].i < *x->max_seq ? (uint64_t)row[1].i : *x->max_seq;
  return EIM_OK;
}

int eim__my_read_set(void *conn, const char *conversation_id, const char *user_id,
                     uint64_t seq, uint64_t *read_seq, uint64_t *max_seq,
                     eim_err *err) {
  history_ctx x = {.conversation_id = conversation_id, .user_id = user_id,
                   .seq = seq, .read_seq = read_seq, .max_seq = max_seq};

  return eim__my_run(conn, op_read_set, &x, 1, err);
}
