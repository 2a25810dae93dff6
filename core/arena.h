/* Arena: a bump allocator whose memory is released all at once. Store calls
 * return their results in an arena (plugin.h, eim_arena), so neither side
 * frees the other's memory. Not thread-safe: one arena per job. */
#ifndef EIM_ARENA_H
#define EIM_ARENA_H

#include <stddef.h>

#include "exampleim/plugin.h"

struct eim_arena_chunk;
struct eim_arena {
  struct eim_arena_chunk *head;
  size_t used;     /* bytes used in head */
  size_t cap;      /* bytes usable in head */
};

void eim_arena_init(eim_arena *a);
/* Frees every allocation of the arena; the arena can be used again. */
void eim_arena_reset(eim_arena *a);
/* 16-byte aligned, never NULL unless memory is exhausted. */
void *eim_arena_alloc(eim_arena *a, size_t n);
/* Copies n bytes of s and a NUL. */
char *eim_arena_strndup(eim_arena *a, const char *s, size_t n);
char *eim_arena_strdup(eim_arena *a, const char *s);

#endif
