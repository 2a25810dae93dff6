/*
 * Messages: append with seq assignment, history, read cursors.
 */
#include "sq.h"

#include <string.h>

static int sq_nomem(eim_err *err) {
  return eim_err_set(err, EIM_ENOMEM, "out of memory");
}

/* Fills m from a messages row in SQ_MSG_COLS order (see sq_db.c). content
 * is copied by its byte length and NUL-terminated for convenience. */
int sq__msg_row(sq_conn *c, sqlite3_stmt *s, eim_msg *m, eim_arena *a, eim_err *err) {
  const eim_host *h = c->st->host;
  const void *blob = sqlite3_column_blob(s, 6);
  size_t len = (size_t)sqlite3_column_bytes(s, 6);
  char *content;

  memset(m, 0, sizeof *m);
  m->msg_id = sq__id_str(c, a, sqlite3_column_int64(s, 0));
  m->conversation_id = sq__id_str(c, a, sqlite3_column_int64(s, 1));
  m->seq = (uint64_t)sqlite3_column_int64(s, 2);
  m->sender = sq__id_str(c, a, sqlite3_column_int64(s, 3));
  m->client_msg_id = sq__col_str(c, a, s, 4);
  m->content_type = sq__col_str(c, a, s, 5);
  m->created_at = sqlite3_column_int64(s, 7);
  content = h->arena_alloc(a, len + 1);
  if (content == NULL || m->msg_id == NULL || m->conversation_id == NULL ||
      m->sender == NULL || m->client_msg_id == NULL || m->content_type == NULL)
    return sq_nomem(err);
  if (len != 0)
    memcpy(content, blob, len);
  content[len] = '\0';
  m->content = content;
  m->content_len = len;
  return EIM_OK;
}

/* Checks one message of a batch before touching the database; returns its
 * per-message status. */
static int sq_msg_valid(const eim_msg *m, sqlite3_int64 *conv, sqlite3_int64 *sender) {
  if (sq__parse_id(m->conversation_id, conv) != 0 || sq__parse_id(m->sender, sender) != 0)
    return EIM_ENOTFOUND;
  if (m->client_msg_id == NULL || m->client_msg_id[0] == '\0' || m->content_type == NULL ||
      (m->content == NULL && m->content_len != 0))
    return EIM_EINVAL;
  if (strlen(m->client_msg_id) > SQ_MAX_FIELD || strlen(m->content_type) > SQ_MAX_FIELD ||
      m->content_len > SQ_MAX_CONTENT)
    return EIM_ETOOBIG;
  return EIM_OK;
}

/* Answers a message that was not inserted: a retry gets the first message
 * (store nothing), anything else is not found (not a member, or no such
 * conversation). */
static int sq_append_retry(sq_conn *c, eim_msg *m, sqlite3_int64 conv, sqlite3_int64 sender,
                           eim_arena *a, eim_err *err) {
  int code = EIM_OK;
  sqlite3_stmt *s = sq__stmt(c, SQ_MSG_BY_CLIENT, &code, err);
  int rc;

  if (s == NULL)
    return code;
  sqlite3_bind_int64(s, 1, conv);
  sqlite3_bind_int64(s, 2, sender);
  sq__bind_str(s, 3, m->client_msg_id);
  rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    code = sq__msg_row(c, s, m, a, err);
    m->duplicate = 1;
    m->status = EIM_OK;
    return code;
  }
  if (rc != SQLITE_DONE)
    return sq__error(c, rc, err, "find retry");
  m->status = EIM_ENOTFOUND;
  return EIM_OK;
}

/* Appends one message inside the batch's transaction. Returns a negative
 * code only for a failure of the transaction itself; the message's own
 * outcome goes into m->status. A new message costs four statements:
 * membership with the last seq, the insert (which skips a retry), the
 * conversation's new max_seq, the sender's read cursor; the retry look-up
 * runs only when nothing was inserted. */
