/* store-mongo: where a conversation's seqs stand.
 *
 * A message's _id is "conversation#seq", so inserting it is what takes the
 * seq, atomically (README.md, "How seq is assigned"). Appends only ever
 * insert seq s+1 where s exists, so the seqs of a conversation are exactly
 * 1..max: "s exists" is true up to max and false after it, and max is found
 * from any lower bound by galloping and bisecting with look-ups by _id. On
 * MongoDB any query here is an index hit; FerretDB v1 pushes only equality
 * filters down to its backend and would sort a whole conversation in memory
 * to answer "the highest seq", which look-ups by _id avoid. */
#include "mongo.h"

void eim__msg_key(char *out, size_t size, const char *conv, uint64_t seq) {
  snprintf(out, size, "%s#%llu", conv, (unsigned long long)seq);
}

/* 1 if message seq of conv exists, 0 if not, or a negative error. With doc
 * non-NULL a found message is copied there (the caller destroys it). */
int eim__seq_exists(eim__mongo *st, mongoc_collection_t *msgs, const char *conv,
                    uint64_t seq, bson_t *doc, eim_err *err) {
  char key[EIM__MSG_KEY_MAX];
  bson_t tmp;
  int rc;

  eim__msg_key(key, sizeof key, conv, seq);
  rc = eim__find_id(st, msgs, key, doc != NULL ? doc : &tmp, "message lookup", err);
  if (rc == EIM_ENOTFOUND) return 0;
  if (rc != EIM_OK) return rc;
  if (doc == NULL) bson_destroy(&tmp);
  return 1;
}

/* Sets *max to the highest seq of conv, given a lower bound (a seq known to
 * exist, or 0). EIM_OK or the error of a look-up. */
int eim__max_seq(eim__mongo *st, mongoc_collection_t *msgs, const char *conv,
                 uint64_t lower, uint64_t *max, eim_err *err) {
  uint64_t lo = lower, hi, step = 1;
  int found;

  for (;;) {
    if ((found = eim__seq_exists(st, msgs, conv, lo + step, NULL, err)) < 0) return found;
    if (!found) break;
    lo += step;
    step *= 2;
  }
  hi = lo + step;
  while (hi - lo > 1) {
    uint64_t mid = lo + (hi - lo) / 2;
    if ((found = eim__seq_exists(st, msgs, conv, mid, NULL, err)) < 0) return found;
    if (found) lo = mid;
    else hi = mid;
  }
  *max = lo;
  return EIM_OK;
}

/* The conversation's max_seq from its document's hint (a lower bound, see
 * append.c) and, with last non-NULL and *max > 0, its last message copied
 * into *last (the caller destroys it). */
int eim__last_msg(eim__mongo *st, mongoc_collection_t *msgs, const bson_t *conv_doc,
                  uint64_t *max, bson_t *last, eim_err *err) {
  const char *conv = eim__get_str(conv_doc, "_id", NULL);
  int rc, found;

  if (conv == NULL) return eim_err_set(err, EIM_EINTERNAL, "conversation without _id");
  rc = eim__max_seq(st, msgs, conv, (uint64_t)eim__get_i64(conv_doc, "max_seq"), max, err);
  if (rc != EIM_OK || last == NULL || *max == 0) return rc;
  found = eim__seq_exists(st, msgs, conv, *max, last, err);
  if (found < 0) return found;
  return found ? EIM_OK : eim_err_set(err, EIM_EINTERNAL, "last message of %s vanished", conv);
}
