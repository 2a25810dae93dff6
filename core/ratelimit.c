#include "ratelimit.h"

#include <stdlib.h>

typedef struct {
  double tokens;
  int64_t at; /* when tokens was last brought up to date */
} bucket;

void eim_ratelimit_init(eim_ratelimit *rl, double burst, double per_minute) {
  eim_hmap_init(&rl->buckets);
  rl->burst = burst;
  rl->per_ms = per_minute / 60000.0;
}

void eim_ratelimit_free(eim_ratelimit *rl) {
  bucket *b;
  for (size_t it = 0; eim_hmap_next(&rl->buckets, &it, NULL, (void **)&b);) free(b);
  eim_hmap_free(&rl->buckets);
}

static double refilled(const eim_ratelimit *rl, const bucket *b, int64_t now) {
  double t = b->tokens + (double)(now > b->at ? now - b->at : 0) * rl->per_ms;
  return t > rl->burst ? rl->burst : t;
}

int eim_ratelimit_check(eim_ratelimit *rl, const char *key, int64_t now_ms) {
  bucket *b = eim_hmap_get(&rl->buckets, key);
  return b == NULL || refilled(rl, b, now_ms) >= 1.0;
}

void eim_ratelimit_take(eim_ratelimit *rl, const char *key, int64_t now_ms) {
  bucket *b = eim_hmap_get(&rl->buckets, key);
  if (b == NULL) {
    b = malloc(sizeof *b);
    if (b == NULL) return;
    b->tokens = rl->burst;
    b->at = now_ms;
    if (eim_hmap_put(&rl->buckets, key, b) != 0) {
      free(b);
      return;
    }
  }
  b->tokens = refilled(rl, b, now_ms) - 1.0;
  if (b->tokens < 0) b->tokens = 0;
  b->at = now_ms;
}

void eim_ratelimit_sweep(eim_ratelimit *rl, int64_t now_ms) {
  const char *key;
  bucket *b;
  for (size_t it = 0; eim_hmap_next(&rl->buckets, &it, &key, (void **)&b);)
    if (refilled(rl, b, now_ms) >= rl->burst) free(eim_hmap_del(&rl->buckets, key));
}
