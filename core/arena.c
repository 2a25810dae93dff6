#include "arena.h"

#include <stdlib.h>
#include <string.h>

struct eim_arena_chunk {
  struct eim_arena_chunk *next;
  _Alignas(16) unsigned char data[];
};

enum { ARENA_CHUNK = 4096 };

void eim_arena_init(eim_arena *a) { memset(a, 0, sizeof *a); }

void eim_arena_reset(eim_arena *a) {
  struct eim_arena_chunk *c = a->head;
  while (c != NULL) {
    struct eim_arena_chunk *next = c->next;
    free(c);
    c = next;
  }
  eim_arena_init(a);
}

void *eim_arena_alloc(eim_arena *a, size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (n == 0) n = 16;
  if (a->head == NULL || a->cap - a->used < n) {
    size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
    struct eim_arena_chunk *c = malloc(sizeof *c + cap);
    if (c == NULL) return NULL;
    c->next = a->head;
    a->head = c;
    a->used = 0;
    a->cap = cap;
  }
  void *p = a->head->data + a->used;
  a->used += n;
  return p;
}

char *eim_arena_strndup(eim_arena *a, const char *s, size_t n) {
  char *p = eim_arena_alloc(a, n + 1);
  if (p == NULL) return NULL;
  if (n > 0) memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *eim_arena_strdup(eim_arena *a, const char *s) {
  return eim_arena_strndup(a, s, strlen(s));
}