static int sq_append_one(sq_conn *c, eim_msg *m, eim_arena *a, eim_err *err) {
  sqlite3_int64 conv, sender, seq;
  sqlite3_stmt *s;
  int code = EIM_OK;
  int rc;

  m->status = sq_msg_valid(m, &conv, &sender);
  if (m->status != EIM_OK)
    return EIM_OK;

  s = sq__stmt(c, SQ_MEMBER_MAX_SEQ, &code, err);
  if (s == NULL)
    return code;
  sqlite3_bind_int64(s, 1, conv);
  sqlite3_bind_int64(s, 2, sender);
  rc = sqlite3_step(s);
  if (rc == SQLITE_DONE)
    return sq_append_retry(c, m, conv, sender, a, err);
  if (rc != SQLITE_ROW)
    return sq__error(c, rc, err, "check membership");
  seq = sqlite3_column_int64(s, 0) + 1;

  s = sq__stmt(c, SQ_MSG_INSERT, &code, err);
  if (s == NULL)
    return code;
  sqlite3_bind_int64(s, 1, conv);
  sqlite3_bind_int64(s, 2, seq);
  sqlite3_bind_int64(s, 3, sender);
  sq__bind_str(s, 4, m->client_msg_id);
  sq__bind_str(s, 5, m->content_type);
  if (m->content_len != 0)
    sqlite3_bind_blob(s, 6, m->content, (int)m->content_len, SQLITE_STATIC);
  else
    sqlite3_bind_zeroblob(s, 6, 0);
  sqlite3_bind_int64(s, 7, m->created_at);
  rc = sqlite3_step(s);
  if (rc != SQLITE_DONE)
    return sq__error(c, rc, err, "insert message");
  if (sqlite3_changes(c->db) == 0)
    return sq_append_retry(c, m, conv, sender, a, err);
  m->msg_id = sq__id_str(c, a, sqlite3_last_insert_rowid(c->db));
  if (m->msg_id == NULL)
    return sq_nomem(err);
  m->seq = (uint64_t)seq;

  s = sq__stmt(c, SQ_SEQ_SET, &code, err);
  if (s == NULL)
    return code;
  sqlite3_bind_int64(s, 1, conv);
  sqlite3_bind_int64(s, 2, seq);
  sqlite3_bind_int64(s, 3, m->created_at);
  rc = sqlite3_step(s);
  if (rc != SQLITE_DONE)
    return sq__error(c, rc, err, "assign seq");

  s = sq__stmt(c, SQ_READ_ADVANCE, &code, err);
  if (s == NULL)
    return code;
  sqlite3_bind_int64(s, 1, conv);
  sqlite3_bind_int64(s, 2, sender);
  sqlite3_bind_int64(s, 3, seq);
  rc = sqlite3_step(s);
  if (rc != SQLITE_DONE)
    return sq__error(c, rc, err, "move read cursor");
  return EIM_OK;
}

/* One write transaction for the whole batch, so the batch costs one sync
 * of the WAL (group commit). If the transaction fails, every message gets
 * that error as its status and nothing of the batch is stored. */
int sq__append(void *conn, eim_msg *batch, size_t n, eim_arena *a, eim_err *err) {
  sq_conn *c = conn;
  int code;

  for (size_t i = 0; i < n; i++) {
    batch[i].msg_id = NULL;
    batch[i].seq = 0;
    batch[i].duplicate = 0;
    batch[i].status = EIM_OK;
  }
  code = sq__begin(c, 1, err);
  if (code != EIM_OK)
    goto fail;
  for (size_t i = 0; i < n; i++) {
    code = sq_append_one(c, &batch[i], a, err);
    if (code != EIM_OK)
      goto fail;
  }
  code = sq__commit(c, err);
  if (code != EIM_OK)
    goto fail;
  return EIM_OK;

fail:
  sq__rollback(c);
  for (size_t i = 0; i < n; i++) {
    batch[i].status = code;
    batch[i].msg_id = NULL;
    batch[i].seq = 0;
    batch[i].duplicate = 0;
  }
  return code;
}

/* Pages per eim_history_q. One extra row is fetched to learn has_more;
 * the descending queries (before, latest) are turned back to ascending. */
