/* conv_list: a user's conversations in three queries. */
#include <stdlib.h>

#include "my_internal.h"

#define NOMEM(err) eim_err_set((err), EIM_ENOMEM, "out of memory")

typedef struct list_ctx {
  const char *user_id;
  eim_conv_list *list;
  eim_arena *a;
} list_ctx;

/* Maps conversation keys to positions in the list, for the member and
 * last-message rows that come in another order. */
typedef struct key_pos {
  unsigned long long key;
  size_t pos;
} key_pos;

static int key_cmp(const void *a, const void *b) {
  const key_pos *x = a, *y = b;

  return x->key < y->key ? -1 : x->key > y->key;
}

static eim_conv *find_conv(eim_conv_list *list, key_pos *index,
                           unsigned long long key) {
  key_pos probe = {.key = key};
  key_pos *hit = bsearch(&probe, index, list->n, sizeof *index, key_cmp);

  return hit != NULL ? &list->items[hit->pos] : NULL;
}

static int list_members(eim__my_conn *c, list_ctx *x, key_pos *index,
                        unsigned long long user, eim_err *err) {
  eim__my_val p = EIM__I64(user);
  eim__my_val row[2] = {{.type = EIM__MY_I64}, {.type = EIM__MY_I64}};
  unsigned long long rows, cur = 0;
  const char **ids;
  eim_conv *cv = NULL;
  int started = 0;
  size_t k = 0;
  int rc;

  rc = eim__my_exec(c, EIM__ST_CONV_LIST_MEMBERS, &p, 1, err);
  if (rc != EIM_OK)
    return rc;
  rows = mysql_stmt_num_rows(c->stmts[EIM__ST_CONV_LIST_MEMBERS]);
  ids = eim__my_alloc(c, x->a, (size_t)(rows + 1) * sizeof *ids);
  if (ids == NULL)
    return NOMEM(err);
  /* Rows come grouped by conversation: each one's members are a slice. */
  while ((rc = eim__my_next(c, EIM__ST_CONV_LIST_MEMBERS, row, 2, x->a, err)) == 1) {
    if (!started || (unsigned long long)row[0].i != cur) {
      started = 1;
      cur = (unsigned long long)row[0].i;
      cv = find_conv(x->list, index, cur);
      if (cv != NULL) {
        cv->members = &ids[k];
        cv->nmembers = 0;
      }
    }
    if (cv == NULL)
      continue;
    ids[k] = eim__my_id_make(c, x->a, 'u', (unsigned long long)row[1].i);
    if (ids[k] == NULL)
      return NOMEM(err);
    k++;
    cv->nmembers++;
  }
  return rc;
}

static int list_last(eim__my_conn *c, list_ctx *x, key_pos *index,
                     unsigned long long user, eim_err *err) {
  eim__my_val p = EIM__I64(user);
  eim__my_val row[EIM__MY_MSG_COLS];
  eim_conv *cv;
  eim_msg *m;
  int rc;

  rc = eim__my_exec(c, EIM__ST_CONV_LIST_LAST, &p, 1, err);
  if (rc != EIM_OK)
    return rc;
  eim__my_msg_cols(row);
  while ((rc = eim__my_next(c, EIM__ST_CONV_LIST_LAST, row, EIM__MY_MSG_COLS, x->a,
                            err)) == 1) {
    cv = find_conv(x->list, index, (unsigned long long)row[0].i);
    if (cv == NULL)
      continue;
    m = eim__my_alloc(c, x->a, sizeof *m);
    if (m == NULL || eim__my_msg_from_row(c, row, m, x->a) != EIM_OK)
      return NOMEM(err);
    cv->last_message = m;
  }
  return rc;
}

static int op_conv_list(eim__my_conn *c, void *arg, eim_err *err) {
  list_ctx *x = arg;
  eim__my_val p, row[7];
  unsigned long long user, rows;
  key_pos *index = NULL;
  int rc;

  x->list->items = NULL;
  x->list->n = 0;
  if (eim__my_id_parse(x->user_id, 'u', &user) != 0)
    return EIM_OK;
  rc = eim__my_begin_snapshot(c, err);
  if (rc != EIM_OK)
    return rc;
  p = EIM__I64(user);
  rc = eim__my_exec(c, EIM__ST_CONV_LIST, &p, 1, err);
  if (rc != EIM_OK)
    return rc;
  rows = mysql_stmt_num_rows(c->stmts[EIM__ST_CONV_LIST]);
  x->list->items = eim__my_alloc(c, x->a, (size_t)(rows + 1) * sizeof *x->list->items);
  index = malloc((size_t)(rows + 1) * sizeof *index);
  if (x->list->items == NULL || index == NULL) {
    rc = NOMEM(err);
    goto out;
  }
  eim__my_conv_cols(row);
  while ((rc = eim__my_next(c, EIM__ST_CONV_LIST, row, 7, x->a, err)) == 1) {
    index[x->list->n].key = (unsigned long long)row[0].i;
    index[x->list->n].pos = x->list->n;
    rc = eim__my_conv_from_row(c, row, &x->list->items[x->list->n], x->a, err);
    if (rc != EIM_OK)
      goto out;
    x->list->n++;
  }
  if (rc < 0)
    goto out;
  qsort(index, x->list->n, sizeof *index, key_cmp);
  rc = list_members(c, x, index, user, err);
  if (rc == EIM_OK)
    rc = list_last(c, x, index, user, err);
  if (rc == EIM_OK)
    rc = eim__my_commit(c, err);

out:
  free(index);
  return rc;
}

int eim__my_conv_list(void *conn, const char *user_id, eim_conv_list *out,
                      eim_arena *a, eim_err *err) {
  list_ctx x = {.user_id = user_id, .list = out, .a = a};

  return eim__my_run(conn, op_conv_list, &x, 1, err);
}

