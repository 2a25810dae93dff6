#include "hmap.h"

#include <stdlib.h>
#include <string.h>

static char tomb_marker;
#define TOMB (&tomb_marker)

/* FNV-1a, then a final mix so that linear probing sees spread-out bits. */
uint64_t eim_hash_str(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

void eim_hmap_init(eim_hmap *m) { memset(m, 0, sizeof *m); }

void eim_hmap_free(eim_hmap *m) {
  for (size_t i = 0; i < m->cap; i++)
    if (m->slots[i].key != NULL && m->slots[i].key != TOMB) free(m->slots[i].key);
  free(m->slots);
  eim_hmap_init(m);
}

static eim_hmap_slot *find(const eim_hmap *m, const char *key, uint64_t h) {
  if (m->cap == 0) return NULL;
  size_t mask = m->cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    eim_hmap_slot *s = &m->slots[i];
    if (s->key == NULL) return NULL;
    if (s->key != TOMB && s->hash == h && strcmp(s->key, key) == 0) return s;
  }
}

static int grow(eim_hmap *m) {
  size_t cap = m->cap ? m->cap : 8;
  if (m->len * 2 >= cap) cap *= 2;
  eim_hmap_slot *slots = calloc(cap, sizeof *slots);
  if (slots == NULL) return -1;
  for (size_t i = 0; i < m->cap; i++) {
    eim_hmap_slot *s = &m->slots[i];
    if (s->key == NULL || s->key == TOMB) continue;
    size_t j = s->hash & (cap - 1);
    while (slots[j].key != NULL) j = (j + 1) & (cap - 1);
    slots[j] = *s;
  }
  free(m->slots);
  m->slots = slots;
  m->cap = cap;
  m->used = m->len;
  return 0;
}

void *eim_hmap_get(const eim_hmap *m, const char *key) {
  eim_hmap_slot *s = find(m, key, eim_hash_str(key));
  return s ? s->value : NULL;
}

int eim_hmap_put(eim_hmap *m, const char *key, void *value) {
  uint64_t h = eim_hash_str(key);
  eim_hmap_slot *s = find(m, key, h);
  if (s != NULL) {
    s->value = value;
    return 0;
  }
  if ((m->used + 1) * 4 > m->cap * 3 && grow(m) != 0) return -1;
  char *k = strdup(key);
  if (k == NULL) return -1;
  size_t mask = m->cap - 1;
  size_t i = h & mask;
  while (m->slots[i].key != NULL && m->slots[i].key != TOMB) i = (i + 1) & mask;
  if (m->slots[i].key == NULL) m->used++;
  m->slots[i].key = k;
  m->slots[i].hash = h;
  m->slots[i].value = value;
  m->len++;
  return 0;
}

void *eim_hmap_del(eim_hmap *m, const char *key) {
  eim_hmap_slot *s = find(m, key, eim_hash_str(key));
  if (s == NULL) return NULL;
  void *v = s->value;
  free(s->key);
  s->key = TOMB;
  s->value = NULL;
  m->len--;
  return v;
}

int eim_hmap_next(const eim_hmap *m, size_t *iter, const char **key, void **value) {
  for (size_t i = *iter; i < m->cap; i++) {
    eim_hmap_slot *s = &m->slots[i];
    if (s->key == NULL || s->key == TOMB) continue;
    *iter = i + 1;
    if (key) *key = s->key;
    if (value) *value = s->value;
    return 1;
  }
  *iter = m->cap;
  return 0;
}
