/* The configuration parser (exampleim.conf and plugins.d files) on
 * arbitrary bytes: eim_kvfile_parse_buf, then every parsed pair applied to
 * a fresh eim_config with eim_config_set, the way eim_config_load does.
 * Besides memory errors, it checks the parser's contract: parsed keys are
 * non-empty [A-Za-z0-9_.-]+ and unique, values are trimmed single lines,
 * line numbers grow, a failure names the source and leaves nothing behind,
 * and a string setting reads back as written. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "kvfile.h"

#define REQUIRE(cond)                                                          \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: broken contract: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                 \
    }                                                                          \
  } while (0)

static const char path[] = "fuzz.conf";

static int key_char(unsigned char c) { return isalnum(c) || c == '_' || c == '.' || c == '-'; }

static void check_pair(const eim_kvfile *f, size_t i) {
  const eim_kv *kv = &f->items[i];
  size_t kl = strlen(kv->key), vl = strlen(kv->value);
  REQUIRE(kl > 0);
  for (size_t j = 0; j < kl; j++) REQUIRE(key_char((unsigned char)kv->key[j]));
  REQUIRE(strchr(kv->value, '\n') == NULL);
  REQUIRE(vl == 0 || (!isspace((unsigned char)kv->value[0]) &&
                      !isspace((unsigned char)kv->value[vl - 1])));
  REQUIRE(i == 0 || kv->line > f->items[i - 1].line);
  REQUIRE(eim_kvfile_get(f, kv->key) == kv);
}

static void apply(const eim_kvfile *f) {
  eim_config cfg;
  eim_config_init(&cfg);
  for (size_t i = 0; i < f->n; i++) {
    const eim_kv *kv = &f->items[i];
    char why[256] = "";
    if (eim_config_set(&cfg, kv->key, kv->value, why, sizeof why) != 0) {
      REQUIRE(why[0] != '\0');
      continue;
    }
    const char *got = eim_config_get(&cfg, kv->key);
    /* Strings read back as set; numbers come from the file, which a fresh
     * config does not have. */
    if (got != NULL) REQUIRE(strcmp(got, kv->value) == 0);
    char host[256];
    int port = -1;
    if (strcmp(kv->key, "listen") == 0 && eim_split_host_port(kv->value, host, sizeof host, &port) == 0)
      REQUIRE(port >= 0 && port <= 65535 && host[0] != '\0');
    int b = eim_parse_bool(kv->value);
    REQUIRE(b >= -1 && b <= 1);
  }
  eim_config_free(&cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  eim_kvfile f;
  char err[512] = "";
  if (eim_kvfile_parse_buf(path, (const char *)data, size, &f, err, sizeof err) != 0) {
    REQUIRE(strncmp(err, path, sizeof path - 1) == 0);
    REQUIRE(f.n == 0 && f.items == NULL && f.path == NULL);
    return 0;
  }
  REQUIRE(f.path != NULL && strcmp(f.path, path) == 0);
  for (size_t i = 0; i < f.n; i++) check_pair(&f, i);
  apply(&f);
  eim_kvfile_free(&f);
  return 0;
}
