/* The loop's mailbox: any thread posts a callback, the loop thread runs it.
 * One uv_async_t and a mutex-protected list drained whole on each wake-up
 * (async sends coalesce), in posting order. Store worker results and queue
 * plugins' records come back to the loop this way. */
#ifndef EIM_MAILBOX_H
#define EIM_MAILBOX_H

#include <uv.h>

typedef struct eim_mail {
  struct eim_mail *next;
  void (*fn)(void *arg);
  void *arg;
} eim_mail;

int eim_mailbox_init(uv_loop_t *loop);
/* Thread-safe. Returns 0 or -1 when out of memory or closed. */
int eim_mailbox_post(void (*fn)(void *arg), void *arg);
/* Like post, with a caller-owned node (no allocation); node must stay valid
 * until fn runs. */
void eim_mailbox_post_node(eim_mail *node);
/* Posts the chain first..last (linked by next, last->next is ignored) in one
 * go: one lock and at most one wake-up of the loop for the whole chain. */
void eim_mailbox_post_chain(eim_mail *first, eim_mail *last);
/* Runs what is pending, then closes the handle. Posts after this fail. */
void eim_mailbox_close(void);

#endif
