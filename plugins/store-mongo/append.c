/* store-mongo: append.
 *
 * messages: {_id: "conv#seq", mid, c, seq, s, cm, ct, body (binary), at},
 * unique on _id, on (c, seq) and on (c, s, cm).
 *
 * FerretDB v1 has no transactions, and its findAndModify and update read the
 * document and write it back as two steps: concurrent {$inc: {max_seq}} lose
 * increments and hand out the same seq twice (store-mongo.concurrent caught
 * it). The one atomic step it has is an insert checked by unique indexes, so
 * the insert of a message is what takes its seq (README.md, "How seq is
 * assigned"):
 *   - find max, the conversation's highest seq (seq.c), or take it from the
 *     lock stripe when this process appended there last;
 *   - insert the conversation's new messages of the batch as seq max+1,
 *     max+2, ... in ordered inserts of at most INSERT_MAX (FerretDB runs
 *     each as one backend transaction: the group commit);
 *   - a duplicate key on message j means another append took that seq (find
 *     max again and insert the rest after it), or the message is a retry:
 *     (c, s, cm) is taken, and the stored message is the answer.
 * An ordered insert stops at its first failure, so a seq is only ever
 * inserted right after an existing one: gapless, whatever crashes when, and
 * the messages of one conversation get increasing seqs in batch order. */
#include "mongo.h"

#include <stdlib.h>
#include <string.h>

/* Lost races per conversation and batch before giving up under contention. */
#define ROUNDS_MAX 1000
/* Documents per insert_many. FerretDB v1 cuts an insert into parts of its
 * batch size (100 unless --test-batch-size says otherwise) and, ordered or
 * not, goes on with the next part after a duplicate key in one: the
 * messages after the failure would be stored beyond a gap, with seqs below
 * those the retried ones get. Up to 100 documents are one part, which it
 * inserts in one transaction or else one by one up to the first failure. */
#define INSERT_MAX 100

/* A slot's way through append; S_SKIP ones carry a per-message status. */
enum { S_SKIP, S_NEW, S_DONE, S_COPY };

typedef struct slot {
  eim_msg *m;
  int state;
  size_t copy_of;
  char mid[25];
} slot;

static void message_doc(bson_t *doc, const slot *s, uint64_t seq) {
  const eim_msg *m = s->m;
  char key[EIM__MSG_KEY_MAX];

  eim__msg_key(key, sizeof key, m->conversation_id, seq);
  bson_init(doc);
  BSON_APPEND_UTF8(doc, "_id", key);
  BSON_APPEND_UTF8(doc, "mid", s->mid);
  BSON_APPEND_UTF8(doc, "c", m->conversation_id);
  BSON_APPEND_INT64(doc, "seq", (int64_t)seq);
  BSON_APPEND_UTF8(doc, "s", m->sender);
  BSON_APPEND_UTF8(doc, "cm", m->client_msg_id);
  BSON_APPEND_UTF8(doc, "ct", m->content_type != NULL ? m->content_type : "text");
  /* Binary, not a string: content may hold any bytes, NUL included. */
  bson_append_binary(doc, "body", 4, BSON_SUBTYPE_BINARY,
                     (const uint8_t *)(m->content != NULL ? m->content : ""),
                     (uint32_t)m->content_len);
  BSON_APPEND_INT64(doc, "at", m->created_at);
}

/* Fills s->m from a stored message with duplicate = 1, if doc is the message
 * of s (same sender and client_msg_id). Returns 1 if so, 0 if not, or a
 * negative error. */
static int take_stored(eim__mongo *st, const bson_t *doc, slot *s, eim_arena *a,
                       eim_err *err) {
  const char *sender = eim__get_str(doc, "s", NULL), *cm = eim__get_str(doc, "cm", NULL);
  int rc;

  if (sender == NULL || cm == NULL || strcmp(sender, s->m->sender) != 0 ||
      strcmp(cm, s->m->client_msg_id) != 0)
    return 0;
  if ((rc = eim__read_msg(st, doc, s->m, a)) != EIM_OK)
    return eim_err_set(err, rc, "append: reading a retried message failed");
  s->m->duplicate = 1;
  s->state = S_DONE;
  return 1;
}

