/* store-mongo: history, one range query on (c, seq). */
#include "mongo.h"

#include <string.h>

int eim__history(void *conn, const eim_history_q *q, eim_msg_list *out, eim_arena *a,
                 eim_err *err) {
  eim__mongo *st = ((eim__conn *)conn)->st;
  mongoc_client_t *c = NULL;
  mongoc_collection_t *msgs = NULL;
  mongoc_cursor_t *cur = NULL;
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, range, sort;
  const bson_t *doc;
  bson_error_t e;
  uint32_t limit = q->limit < 1 ? 1 : q->limit > 200 ? 200 : q->limit;
  int ascending = q->after_seq > 0;
  size_t got = 0;
  int rc = EIM_OK;

  out->items = NULL;
  out->n = 0;
  out->has_more = 0;
  if (!eim__valid_id(q->conversation_id)) goto cleanup;
  if ((out->items = st->host->arena_alloc(a, limit * sizeof *out->items)) == NULL) {
    rc = eim_err_set(err, EIM_ENOMEM, "out of memory");
    goto cleanup;
  }
  BSON_APPEND_UTF8(&filter, "c", q->conversation_id);
  BSON_APPEND_DOCUMENT_BEGIN(&filter, "seq", &range);
  BSON_APPEND_INT64(&range, "$gt", ascending ? (int64_t)q->after_seq : 0);
  if (!ascending && q->before_seq > 0) BSON_APPEND_INT64(&range, "$lt", (int64_t)q->before_seq);
  bson_append_document_end(&filter, &range);
  BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
  BSON_APPEND_INT32(&sort, "seq", ascending ? 1 : -1);
  bson_append_document_end(&opts, &sort);
  /* One more than asked tells whether more exist in the paging direction. */
  BSON_APPEND_INT64(&opts, "limit", (int64_t)limit + 1);

  c = eim__client(st);
  msgs = eim__coll(st, c, EIM__C_MSGS);
  cur = mongoc_collection_find_with_opts(msgs, &filter, &opts, NULL);
  while (mongoc_cursor_next(cur, &doc)) {
    if (got == limit) {
      out->has_more = 1;
      break;
    }
    memset(&out->items[got], 0, sizeof out->items[got]);
    if ((rc = eim__read_msg(st, doc, &out->items[got], a)) != EIM_OK) {
      eim_err_set(err, rc, "history: %s", rc == EIM_ENOMEM ? "out of memory" : "malformed message");
      goto cleanup;
    }
    got++;
  }
  if (mongoc_cursor_error(cur, &e)) {
    rc = eim__mongo_error(st, &e, "history", err);
    goto cleanup;
  }
  if (!ascending)
    for (size_t i = 0; i < got / 2; i++) {
      eim_msg t = out->items[i];
      out->items[i] = out->items[got - 1 - i];
      out->items[got - 1 - i] = t;
    }
  out->n = got;

cleanup:
  if (rc != EIM_OK) {
    out->n = 0;
    out->has_more = 0;
  }
  mongoc_cursor_destroy(cur);
  mongoc_collection_destroy(msgs);
  eim__release(st, c);
  bson_destroy(&filter);
  bson_destroy(&opts);
  return rc;
}
