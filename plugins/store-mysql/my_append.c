/* Append: seq assignment and retries, one transaction per batch. */
#include <stdlib.h>
#include <string.h>

#include "my_internal.h"

#define NOMEM(err) eim_err_set((err), EIM_ENOMEM, "out of memory")
#define MAX_BATCH 10000
#define NONE ((size_t)-1)

/* What the host passed in, restored before each attempt: a failed attempt
 * may have overwritten a retried message with a stored one. */
typedef struct msg_in {
  eim_msg m;
  unsigned long long conv, sender; /* keys, valid when m.status is EIM_OK */
} msg_in;

/* A valid message's place in the batch, sorted by conversation then place:
 * each conversation's messages are one run, in batch order. */
typedef struct slot {
  unsigned long long conv;
  size_t pos;
} slot;

typedef struct append_ctx {
  eim_msg *batch;
  size_t n;
  msg_in *in;
  slot *order;
  size_t nvalid;
  size_t ngroups;
  size_t *copy_of;       /* per slot: NONE, or the slot it repeats */
  unsigned char *looked; /* per slot: duplicate look-up done */
  eim__my_val *rows;     /* INSERT parameters, 7 per new message */
  eim_arena *a;
} append_ctx;

/* Checks the senders of group g (k slots) are members (else their
 * messages get EIM_ENOTFOUND, as from an unknown conversation) and turns
 * the messages already stored into duplicates: one query per sender and up
 * to EIM__MY_CHUNK of its client_msg_ids. */
static int find_stored(eim__my_conn *c, append_ctx *x, const slot *g, size_t k,
                       eim_err *err) {
  eim__my_val p[EIM__MY_CHUNK + 2], row[EIM__MY_MSG_COLS];
  size_t ids[EIM__MY_CHUNK], nids, i, j, t;
  unsigned long long sender;
  int rc, member;
  eim_msg *m;

  memset(x->looked, 0, k);
  for (i = 0; i < k; i++) {
    if (x->looked[i])
      continue;
    sender = x->in[g[i].pos].sender;
    for (j = i, nids = 0; j < k && nids < EIM__MY_CHUNK; j++) {
      if (!x->looked[j] && x->in[g[j].pos].sender == sender) {
        x->looked[j] = 1;
        ids[nids++] = j;
      }
    }
    /* Unused places, and messages without a client_msg_id, bind NULL,
     * which IN never matches. */
    for (t = 0; t < EIM__MY_CHUNK; t++)
      p[t] = t < nids ? EIM__CSTR(x->batch[g[ids[t]].pos].client_msg_id)
                      : EIM__STR(NULL, 0);
    p[EIM__MY_CHUNK] = EIM__I64(g[i].conv);
    p[EIM__MY_CHUNK + 1] = EIM__I64(sender);
    rc = eim__my_exec(c, EIM__ST_MSG_BY_CLIENT_IDS, p, EIM__MY_CHUNK + 2, err);
    if (rc != EIM_OK)
      return rc;
    eim__my_msg_cols(row);
    member = 0;
    while ((rc = eim__my_next(c, EIM__ST_MSG_BY_CLIENT_IDS, row, EIM__MY_MSG_COLS, x->a,
                              err)) == 1) {
      member = 1;
      for (t = 0; !row[1].is_null && t < nids; t++) {
        m = &x->batch[g[ids[t]].pos];
        if (m->duplicate || m->client_msg_id == NULL ||
            strcmp(m->client_msg_id, row[3].s) != 0)
          continue;
        if (eim__my_msg_from_row(c, row, m, x->a) != EIM_OK)
          return NOMEM(err);
        m->duplicate = 1;
      }
    }
    if (rc < 0)
      return rc;
    for (t = 0; !member && t < nids; t++)
      x->batch[g[ids[t]].pos].status = EIM_ENOTFOUND;
  }
  return EIM_OK;
}

