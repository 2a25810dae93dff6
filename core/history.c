#include "history.h"

#include <string.h>

int eim_history_page(const eim_store_ops *store, void *conn, const char *conversation_id,
                     eim_page_dir dir, uint64_t seq, uint32_t limit, eim_msg_list *out,
                     eim_arena *a, eim_err *err) {
  memset(out, 0, sizeof *out);
  eim_history_q q = {conversation_id, 0, 0, limit};
  if (dir == EIM_PAGE_BEFORE) {
    if (seq <= 1) return EIM_OK; /* nothing comes before seq 1 */
    q.before_seq = seq;
  } else if (dir == EIM_PAGE_AFTER && seq > 0) {
    q.after_seq = seq;
  } else if (dir == EIM_PAGE_AFTER) {
    /* Seqs are gapless from 1, so "the first limit" are the ones below
     * limit + 1; a full page asks once more whether seq limit + 1 exists. */
    q.before_seq = (uint64_t)limit + 1;
    int rc = store->history(conn, &q, out, a, err);
    if (rc != EIM_OK || out->n < limit) {
      out->has_more = 0;
      return rc;
    }
    eim_history_q next = {conversation_id, 0, limit, 1};
    eim_msg_list more;
    rc = store->history(conn, &next, &more, a, err);
    out->has_more = rc == EIM_OK && more.n > 0;
    return rc;
  }
  return store->history(conn, &q, out, a, err);
}
