/* History pages in the protocol's three directions, over the store's
 * eim_history_q (where after_seq = 0 means "the latest page", so the first
 * page after seq 0 is asked for differently). Runs on a store worker. */
#ifndef EIM_HISTORY_H
#define EIM_HISTORY_H

#include <stdint.h>

#include "exampleim/plugin.h"

typedef enum { EIM_PAGE_LATEST, EIM_PAGE_AFTER, EIM_PAGE_BEFORE } eim_page_dir;

/* Fills out with up to `limit` messages in ascending seq: the latest
 * (LATEST), the first with seq > seq (AFTER) or the last with seq < seq
 * (BEFORE); has_more says whether more exist in that direction. */
int eim_history_page(const eim_store_ops *store, void *conn, const char *conversation_id,
                     eim_page_dir dir, uint64_t seq, uint32_t limit, eim_msg_list *out,
                     eim_arena *a, eim_err *err);

#endif