/* Inserts the parameter rows in x->rows, the most per statement. */
static int insert_rows(eim__my_conn *c, append_ctx *x, size_t nrows, eim_err *err) {
  size_t done = 0;
  int rc;

  while (nrows - done >= EIM__MY_CHUNK) {
    rc = eim__my_exec(c, EIM__ST_MSG_INSERT_CHUNK, &x->rows[7 * done],
                      7 * EIM__MY_CHUNK, err);
    if (rc != EIM_OK)
      return rc;
    done += EIM__MY_CHUNK;
  }
  for (; done < nrows; done++) {
    rc = eim__my_exec(c, EIM__ST_MSG_INSERT, &x->rows[7 * done], 7, err);
    if (rc != EIM_OK)
      return rc;
  }
  return EIM_OK;
}

static void set_status(append_ctx *x, const slot *g, size_t k, int status) {
  size_t i;

  for (i = 0; i < k; i++)
    x->batch[g[i].pos].status = status;
}

/* Appends the k messages of one conversation, g, inside the open
 * transaction: one seq bump for all new messages, batched look-ups and
 * inserts, one cursor update per sender. */
static int append_group(eim__my_conn *c, append_ctx *x, const slot *g, size_t k,
                        eim_err *err) {
  eim__my_val p[3], *r, row = {.type = EIM__MY_I64};
  unsigned long long conv = g[0].conv, seq;
  size_t i, j, nnew = 0, last = 0;
  eim_msg *m, *o;
  int rc;

  /* With several conversations, lock them in key order (the caller sorted
   * them) so that two batches naming the same ones queue rather than
   * deadlock. A single one is locked by the seq bump. Either way writers of
   * one conversation serialise, and READ COMMITTED shows each the commits
   * before it; two first sends racing before the lock meet at the unique
   * key instead (EIM__MY_DUP), and the rerun finds the winner's row. */
  if (x->ngroups > 1) {
    p[0] = EIM__I64(conv);
    rc = eim__my_exec(c, EIM__ST_CONV_LOCK, p, 1, err);
    if (rc != EIM_OK)
      return rc;
    rc = eim__my_next(c, EIM__ST_CONV_LOCK, &row, 1, NULL, err);
    if (rc < 0)
      return rc;
    if (rc == 0) {
      set_status(x, g, k, EIM_ENOTFOUND);
      return EIM_OK;
    }
    eim__my_done(c, EIM__ST_CONV_LOCK);
  }
  rc = find_stored(c, x, g, k, err);
  if (rc != EIM_OK)
    return rc;
  for (i = 0; i < k; i++) {
    m = &x->batch[g[i].pos];
    x->copy_of[i] = NONE;
    if (m->duplicate || m->status != EIM_OK)
      continue;
    for (j = 0; m->client_msg_id != NULL && j < i; j++) {
      o = &x->batch[g[j].pos];
      if (!o->duplicate && o->status == EIM_OK && x->copy_of[j] == NONE &&
          o->client_msg_id != NULL &&
          x->in[g[j].pos].sender == x->in[g[i].pos].sender &&
          strcmp(o->client_msg_id, m->client_msg_id) == 0) {
        x->copy_of[i] = j;
        break;
      }
    }
    if (x->copy_of[i] == NONE) {
      nnew++;
      last = i;
    }
  }
  if (nnew == 0)
    return EIM_OK;

  p[0] = EIM__I64(nnew);
  p[1] = EIM__I64(x->batch[g[last].pos].created_at);
  p[2] = EIM__I64(conv);
  rc = eim__my_exec(c, EIM__ST_MSG_BUMP_SEQ, p, 3, err);
  if (rc != EIM_OK)
    return rc;
  if (eim__my_affected(c, EIM__ST_MSG_BUMP_SEQ) == 0) {
    set_status(x, g, k, EIM_ENOTFOUND);
    return EIM_OK;
  }
  /* LAST_INSERT_ID(expr) hands back the new max_seq: ours are the nnew
   * before it, in batch order. */
  seq = eim__my_insert_id(c, EIM__ST_MSG_BUMP_SEQ) - nnew + 1;
  for (i = 0, j = 0; i < k; i++) {
    m = &x->batch[g[i].pos];
    if (m->duplicate || m->status != EIM_OK || x->copy_of[i] != NONE)
      continue;
    m->seq = seq++;
    m->msg_id = eim__my_msg_id(c, x->a, conv, m->seq);
    if (m->msg_id == NULL)
      return NOMEM(err);
    r = &x->rows[7 * j++];
    r[0] = EIM__I64(conv);
    r[1] = EIM__I64(m->seq);
    r[2] = EIM__I64(x->in[g[i].pos].sender);
    r[3] = EIM__CSTR(m->client_msg_id);
    r[4] = EIM__CSTR(m->content_type);
    r[5] = EIM__STR(m->content, m->content_len);
    r[6] = EIM__I64(m->created_at);
  }
  rc = insert_rows(c, x, nnew, err);
  if (rc != EIM_OK)
    return rc;

  for (i = 0; i < k; i++) {
    m = &x->batch[g[i].pos];
    if (m->duplicate || m->status != EIM_OK)
      continue;
    if (x->copy_of[i] != NONE) {
      *m = x->batch[g[x->copy_of[i]].pos];
      m->duplicate = 1;
      continue;
    }
    /* Own messages are read: one cursor update per sender, at its last. */
    for (j = i + 1; j < k; j++)
      if (x->copy_of[j] == NONE && !x->batch[g[j].pos].duplicate &&
          x->batch[g[j].pos].status == EIM_OK &&
          x->in[g[j].pos].sender == x->in[g[i].pos].sender)
        break;
    if (j < k)
      continue;
    p[0] = EIM__I64(m->seq);
    p[1] = EIM__I64(conv);
    p[2] = EIM__I64(x->in[g[i].pos].sender);
    rc = eim__my_exec(c, EIM__ST_MEMBER_READ_SEQ, p, 3, err);
    if (rc != EIM_OK)
      return rc;
  }
  return EIM_OK;
}

