/* An intrusive circular doubly-linked list: a head eim__link, and a link
 * embedded in each element (EIM__CONTAINER gets the element back). A link
 * that is in no list points at itself, so removing it again is harmless. */
#ifndef EIM_LIST_H
#define EIM_LIST_H

#include <stddef.h>

typedef struct eim__link {
  struct eim__link *prev, *next;
} eim__link;

static inline void eim__list_init(eim__link *h) { h->prev = h->next = h; }
static inline int eim__list_empty(const eim__link *h) { return h->next == h; }
static inline void eim__list_remove(eim__link *l) {
  l->prev->next = l->next;
  l->next->prev = l->prev;
  l->prev = l->next = l;
}
/* Appends l at the tail (just before h). */
static inline void eim__list_push(eim__link *h, eim__link *l) {
  l->prev = h->prev;
  l->next = h;
  h->prev->next = l;
  h->prev = l;
}

#define EIM__CONTAINER(ptr, type, field) ((type *)(void *)((char *)(ptr) - offsetof(type, field)))

#endif
