#include <stdint.h>
#include <stdio.h>

#include "check.h"
#include "hmap.h"

int main(void) {
  eim_hmap m;
  eim_hmap_init(&m);
  CHECK(eim_hmap_get(&m, "a") == NULL);
  char keys[5000][16];
  for (int i = 0; i < 5000; i++) {
    snprintf(keys[i], sizeof keys[i], "k%d", i);
    CHECK(eim_hmap_put(&m, keys[i], (void *)(intptr_t)(i + 1)) == 0);
  }
  CHECK(m.len == 5000);
  int ok = 1;
  for (int i = 0; i < 5000; i++) ok &= eim_hmap_get(&m, keys[i]) == (void *)(intptr_t)(i + 1);
  CHECK(ok);
  for (int i = 0; i < 5000; i += 2) CHECK(eim_hmap_del(&m, keys[i]) == (void *)(intptr_t)(i + 1));
  CHECK(m.len == 2500);
  CHECK(eim_hmap_get(&m, "k0") == NULL && eim_hmap_get(&m, "k1") == (void *)2);
  /* Reinsert over tombstones, replace a value. */
  for (int i = 0; i < 5000; i += 2) CHECK(eim_hmap_put(&m, keys[i], (void *)1) == 0);
  CHECK(eim_hmap_put(&m, "k1", (void *)7) == 0 && eim_hmap_get(&m, "k1") == (void *)7);
  CHECK(m.len == 5000);
  size_t it = 0, n = 0;
  const char *k;
  void *v;
  while (eim_hmap_next(&m, &it, &k, &v)) {
    n++;
    eim_hmap_del(&m, k); /* deleting the current key while iterating */
  }
  CHECK(n == 5000 && m.len == 0);
  CHECK(eim_hmap_del(&m, "missing") == NULL);
  eim_hmap_free(&m);
  return check_done("hmap");
}