/* Message s was refused as seq *max + 1 for a duplicate key. If max moved,
 * another append took the seq: *max is updated and s is tried again. Else
 * (conversation, sender, client_msg_id) is taken: s is a retry and gets the
 * stored message. */
static int on_duplicate(eim__mongo *st, mongoc_collection_t *msgs, slot *s, uint64_t *max,
                        eim_arena *a, eim_err *err) {
  uint64_t now;
  bson_t filter = BSON_INITIALIZER, doc;
  int rc;

  if ((rc = eim__max_seq(st, msgs, s->m->conversation_id, *max, &now, err)) != EIM_OK)
    return rc;
  if (now != *max) {
    *max = now;
    return EIM_OK;
  }
  BSON_APPEND_UTF8(&filter, "c", s->m->conversation_id);
  BSON_APPEND_UTF8(&filter, "s", s->m->sender);
  BSON_APPEND_UTF8(&filter, "cm", s->m->client_msg_id);
  rc = eim__find_one(st, msgs, &filter, NULL, &doc, "append: reading a retried message", err);
  bson_destroy(&filter);
  if (rc == EIM_ENOTFOUND) return EIM_OK; /* max moved and back: try again */
  if (rc != EIM_OK) return rc;
  rc = take_stored(st, &doc, s, a, err);
  bson_destroy(&doc);
  return rc < 0 ? rc : EIM_OK;
}

/* Inserts pend[0..n) (slot indexes, batch order; n <= INSERT_MAX) as seqs
 * first, first+1, ... in one ordered insert. *inserted = how many went in
 * before the first failure, which was a duplicate key if *inserted < n.
 * EIM_OK unless the insert failed for another reason, or the server did not
 * stop at the failure (EIM_EINTERNAL: documents after it went in, so the
 * seqs have a gap that must not be papered over). */
static int insert_run(eim__mongo *st, mongoc_collection_t *msgs, slot *sl,
                      const size_t *pend, size_t n, uint64_t first, size_t *inserted,
                      eim_err *err) {
  bson_t *docs = calloc(n, sizeof *docs);
  const bson_t **ptrs = calloc(n, sizeof *ptrs);
  int *dups = calloc(n, sizeof *dups), other = 0, errors;
  bson_t reply;
  bson_error_t e;
  int rc = EIM_OK;

  bson_init(&reply);
  *inserted = 0;
  if (docs == NULL || ptrs == NULL || dups == NULL) {
    rc = eim_err_set(err, EIM_ENOMEM, "out of memory");
    goto cleanup;
  }
  for (size_t i = 0; i < n; i++) {
    message_doc(&docs[i], &sl[pend[i]], first + i);
    ptrs[i] = &docs[i];
  }
  bson_destroy(&reply);
  if (mongoc_collection_insert_many(msgs, ptrs, n, NULL, &reply, &e)) {
    *inserted = n;
  } else if ((errors = eim__write_errors(&reply, dups, n, &other)) > 0 && !other) {
    while (*inserted < n && !dups[*inserted]) (*inserted)++;
    if (errors != 1 || eim__get_i64(&reply, "insertedCount") != (int64_t)*inserted)
      rc = eim_err_set(err, EIM_EINTERNAL,
                       "append: the server went on after a duplicate key in an ordered "
                       "insert of %zu (%d errors, first at %zu): a FerretDB batch size "
                       "below %d?", n, errors, *inserted, INSERT_MAX);
  } else {
    rc = eim__mongo_error(st, &e, "append", err);
  }

cleanup:
  if (docs != NULL)
    for (size_t i = 0; i < n; i++) bson_destroy(&docs[i]);
  free(docs);
  free(ptrs);
  free(dups);
  bson_destroy(&reply);
  return rc;
}

/* Moves each sender's read cursor in conv to its last new seq there. The
 * messages are stored by now, so a failure here is logged, not returned. */