static int op_append(eim__my_conn *c, void *arg, eim_err *err) {
  append_ctx *x = arg;
  size_t i, start;
  int rc;

  for (i = 0; i < x->n; i++)
    x->batch[i] = x->in[i].m;
  rc = eim__my_begin(c, err);
  if (rc != EIM_OK)
    return rc;
  for (start = 0; start < x->nvalid; start = i) {
    for (i = start; i < x->nvalid && x->order[i].conv == x->order[start].conv; i++)
      ;
    rc = append_group(c, x, &x->order[start], i - start, err);
    if (rc != EIM_OK)
      return rc;
  }
  return eim__my_commit(c, err);
}

static int slot_cmp(const void *a, const void *b) {
  const slot *x = a, *y = b;

  if (x->conv != y->conv)
    return x->conv < y->conv ? -1 : 1;
  return x->pos < y->pos ? -1 : x->pos > y->pos;
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
  x.copy_of = malloc(n * sizeof *x.copy_of);
  x.looked = malloc(n);
  x.rows = malloc(7 * n * sizeof *x.rows);
  if (x.in == NULL || x.order == NULL || x.copy_of == NULL || x.looked == NULL ||
      x.rows == NULL) {
    rc = NOMEM(err);
    goto out;
  }
  for (i = 0; i < n; i++) {
    x.in[i].m = batch[i];
    validate(&x.in[i]);
    if (x.in[i].m.status == EIM_OK)
      x.order[x.nvalid++] = (slot){.conv = x.in[i].conv, .pos = i};
    if (batch[i].client_msg_id == NULL)
      resend_safe = 0;
  }
  qsort(x.order, x.nvalid, sizeof *x.order, slot_cmp);
  for (i = 0; i < x.nvalid; i++)
    if (i == 0 || x.order[i].conv != x.order[i - 1].conv)
      x.ngroups++;
  /* Resending after a lost COMMIT is safe when every message carries a
   * client_msg_id: what was committed is found again as a duplicate. */
  rc = eim__my_run(conn, op_append, &x, resend_safe, err);
  if (rc != EIM_OK)
    for (i = 0; i < n; i++)
      batch[i] = x.in[i].m;

out:
  free(x.in);
  free(x.order);
  free(x.copy_of);
  free(x.looked);
  free(x.rows);
  return rc;
}
