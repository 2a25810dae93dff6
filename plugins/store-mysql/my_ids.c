/* Opaque ids and arena helpers. */
#include <stdio.h>

#include "my_internal.h"

int eim__my_id_parse(const char *id, char kind, unsigned long long *key) {
  unsigned long long v = 0;
  const char *p;

  if (id == NULL || id[0] != kind || id[1] < '1' || id[1] > '9')
    return -1;
  for (p = id + 1; *p != '\0'; p++) {
    if (*p < '0' || *p > '9' || v > (0x7fffffffffffffffULL - 9) / 10)
      return -1;
    v = v * 10 + (unsigned long long)(*p - '0');
  }
  *key = v;
  return 0;
}

const char *eim__my_id_make(eim__my_conn *c, eim_arena *a, char kind,
                            unsigned long long key) {
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%c%llu", kind, key);

  return c->st->host->arena_strndup(a, buf, (size_t)n);
}

void *eim__my_alloc(eim__my_conn *c, eim_arena *a, size_t n) {
  return c->st->host->arena_alloc(a, n);
}