static void move_cursors(eim__mongo *st, mongoc_client_t *c, slot *sl, size_t n,
                         const char *conv) {
  for (size_t i = 0; i < n; i++) {
    uint64_t last = 0, rs;
    eim_err err;
    int seen = 0;
    if (sl[i].state != S_DONE || sl[i].m->duplicate || strcmp(sl[i].m->conversation_id, conv))
      continue;
    for (size_t j = 0; j < i && !seen; j++)
      seen = sl[j].state == S_DONE && !sl[j].m->duplicate &&
             strcmp(sl[j].m->conversation_id, conv) == 0 &&
             strcmp(sl[j].m->sender, sl[i].m->sender) == 0;
    if (seen) continue;
    for (size_t j = i; j < n; j++)
      if (sl[j].state == S_DONE && !sl[j].m->duplicate &&
          strcmp(sl[j].m->conversation_id, conv) == 0 &&
          strcmp(sl[j].m->sender, sl[i].m->sender) == 0 && sl[j].m->seq > last)
        last = sl[j].m->seq;
    if (eim__cursor_max(st, c, conv, sl[i].m->sender, last, &rs, &err) != EIM_OK &&
        err.code != EIM_ENOTFOUND)
      st->host->log(st->host, EIM_LOG_WARN, "append: moving the read cursor: %s", err.msg);
  }
}

/* Appends the S_NEW slots of conversation conv. EIM_OK (each slot S_DONE,
 * or S_SKIP with its status) or the error that stops the batch. */
static int append_conv(eim__mongo *st, mongoc_client_t *c, slot *sl, size_t n,
                       const char *conv, eim_arena *a, eim_err *err) {
  mongoc_collection_t *convs = eim__coll(st, c, EIM__C_CONVS);
  mongoc_collection_t *msgs = eim__coll(st, c, EIM__C_MSGS);
  eim__conv_stripe *stripe = &st->conv_stripe[eim__hash(conv) % EIM__CONV_LOCKS];
  size_t *pend = calloc(n, sizeof *pend), np = 0;
  uint64_t max = 0, hint = 0;
  bson_t doc;
  int rc = EIM_OK;

  if (pend == NULL) {
    rc = eim_err_set(err, EIM_ENOMEM, "out of memory");
    goto cleanup;
  }
  for (size_t i = 0; i < n; i++)
    if (sl[i].state == S_NEW && strcmp(sl[i].m->conversation_id, conv) == 0) pend[np++] = i;

  pthread_mutex_lock(&stripe->mu);
  if (strcmp(stripe->conv, conv) == 0) {
    max = stripe->max;
    hint = stripe->hint;
  } else {
    rc = eim__find_id(st, convs, conv, &doc, "append: conversation lookup", err);
    if (rc == EIM_ENOTFOUND) {
      for (size_t i = 0; i < np; i++) {
        sl[pend[i]].m->status = EIM_ENOTFOUND;
        sl[pend[i]].state = S_SKIP;
      }
      np = 0;
      rc = EIM_OK;
    } else if (rc == EIM_OK) {
      rc = eim__last_msg(st, msgs, &doc, &max, NULL, err);
      hint = (uint64_t)eim__get_i64(&doc, "max_seq");
      bson_destroy(&doc);
    }
  }
  for (int lost = 0; rc == EIM_OK && np > 0;) {
    size_t run = np < INSERT_MAX ? np : INSERT_MAX, inserted, k = 0;
    if (lost == ROUNDS_MAX) {
      rc = eim_err_set(err, EIM_EUNAVAIL, "append: conversation %s too contended", conv);
      break;
    }
    if ((rc = insert_run(st, msgs, sl, pend, run, max + 1, &inserted, err)) != EIM_OK) break;
    for (size_t i = 0; i < inserted; i++) {
      slot *s = &sl[pend[i]];
      s->m->seq = ++max;
      s->state = S_DONE;
    }
    if (inserted < run) {
      lost++;
      if ((rc = on_duplicate(st, msgs, &sl[pend[inserted]], &max, a, err)) != EIM_OK) break;
    }
    for (size_t i = inserted; i < np; i++)
      if (sl[pend[i]].state == S_NEW) pend[k++] = pend[i];
    np = k;
  }
  /* The stored hint keeps other processes' and readers' max_seq searches
   * short. It is rewritten only when it lags: $max in FerretDB v1 is a read
   * and a write, and losing to a concurrent one leaves a lower, still valid
   * bound. */
  if (max >= hint + EIM__HINT_LAG) {
    bson_t q = BSON_INITIALIZER, u = BSON_INITIALIZER, inner;
    BSON_APPEND_UTF8(&q, "_id", conv);
    BSON_APPEND_DOCUMENT_BEGIN(&u, "$max", &inner);
    BSON_APPEND_INT64(&inner, "max_seq", (int64_t)max);
    bson_append_document_end(&u, &inner);
    if (mongoc_collection_update_one(convs, &q, &u, NULL, NULL, NULL)) hint = max;
    bson_destroy(&q);
    bson_destroy(&u);
  }
  /* max is a lower bound after a failure too: what went in, went in. */
  if (max > 0) {
    snprintf(stripe->conv, sizeof stripe->conv, "%s", conv);
    stripe->max = max;
    stripe->hint = hint;
  }
  pthread_mutex_unlock(&stripe->mu);
  if (rc == EIM_OK) move_cursors(st, c, sl, n, conv);

cleanup:
  free(pend);
  mongoc_collection_destroy(convs);
  mongoc_collection_destroy(msgs);
  return rc;
}

