#include <stdint.h>

#include "arena.h"
#include "check.h"

int main(void) {
  eim_arena a;
  eim_arena_init(&a);
  char *s = eim_arena_strdup(&a, "hello");
  CHECK_STR(s, "hello");
  void *big = eim_arena_alloc(&a, 100000);
  CHECK(big != NULL && ((uintptr_t)big & 15) == 0);
  memset(big, 1, 100000);
  for (int i = 0; i < 10000; i++) {
    char *p = eim_arena_alloc(&a, (size_t)(i % 97));
    CHECK(p != NULL && ((uintptr_t)p & 15) == 0);
  }
  char *n = eim_arena_strndup(&a, "a\0b", 3);
  CHECK(n[0] == 'a' && n[1] == '\0' && n[2] == 'b' && n[3] == '\0');
  CHECK_STR(s, "hello");
  eim_arena_reset(&a);
  CHECK(a.head == NULL);
  CHECK_STR(eim_arena_strdup(&a, "again"), "again");
  eim_arena_reset(&a);
  return check_done("arena");
}
