#include "mailbox.h"

#include <pthread.h>
#include <stdlib.h>

static uv_async_t wake;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static eim_mail *head, *tail;
static int open_;

/* Mail posted without a node gets one of these; its callback frees it. */
typedef struct {
  eim_mail node;
  void (*fn)(void *arg);
  void *arg;
} owned_mail;

static void run_owned(void *p) {
  owned_mail *m = p;
  void (*fn)(void *) = m->fn;
  void *arg = m->arg;
  free(m);
  fn(arg);
}

static void drain(uv_async_t *h) {
  (void)h;
  pthread_mutex_lock(&lock);
  eim_mail *m = head;
  head = tail = NULL;
  pthread_mutex_unlock(&lock);
  while (m != NULL) {
    eim_mail *next = m->next;
    m->fn(m->arg);
    m = next;
  }
}

int eim_mailbox_init(uv_loop_t *loop) {
  int rc = uv_async_init(loop, &wake, drain);
  if (rc == 0) open_ = 1;
  return rc;
}

void eim_mailbox_post_chain(eim_mail *first, eim_mail *last) {
  last->next = NULL;
  pthread_mutex_lock(&lock);
  /* Only the first post since the last drain wakes the loop: the others
   * find mail already waiting, and the drain takes theirs too. */
  int was_empty = head == NULL;
  if (tail) tail->next = first;
  else head = first;
  tail = last;
  int live = open_;
  pthread_mutex_unlock(&lock);
  if (live && was_empty) uv_async_send(&wake);
}

void eim_mailbox_post_node(eim_mail *node) { eim_mailbox_post_chain(node, node); }

int eim_mailbox_post(void (*fn)(void *arg), void *arg) {
  pthread_mutex_lock(&lock);
  int live = open_;
  pthread_mutex_unlock(&lock);
  if (!live) return -1;
  owned_mail *m = malloc(sizeof *m);
  if (m == NULL) return -1;
  m->fn = fn;
  m->arg = arg;
  m->node.fn = run_owned;
  m->node.arg = m;
  eim_mailbox_post_node(&m->node);
  return 0;
}

void eim_mailbox_close(void) {
  drain(&wake);
  pthread_mutex_lock(&lock);
  open_ = 0;
  pthread_mutex_unlock(&lock);
  uv_close((uv_handle_t *)&wake, NULL);
}