int sq__history(void *conn, const eim_history_q *q, eim_msg_list *out, eim_arena *a,
                eim_err *err) {
  sq_conn *c = conn;
  sqlite3_int64 conv;
  sqlite3_stmt *s;
  int descending = q->after_seq == 0;
  size_t n = 0;
  int code;
  int rc;

  out->items = NULL;
  out->n = 0;
  out->has_more = 0;
  if (q->limit < 1 || q->limit > 200)
    return eim_err_set(err, EIM_EINVAL, "limit must be 1 to 200");
  if (sq__parse_id(q->conversation_id, &conv) != 0)
    return eim_err_set(err, EIM_ENOTFOUND, "no such conversation");
  code = sq__begin(c, 0, err);
  if (code != EIM_OK)
    return code;
  s = sq__stmt(c, SQ_CONV_ROW, &code, err);
  if (s == NULL)
    goto fail;
  sqlite3_bind_int64(s, 1, conv);
  rc = sqlite3_step(s);
  if (rc == SQLITE_DONE) {
    code = eim_err_set(err, EIM_ENOTFOUND, "no such conversation");
    goto fail;
  }
  if (rc != SQLITE_ROW) {
    code = sq__error(c, rc, err, "read conversation");
    goto fail;
  }

  if (q->after_seq > 0) {
    s = sq__stmt(c, SQ_HIST_AFTER, &code, err);
    if (s == NULL)
      goto fail;
    sqlite3_bind_int64(s, 2, (sqlite3_int64)q->after_seq);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)q->limit + 1);
  } else if (q->before_seq > 0) {
    s = sq__stmt(c, SQ_HIST_BEFORE, &code, err);
    if (s == NULL)
      goto fail;
    sqlite3_bind_int64(s, 2, (sqlite3_int64)q->before_seq);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)q->limit + 1);
  } else {
    s = sq__stmt(c, SQ_HIST_LATEST, &code, err);
    if (s == NULL)
      goto fail;
    sqlite3_bind_int64(s, 2, (sqlite3_int64)q->limit + 1);
  }
  sqlite3_bind_int64(s, 1, conv);
  out->items = c->st->host->arena_alloc(a, ((size_t)q->limit + 1) * sizeof *out->items);
  if (out->items == NULL) {
    code = sq_nomem(err);
    goto fail;
  }
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    code = sq__msg_row(c, s, &out->items[n++], a, err);
    if (code != EIM_OK)
      goto fail;
  }
  if (rc != SQLITE_DONE) {
    code = sq__error(c, rc, err, "read history");
    goto fail;
  }
  if (n > q->limit) {
    out->has_more = 1;
    n = q->limit;
  }
  if (descending) {
    for (size_t i = 0; i < n / 2; i++) {
      eim_msg t = out->items[i];
      out->items[i] = out->items[n - 1 - i];
      out->items[n - 1 - i] = t;
    }
  }
  out->n = n;
  return sq__commit(c, err);

fail:
  out->items = NULL;
  out->n = 0;
  out->has_more = 0;
  sq__rollback(c);
  return code;
}

/* EIM_ENOTFOUND for an unknown conversation or a user who is not one of
 * its members: there is no cursor to move. */
int sq__read_set(void *conn, const char *conversation_id, const char *user_id,
                 uint64_t seq, uint64_t *read_seq, uint64_t *max_seq, eim_err *err) {
  sq_conn *c = conn;
  sqlite3_int64 conv, user;
  uint64_t old, max, want;
  sqlite3_stmt *s;
  int code;
  int rc;

  if (sq__parse_id(conversation_id, &conv) != 0 || sq__parse_id(user_id, &user) != 0)
    return eim_err_set(err, EIM_ENOTFOUND, "no such conversation member");
  code = sq__begin(c, 1, err);
  if (code != EIM_OK)
    return code;
  s = sq__stmt(c, SQ_CONV_ROW, &code, err);
  if (s == NULL)
    goto fail;
  sqlite3_bind_int64(s, 1, conv);
  rc = sqlite3_step(s);
  if (rc != SQLITE_ROW) {
    code = rc == SQLITE_DONE ? eim_err_set(err, EIM_ENOTFOUND, "no such conversation")
                             : sq__error(c, rc, err, "read conversation");
    goto fail;
  }
  max = (uint64_t)sqlite3_column_int64(s, 3);
  s = sq__stmt(c, SQ_MEMBER_READ_SEQ, &code, err);
  if (s == NULL)
    goto fail;
  sqlite3_bind_int64(s, 1, conv);
  sqlite3_bind_int64(s, 2, user);
  rc = sqlite3_step(s);
  if (rc != SQLITE_ROW) {
    code = rc == SQLITE_DONE ? eim_err_set(err, EIM_ENOTFOUND, "not a member")
                             : sq__error(c, rc, err, "read cursor");
    goto fail;
  }
  old = (uint64_t)sqlite3_column_int64(s, 0);
  want = seq < max ? seq : max;
  if (want > old) {
    s = sq__stmt(c, SQ_READ_ADVANCE, &code, err);
    if (s == NULL)
      goto fail;
    sqlite3_bind_int64(s, 1, conv);
    sqlite3_bind_int64(s, 2, user);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)want);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) {
      code = sq__error(c, rc, err, "move read cursor");
      goto fail;
    }
  }
  *read_seq = want > old ? want : old;
  *max_seq = max;
  return sq__commit(c, err);

fail:
  sq__rollback(c);
  return code;
}