/* Checks one message's inputs; EIM_OK or the per-message status. */
static int check_msg(const eim_msg *m) {
  if (!eim__valid_id(m->conversation_id)) return EIM_ENOTFOUND;
  if (!eim__valid_id(m->sender)) return EIM_ENOTFOUND;
  if (m->client_msg_id == NULL || m->client_msg_id[0] == '\0' ||
      strlen(m->client_msg_id) > EIM__KEY_MAX)
    return EIM_EINVAL;
  if (m->content_type != NULL && strlen(m->content_type) > EIM__FIELD_MAX)
    return EIM_EINVAL;
  if (m->content_len > EIM__CONTENT_MAX) return EIM_ETOOBIG;
  if (m->content == NULL && m->content_len > 0) return EIM_EINVAL;
  return EIM_OK;
}

static int same_message(const eim_msg *x, const eim_msg *y) {
  return strcmp(x->conversation_id, y->conversation_id) == 0 &&
         strcmp(x->sender, y->sender) == 0 && strcmp(x->client_msg_id, y->client_msg_id) == 0;
}

int eim__append(void *conn, eim_msg *batch, size_t n, eim_arena *a, eim_err *err) {
  eim__mongo *st = ((eim__conn *)conn)->st;
  mongoc_client_t *c = NULL;
  slot *sl = calloc(n ? n : 1, sizeof *sl);
  int rc = EIM_OK;

  if (sl == NULL) return eim_err_set(err, EIM_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    slot *s = &sl[i];
    s->m = &batch[i];
    s->m->status = check_msg(s->m);
    s->m->duplicate = 0;
    s->m->seq = 0;
    s->m->msg_id = NULL;
    if (s->m->status != EIM_OK) continue;
    s->state = S_NEW;
    eim__new_id(s->mid);
    /* The same message twice in one batch (a quick resend): the second is a
     * retry of the first. */
    for (size_t j = 0; j < i; j++)
      if (sl[j].state == S_NEW && same_message(sl[j].m, s->m)) {
        s->state = S_COPY;
        s->copy_of = j;
        break;
      }
  }

  c = eim__client(st);
  for (size_t i = 0; i < n && rc == EIM_OK; i++)
    if (sl[i].state == S_NEW) rc = append_conv(st, c, sl, n, sl[i].m->conversation_id, a, err);
  for (size_t i = 0; i < n && rc == EIM_OK; i++) {
    slot *s = &sl[i];
    if (s->state == S_DONE && !s->m->duplicate &&
        (s->m->msg_id = eim__dup(st, a, s->mid, strlen(s->mid))) == NULL)
      rc = eim_err_set(err, EIM_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < n && rc == EIM_OK; i++) {
    slot *s = &sl[i];
    if (s->state != S_COPY) continue;
    *s->m = *sl[s->copy_of].m;
    if (s->m->status == EIM_OK) s->m->duplicate = 1;
  }
  eim__release(st, c);
  free(sl);
  return rc;
}
