/* Append: seq assignment and retries, one transaction per batch, in a
 * fixed number of statements per EIM__MY_ROWS conversations, pairs or
 * messages whatever the number of conversations in the batch. */
#include <stdlib.h>
#include <string.h>

#include "my_internal.h"

#define NOMEM(err) eim_err_set((err), EIM_ENOMEM, "out of memory")
#define MAX_BATCH 10000
#define NONE ((size_t)-1)
#define NULLV EIM__STR(NULL, 0)

/* What the host passed in, restored before each attempt: a failed attempt
 * may have overwritten a retried message with a stored one. */
typedef struct msg_in {
  eim_msg m;
  unsigned long long conv, sender; /* keys, valid when m.status is EIM_OK */
  size_t pair;                     /* index in pairs, when valid */
  size_t copy_of;                  /* NONE, or the earlier message it repeats */
} msg_in;

/* A valid message's place in the batch, sorted by conversation then place:
 * each conversation's messages are one run, in batch order. */
typedef struct slot {
  unsigned long long conv;
  size_t pos;
} slot;

/* A conversation of the batch; seq, found and the rest are per attempt. */
typedef struct group {
  unsigned long long conv;
  size_t first, count; /* its run in order */
  unsigned long long seq; /* max_seq as locked, then the last handed out */
  int64_t last_at;        /* created_at of its last new message */
  size_t nnew;
  int found;
} group;

/* A (conversation, sender) pair of the batch, sorted by both keys. */
typedef struct pair {
  unsigned long long conv, sender;
  size_t group;
  int member;                  /* per attempt */
  unsigned long long last_seq; /* per attempt: the sender's last new seq */
} pair;

/* A valid message with a client_msg_id, sorted by conversation, sender,
 * client_msg_id and place: a message and its repeats are one run. */
typedef struct key {
  unsigned long long conv, sender;
  const char *cmid;
  size_t pos;
} key;

typedef struct append_ctx {
  eim_msg *batch;
  size_t n;
  msg_in *in;
  slot *order;
  size_t nvalid;
  group *groups;
  size_t ngroups;
  pair *pairs;
  size_t npairs;
  key *keys;
  size_t nkeys;
  size_t *todo;    /* scratch: places or indexes of one step */
  /* Look the client_msg_ids up before inserting. Retries are rare, so the
   * first attempt does not (one statement fewer, and the costliest for
   * MariaDB: a three-column look-up per message); a duplicate key sends it
   * round again with the look-up. */
  int look_up;
  eim__my_val *p;  /* parameters of one statement */
  eim_arena *a;
} append_ctx;

