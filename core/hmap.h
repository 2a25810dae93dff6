/* A string-keyed hash map with open addressing (linear probing, tombstones),
 * owning copies of its keys. Values are opaque pointers owned by the caller.
 * Loop thread only. */
#ifndef EIM_HMAP_H
#define EIM_HMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct eim_hmap_slot {
  char *key;          /* NULL: empty; EIM_HMAP_TOMB: deleted */
  uint64_t hash;
  void *value;
} eim_hmap_slot;

typedef struct eim_hmap {
  eim_hmap_slot *slots;
  size_t cap;         /* power of two, or 0 */
  size_t len;         /* live keys */
  size_t used;        /* live + tombstones */
} eim_hmap;

void eim_hmap_init(eim_hmap *m);
/* Frees the map and its keys, not the values. */
void eim_hmap_free(eim_hmap *m);
void *eim_hmap_get(const eim_hmap *m, const char *key);
/* Inserts or replaces. Returns 0, or -1 when out of memory. */
int eim_hmap_put(eim_hmap *m, const char *key, void *value);
/* Removes key; returns its value or NULL. */
void *eim_hmap_del(eim_hmap *m, const char *key);

/* Iteration: for (size_t i = 0; eim_hmap_next(m, &i, &k, &v);) ...
 * Deleting the current key while iterating is allowed. */
int eim_hmap_next(const eim_hmap *m, size_t *iter, const char **key, void **value);

uint64_t eim_hash_str(const char *s);

#endif