static int key_cmp(const void *a, const void *b) {
  const key *x = a, *y = b;
  int d;

  if (x->conv != y->conv)
    return x->conv < y->conv ? -1 : 1;
  if (x->sender != y->sender)
    return x->sender < y->sender ? -1 : 1;
  d = strcmp(x->cmid, y->cmid);
  if (d != 0)
    return d;
  return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int pair_cmp(const void *a, const void *b) {
  const pair *x = a, *y = b;

  if (x->conv != y->conv)
    return x->conv < y->conv ? -1 : 1;
  return x->sender < y->sender ? -1 : x->sender > y->sender;
}

static int slot_cmp(const void *a, const void *b) {
  const slot *x = a, *y = b;

  if (x->conv != y->conv)
    return x->conv < y->conv ? -1 : 1;
  return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static void group_status(append_ctx *x, const group *g, int status) {
  size_t i;

  for (i = 0; i < g->count; i++)
    x->batch[x->order[g->first + i].pos].status = status;
}

/* Locks the batch's conversations, EIM__MY_ROWS per statement in key
 * order, and reads their max_seq; an unknown one's messages get
 * EIM_ENOTFOUND. Every writer of a conversation holds this lock until its
 * commit, so the look-ups that follow see every earlier send (READ
 * COMMITTED), from this server or another. */
static int lock_convs(eim__my_conn *c, append_ctx *x, eim_err *err) {
  eim__my_val row[2] = {{.type = EIM__MY_I64}, {.type = EIM__MY_I64}};
  size_t start, k, rows, i, g;
  eim__my_stmt_id id;
  int rc;

  for (start = 0; start < x->ngroups; start += k) {
    k = x->ngroups - start < EIM__MY_ROWS ? x->ngroups - start : EIM__MY_ROWS;
    id = eim__my_sized(EIM__SZ_CONV_LOCK, k, &rows);
    for (i = 0; i < rows; i++)
      x->p[i] = i < k ? EIM__I64(x->groups[start + i].conv) : NULLV;
    rc = eim__my_exec(c, id, x->p, rows, err);
    if (rc != EIM_OK)
      return rc;
    /* Rows come in key order, as the groups are. */
    g = start;
    while ((rc = eim__my_next(c, id, row, 2, NULL, err)) == 1) {
      while (g < start + k && x->groups[g].conv != (unsigned long long)row[0].i)
        g++;
      if (g == start + k)
        return eim_err_set(err, EIM_EINTERNAL, "conversation lock out of order");
      x->groups[g].found = 1;
      x->groups[g].seq = (unsigned long long)row[1].i;
    }
    if (rc < 0)
      return rc;
  }
  for (g = 0; g < x->ngroups; g++)
    if (!x->groups[g].found)
      group_status(x, &x->groups[g], EIM_ENOTFOUND);
  return EIM_OK;
}

/* Checks which senders are members of the (found) conversations they
 * write to; a non-member's messages get EIM_ENOTFOUND, as to an unknown
 * conversation. Members are never removed, so no lock is needed. */
static int find_members(eim__my_conn *c, append_ctx *x, eim_err *err) {
  eim__my_val row[2] = {{.type = EIM__MY_I64}, {.type = EIM__MY_I64}};
  size_t ntodo = 0, start, k, rows, i;
  eim__my_stmt_id id;
  pair want, *hit;
  int rc;

  for (i = 0; i < x->npairs; i++)
    if (x->groups[x->pairs[i].group].found)
      x->todo[ntodo++] = i;
  for (start = 0; start < ntodo; start += k) {
    k = ntodo - start < EIM__MY_ROWS ? ntodo - start : EIM__MY_ROWS;
    id = eim__my_sized(EIM__SZ_MEMBERS_ARE, k, &rows);
    for (i = 0; i < rows; i++) {
      x->p[2 * i] = i < k ? EIM__I64(x->pairs[x->todo[start + i]].conv) : NULLV;
      x->p[2 * i + 1] = i < k ? EIM__I64(x->pairs[x->todo[start + i]].sender) : NULLV;
    }
    rc = eim__my_exec(c, id, x->p, 2 * rows, err);
    if (rc != EIM_OK)
      return rc;
    while ((rc = eim__my_next(c, id, row, 2, NULL, err)) == 1) {
      want.conv = (unsigned long long)row[0].i;
      want.sender = (unsigned long long)row[1].i;
      hit = bsearch(&want, x->pairs, x->npairs, sizeof *x->pairs, pair_cmp);
      if (hit != NULL)
        hit->member = 1;
    }
    if (rc < 0)
      return rc;
  }
  for (i = 0; i < x->n; i++)
    if (x->batch[i].status == EIM_OK && !x->pairs[x->in[i].pair].member)
      x->batch[i].status = EIM_ENOTFOUND;
  return EIM_OK;
}

/* The first key of want's run (want.pos 0), or NULL. */
static key *first_of_run(append_ctx *x, const key *want) {
  size_t lo = 0, hi = x->nkeys, mid;

  while (lo < hi) {
    mid = lo + (hi - lo) / 2;
    if (key_cmp(&x->keys[mid], want) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == x->nkeys || x->keys[lo].conv != want->conv ||
      x->keys[lo].sender != want->sender || strcmp(x->keys[lo].cmid, want->cmid) != 0)
    return NULL;
  return &x->keys[lo];
}

/* Turns the messages already stored, found by (conversation, sender,
 * client_msg_id), into duplicates holding the stored message. Only the
 * first of a batch's repeats is looked up; the others copy it later. */
static int find_stored(eim__my_conn *c, append_ctx *x, eim_err *err) {
  eim__my_val row[EIM__MY_MSG_COLS];
  size_t ntodo = 0, start, k, rows, i;
  eim__my_stmt_id id;
  key want, *hit;
  eim_msg *m;
  int rc;

  for (i = 0; i < x->nkeys; i++)
    if (x->in[x->keys[i].pos].copy_of == NONE &&
        x->batch[x->keys[i].pos].status == EIM_OK)
      x->todo[ntodo++] = i;
  for (start = 0; start < ntodo; start += k) {
    k = ntodo - start < EIM__MY_ROWS ? ntodo - start : EIM__MY_ROWS;
    id = eim__my_sized(EIM__SZ_MSG_FIND, k, &rows);
    for (i = 0; i < rows; i++) {
      const key *q = i < k ? &x->keys[x->todo[start + i]] : NULL;

      x->p[3 * i] = q != NULL ? EIM__I64(q->conv) : NULLV;
      x->p[3 * i + 1] = q != NULL ? EIM__I64(q->sender) : NULLV;
      x->p[3 * i + 2] = q != NULL ? EIM__CSTR(q->cmid) : NULLV;
    }
    rc = eim__my_exec(c, id, x->p, 3 * rows, err);
    if (rc != EIM_OK)
      return rc;
    eim__my_msg_cols(row);
    while ((rc = eim__my_next(c, id, row, EIM__MY_MSG_COLS, x->a, err)) == 1) {
      want.conv = (unsigned long long)row[0].i;
      want.sender = (unsigned long long)row[2].i;
      want.cmid = row[3].s;
      want.pos = 0;
      hit = row[3].s != NULL ? first_of_run(x, &want) : NULL;
      if (hit == NULL)
        continue;
      m = &x->batch[hit->pos];
      if (eim__my_msg_from_row(c, row, m, x->a) != EIM_OK)
        return NOMEM(err);
      m->duplicate = 1;
    }
    if (rc < 0)
      return rc;
  }
  return EIM_OK;
}

/* Hands out seqs to the new messages, in batch order per conversation
 * after its locked max_seq, and lists their places in todo (conversation
 * order). Returns the number of new messages, or NONE out of memory. */
static size_t assign_seqs(eim__my_conn *c, append_ctx *x) {
  size_t g, i, pos, nnew = 0;
  group *gr;
  eim_msg *m;

  for (g = 0; g < x->ngroups; g++) {
    gr = &x->groups[g];
    for (i = 0; gr->found && i < gr->count; i++) {
      pos = x->order[gr->first + i].pos;
      m = &x->batch[pos];
      if (m->status != EIM_OK || m->duplicate || x->in[pos].copy_of != NONE)
        continue;
      m->seq = ++gr->seq;
      m->msg_id = eim__my_msg_id(c, x->a, gr->conv, m->seq);
      if (m->msg_id == NULL)
        return NONE;
      gr->nnew++;
      gr->last_at = m->created_at;
      x->pairs[x->in[pos].pair].last_seq = m->seq;
      x->todo[nnew++] = pos;
    }
  }
  return nnew;
}

/* Stores the new max_seq and last activity of every conversation that got
 * messages. */
static int update_convs(eim__my_conn *c, append_ctx *x, eim_err *err) {
  size_t ntodo = 0, start, k, rows, i, g;
  eim__my_stmt_id id;
  const group *gr;
  int rc;

  for (g = 0; g < x->ngroups; g++)
    if (x->groups[g].nnew > 0)
      x->todo[ntodo++] = g;
  for (start = 0; start < ntodo; start += k) {
    k = ntodo - start < EIM__MY_ROWS ? ntodo - start : EIM__MY_ROWS;
    id = eim__my_sized(EIM__SZ_CONV_SET_SEQ, k, &rows);
    for (i = 0; i < rows; i++) {
      gr = i < k ? &x->groups[x->todo[start + i]] : NULL;
      x->p[2 * i] = gr != NULL ? EIM__I64(gr->conv) : NULLV;
      x->p[2 * i + 1] = gr != NULL ? EIM__I64(gr->seq) : NULLV;
      x->p[2 * rows + 2 * i] = gr != NULL ? EIM__I64(gr->conv) : NULLV;
      x->p[2 * rows + 2 * i + 1] = gr != NULL ? EIM__I64(gr->last_at) : NULLV;
      x->p[4 * rows + i] = gr != NULL ? EIM__I64(gr->conv) : NULLV;
    }
    rc = eim__my_exec(c, id, x->p, 5 * rows, err);
    if (rc != EIM_OK)
      return rc;
  }
  return EIM_OK;
}

/* Inserts the nnew messages whose places are in todo. */
static int insert_msgs(eim__my_conn *c, append_ctx *x, size_t nnew, eim_err *err) {
  size_t start, k, rows, i, pos;
  eim__my_stmt_id id;
  eim__my_val *r;
  eim_msg *m;
  int rc;

  for (start = 0; start < nnew; start += k) {
    k = nnew - start < EIM__MY_ROWS ? nnew - start : EIM__MY_ROWS;
    id = eim__my_sized(EIM__SZ_MSG_INSERT, k, &rows);
    for (i = 0; i < k; i++) {
      pos = x->todo[start + i];
      m = &x->batch[pos];
      r = &x->p[7 * i];
      r[0] = EIM__I64(x->in[pos].conv);
      r[1] = EIM__I64(m->seq);
      r[2] = EIM__I64(x->in[pos].sender);
      r[3] = EIM__CSTR(m->client_msg_id);
      r[4] = EIM__CSTR(m->content_type);
      r[5] = EIM__STR(m->content, m->content_len);
      r[6] = EIM__I64(m->created_at);
    }
    rc = eim__my_exec(c, id, x->p, 7 * rows, err);
    if (rc != EIM_OK)
      return rc;
  }
  return EIM_OK;
}

/* Own messages are read: each sender's cursor moves to its last new seq
 * (never back: another device may have read further). */
static int move_cursors(eim__my_conn *c, append_ctx *x, eim_err *err) {
  size_t ntodo = 0, start, k, rows, i;
  eim__my_stmt_id id;
  const pair *pr;
  int rc;

  for (i = 0; i < x->npairs; i++)
    if (x->pairs[i].last_seq > 0)
      x->todo[ntodo++] = i;
  for (start = 0; start < ntodo; start += k) {
    k = ntodo - start < EIM__MY_ROWS ? ntodo - start : EIM__MY_ROWS;
    id = eim__my_sized(EIM__SZ_READ_SEQ, k, &rows);
    for (i = 0; i < rows; i++) {
      pr = i < k ? &x->pairs[x->todo[start + i]] : NULL;
      x->p[3 * i] = pr != NULL ? EIM__I64(pr->conv) : NULLV;
      x->p[3 * i + 1] = pr != NULL ? EIM__I64(pr->sender) : NULLV;
      x->p[3 * i + 2] = pr != NULL ? EIM__I64(pr->last_seq) : NULLV;
      x->p[3 * rows + 2 * i] = pr != NULL ? EIM__I64(pr->conv) : NULLV;
      x->p[3 * rows + 2 * i + 1] = pr != NULL ? EIM__I64(pr->sender) : NULLV;
    }
    rc = eim__my_exec(c, id, x->p, 5 * rows, err);
    if (rc != EIM_OK)
      return rc;
  }
  return EIM_OK;
}

/* One attempt: lock, look up, hand out seqs, write, commit. The steps
 * after the lock take their rows in key order too, so concurrent batches
 * meet their locks in one order. */
static int op_append(eim__my_conn *c, void *arg, eim_err *err) {
  append_ctx *x = arg;
  size_t i, nnew;
  eim_msg *m;
  int rc;

  for (i = 0; i < x->n; i++)
    x->batch[i] = x->in[i].m;
  for (i = 0; i < x->ngroups; i++) {
    x->groups[i].found = 0;
    x->groups[i].seq = 0;
    x->groups[i].nnew = 0;
  }
  for (i = 0; i < x->npairs; i++) {
    x->pairs[i].member = 0;
    x->pairs[i].last_seq = 0;
  }
  rc = eim__my_begin(c, err);
  if (rc != EIM_OK)
    return rc;
  rc = lock_convs(c, x, err);
  if (rc == EIM_OK)
    rc = find_members(c, x, err);
  if (rc == EIM_OK && x->look_up)
    rc = find_stored(c, x, err);
  if (rc != EIM_OK)
    return rc;
  nnew = assign_seqs(c, x);
  if (nnew == NONE)
    return NOMEM(err);
  rc = insert_msgs(c, x, nnew, err);
  if (rc == EIM__MY_DUP && !x->look_up) {
    /* A retry of a stored message (the only duplicate key a new seq can
     * hit, under the conversation's lock): again, looking them up. */
    x->look_up = 1;
    return EIM__MY_AGAIN;
  }
  if (rc == EIM_OK)
    rc = update_convs(c, x, err);
  if (rc == EIM_OK)
    rc = move_cursors(c, x, err);
  if (rc != EIM_OK)
    return rc;
  /* A repeat inside the batch answers like a retry of the first. */
  for (i = 0; i < x->n; i++) {
    m = &x->batch[i];
    if (m->status == EIM_OK && x->in[i].copy_of != NONE) {
      *m = x->batch[x->in[i].copy_of];
      m->duplicate = 1;
    }
  }
  return eim__my_commit(c, err);
}

/* Checks one message before any round trip; the answer goes to status. */
static void validate(msg_in *in) {
  eim_msg *m = &in->m;

  m->msg_id = NULL;
  m->seq = 0;
  m->duplicate = 0;
  m->status = EIM_OK;
  if (m->content_type == NULL)
    m->content_type = "text";
  if (m->content == NULL)
    m->content = "";
  if (eim__my_id_parse(m->conversation_id, 'c', &in->conv) != 0 ||
      eim__my_id_parse(m->sender, 'u', &in->sender) != 0) {
    m->status = EIM_ENOTFOUND;
  } else if ((m->client_msg_id != NULL &&
              strlen(m->client_msg_id) > EIM__MY_CLIENT_MSG_ID_MAX) ||
             strlen(m->content_type) > EIM__MY_TEXT_MAX) {
    m->status = EIM_EINVAL;
  } else if (m->content_len > EIM__MY_CONTENT_MAX) {
    m->status = EIM_ETOOBIG;
  }
}

/* Sorts the valid messages into conversations, (conversation, sender)
 * pairs and runs of repeated client_msg_ids: all that does not depend on
 * the database, done once for every attempt. */
static void plan(append_ctx *x) {
  size_t i, j;
  pair want, *hit;

  for (i = 0; i < x->n; i++) {
    x->in[i].copy_of = NONE;
    x->in[i].pair = NONE;
    if (x->in[i].m.status != EIM_OK)
      continue;
    x->order[x->nvalid++] = (slot){.conv = x->in[i].conv, .pos = i};
    x->pairs[x->npairs++] = (pair){.conv = x->in[i].conv, .sender = x->in[i].sender};
    if (x->in[i].m.client_msg_id != NULL)
      x->keys[x->nkeys++] = (key){.conv = x->in[i].conv,
                                  .sender = x->in[i].sender,
                                  .cmid = x->in[i].m.client_msg_id,
                                  .pos = i};
  }
  qsort(x->order, x->nvalid, sizeof *x->order, slot_cmp);
  for (i = 0; i < x->nvalid; i = j) {
    for (j = i; j < x->nvalid && x->order[j].conv == x->order[i].conv; j++)
      ;
    x->groups[x->ngroups++] = (group){.conv = x->order[i].conv, .first = i, .count = j - i};
  }
  qsort(x->pairs, x->npairs, sizeof *x->pairs, pair_cmp);
  for (i = 0, j = 0; i < x->npairs; i++)
    if (j == 0 || pair_cmp(&x->pairs[i], &x->pairs[j - 1]) != 0)
      x->pairs[j++] = x->pairs[i];
  x->npairs = j;
  for (i = 0, j = 0; i < x->npairs; i++) {
    while (x->groups[j].conv != x->pairs[i].conv)
      j++;
    x->pairs[i].group = j;
  }
  for (i = 0; i < x->nvalid; i++) {
    want.conv = x->order[i].conv;
    want.sender = x->in[x->order[i].pos].sender;
    hit = bsearch(&want, x->pairs, x->npairs, sizeof *x->pairs, pair_cmp);
    x->in[x->order[i].pos].pair = (size_t)(hit - x->pairs);
  }
  qsort(x->keys, x->nkeys, sizeof *x->keys, key_cmp);
  for (i = 1; i < x->nkeys; i++)
    if (x->keys[i].conv == x->keys[i - 1].conv &&
        x->keys[i].sender == x->keys[i - 1].sender &&
        strcmp(x->keys[i].cmid, x->keys[i - 1].cmid) == 0)
      x->in[x->keys[i].pos].copy_of = x->in[x->keys[i - 1].pos].copy_of != NONE
                                          ? x->in[x->keys[i - 1].pos].copy_of
                                          : x->keys[i - 1].pos;
}

int eim__my_append(void *conn, eim_msg *batch, size_t n, eim_arena *a, eim_err *err) {
  append_ctx x = {.batch = batch, .n = n, .a = a};
  int resend_safe = 1;
  size_t i;
  int rc;

  if (n == 0)
    return EIM_OK;
  if (batch == NULL || n > MAX_BATCH)
    return eim_err_set(err, EIM_EINVAL, "a batch holds 1 to %d messages", MAX_BATCH);
  x.in = malloc(n * sizeof *x.in);
  x.order = malloc(n * sizeof *x.order);
  x.groups = malloc(n * sizeof *x.groups);
  x.pairs = malloc(n * sizeof *x.pairs);
  x.keys = malloc(n * sizeof *x.keys);
  x.todo = malloc(n * sizeof *x.todo);
  x.p = malloc(EIM__MY_MAX_PARAMS * sizeof *x.p);
  if (x.in == NULL || x.order == NULL || x.groups == NULL || x.pairs == NULL ||
      x.keys == NULL || x.todo == NULL || x.p == NULL) {
    rc = NOMEM(err);
    goto out;
  }
  for (i = 0; i < n; i++) {
    x.in[i].m = batch[i];
    validate(&x.in[i]);
    if (batch[i].client_msg_id == NULL)
      resend_safe = 0;
  }
  plan(&x);
  /* Resending after a lost COMMIT is safe when every message carries a
   * client_msg_id: what was committed is found again as a duplicate. */
  rc = eim__my_run(conn, op_append, &x, resend_safe, err);
  if (rc != EIM_OK)
    for (i = 0; i < n; i++)
      batch[i] = x.in[i].m;

out:
  free(x.in);
  free(x.order);
  free(x.groups);
  free(x.pairs);
  free(x.keys);
  free(x.todo);
  free(x.p);
  return rc;
}
