/* The plugin through its ABI: dlopen, a small host table (arena, log,
 * config_get), options, inspect in both modes, reload.
 * Usage: filter-sensitive-unit-test PATH/filter-sensitive.so PATH/words.txt */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exampleim/plugin.h"

static int failures;

#define CHECK(c)                                                        \
  do {                                                                  \
    if (!(c)) {                                                         \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
      failures++;                                                       \
    }                                                                   \
  } while (0)

/* ---- test host ---- */

struct eim_arena {
  void *blocks[64];
  size_t n;
};

static void *arena_alloc(eim_arena *a, size_t n) {
  void *p;
  if (a->n == 64 || (p = malloc(n ? n : 1)) == NULL)
    return NULL;
  a->blocks[a->n++] = p;
  return p;
}

static char *arena_strndup(eim_arena *a, const char *s, size_t n) {
  char *p = arena_alloc(a, n + 1);
  if (p != NULL) {
    memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

static void arena_reset(eim_arena *a) {
  while (a->n > 0)
    free(a->blocks[--a->n]);
}

static char last_log[1024];

static void host_log(const eim_host *h, int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_log, sizeof last_log, fmt, ap);
  va_end(ap);
  (void)h;
  (void)level;
}

static const char *config_get(const eim_host *h, const char *key) {
  (void)h;
  (void)key;
  return NULL;
}

static const eim_host host = {
    .size = sizeof(eim_host),
    .abi_major = EIM_ABI_MAJOR,
    .abi_minor = EIM_ABI_MINOR,
    .log = host_log,
    .config_get = config_get,
    .arena_alloc = arena_alloc,
    .arena_strndup = arena_strndup,
};

/* ---- helpers ---- */

static const eim_plugin_desc *desc;
static char dir[64], confdir[128], conf[160];

static void write_bytes(const char *name, const char *text, size_t len) {
  char path[256];
  FILE *f;
  snprintf(path, sizeof path, "%s/%s", confdir, name);
  f = fopen(path, "wb");
  if (f == NULL || fwrite(text, 1, len, f) != len || fclose(f) != 0) {
    perror(path);
    exit(1);
  }
}

static void write_file(const char *name, const char *text) {
  write_bytes(name, text, strlen(text));
}

/* Initialises an instance from "key=value" strings, all on lines of conf
 * numbered from 2. Returns the init result; *state is NULL on failure. */
static int start(void **state, eim_err *err, const char *const *kv, size_t n) {
  eim_opt opts[8];
  char keys[8][64];
  size_t i;
  for (i = 0; i < n; i++) {
    const char *eq = strchr(kv[i], '=');
    size_t kl = (size_t)(eq - kv[i]);
    memcpy(keys[i], kv[i], kl);
    keys[i][kl] = '\0';
    opts[i].key = keys[i];
    opts[i].value = eq + 1;
    opts[i].file = conf;
    opts[i].line = (int)i + 2;
  }
  memset(err, 0, sizeof *err);
  return desc->init(state, &host, opts, n, err);
}

static eim_arena arena;

/* Runs inspect on text with the given limit; returns the verdict and
 * leaves the result in *r (content valid until the next call). */
static eim_filter_verdict inspect_n(void *st, const char *type, const char *text,
                                    size_t len, size_t max_len, eim_filter_result *r) {
  eim_filter_msg m = {"c1", "u1", type, text, len, max_len};
  eim_err err = {0, ""};
  arena_reset(&arena);
  memset(r, 0x5A, sizeof *r);
  if (desc->filter->inspect(st, &m, r, &arena, &err) != EIM_OK) {
    fprintf(stderr, "inspect failed: %s\n", err.msg);
    failures++;
    r->verdict = EIM_FILTER_PASS;
  }
  return r->verdict;
}

static eim_filter_verdict inspect(void *st, const char *text, eim_filter_result *r) {
  return inspect_n(st, "text", text, strlen(text), 8192, r);
}

/* Checks that text is rewritten to want (or passes unchanged when want is
 * NULL). */
static void expect(void *st, const char *text, const char *want, int line) {
  eim_filter_result r;
  eim_filter_verdict v = inspect(st, text, &r);
  if (want == NULL) {
    if (v != EIM_FILTER_PASS) {
      fprintf(stderr, "line %d: \"%s\" should pass, got verdict %d\n", line, text, v);
      failures++;
    }
    return;
  }
  if (v != EIM_FILTER_REWRITE || r.content_len != strlen(want) ||
      memcmp(r.content, want, r.content_len) != 0 || r.content[r.content_len] != '\0') {
    fprintf(stderr, "line %d: \"%s\" should become \"%s\", got verdict %d \"%.*s\"\n", line,
            text, want, v, v == EIM_FILTER_REWRITE ? (int)r.content_len : 0,
            v == EIM_FILTER_REWRITE ? r.content : "");
    failures++;
  }
}
#define EXPECT(st, text, want) expect(st, text, want, __LINE__)

/* ---- tests ---- */

static void test_descriptor(void) {
  CHECK(desc->size >= EIM_PLUGIN_DESC_MIN_SIZE);
  CHECK(desc->abi_major == EIM_ABI_MAJOR);
  CHECK(strcmp(desc->name, "filter-sensitive") == 0);
  CHECK(desc->filter != NULL && desc->filter->version == EIM_FILTER_OPS_V1);
  CHECK(desc->filter->inspect != NULL && desc->filter->reload != NULL);
  CHECK(desc->auth == NULL && desc->store == NULL && desc->queue == NULL);
}

static void test_mask_mode(void) {
  static const char *const kv[] = {"words_file=words.txt"};
  void *st;
  eim_err err;
  eim_filter_result r;
  char big[8192 + 1];

  CHECK(start(&st, &err, kv, 1) == EIM_OK);
  if (st == NULL) {
    fprintf(stderr, "init: %s\n", err.msg);
    return;
  }
  CHECK(strstr(last_log, ": 2 terms") != NULL);
  EXPECT(st, "a BaDwOrD here", "a ******* here");
  EXPECT(st, "这是敏感词", "这是***");
  EXPECT(st, "ｂａｄｗｏｒｄ", "*******");
  EXPECT(st, "b.a d-w o r d", NULL);
  EXPECT(st, "敏 感 词", NULL);
  EXPECT(st, "hello", NULL);
  EXPECT(st, "", NULL);
  EXPECT(st, "b", NULL);
  CHECK(inspect_n(st, "text", NULL, 0, 8192, &r) == EIM_FILTER_PASS);
  /* Only text is filtered. */
  CHECK(inspect_n(st, "image", "badword", 7, 8192, &r) == EIM_FILTER_PASS);
  CHECK(inspect_n(st, "text", "badword", 7, 8192, &r) == EIM_FILTER_REWRITE);

  /* 8 KiB at the limit: masked in place, same length. */
  memset(big, 'y', 8192);
  memcpy(big + 100, "BADWORD", 7);
  memcpy(big + 8192 - 9, "敏感词", 9);
  big[8192] = '\0';
  CHECK(inspect_n(st, "text", big, 8192, 8192, &r) == EIM_FILTER_REWRITE);
  CHECK(r.content_len == 8192 - 6);
  CHECK(memcmp(r.content + 100, "*******y", 8) == 0);
  CHECK(memcmp(r.content + 8192 - 9, "***", 3) == 0);
  CHECK(memcmp(r.content, big, 100) == 0);
  desc->fini(st);
}

static void test_skip_and_mask_char(void) {
  static const char *const kv[] = {"words_file=words.txt", "skip_separators=true",
                                   "mask_char=●", "mode=mask"};
  void *st;
  eim_err err;
  eim_filter_result r;
  char seps[8192];
  size_t i;

  CHECK(start(&st, &err, kv, 4) == EIM_OK);
  if (st == NULL) {
    fprintf(stderr, "init: %s\n", err.msg);
    return;
  }
  EXPECT(st, "b.a d-w o r d", "●●●●●●●●●●●●●");
  EXPECT(st, "敏 感 词", "●●●●●");
  EXPECT(st, "say 敏\xE2\x80\x8B感\xE2\x80\x8D词!", "say ●●●●●!");
  EXPECT(st, "bad-word-less", "●●●●●●●●-less");
  /* ASCII into a 3-byte mask grows the text: 7 bytes become 21. */
  CHECK(inspect_n(st, "text", "badword", 7, 21, &r) == EIM_FILTER_REWRITE && r.content_len == 21);
  CHECK(inspect_n(st, "text", "badword", 7, 20, &r) == EIM_FILTER_REJECT);
  CHECK(strstr(r.reason, "blocked term") != NULL && strstr(r.reason, "length") != NULL);
  /* 8 KiB of separators passes. */
  for (i = 0; i < sizeof seps; i++)
    seps[i] = " ,.-!?"[i % 6];
  CHECK(inspect_n(st, "text", seps, sizeof seps, 8192, &r) == EIM_FILTER_PASS);
  desc->fini(st);
}

static void test_reject_mode(void) {
  static const char *const kv[] = {"mode=reject", "words_file=words.txt"};
  void *st;
  eim_err err;
  eim_filter_result r;

  CHECK(start(&st, &err, kv, 2) == EIM_OK);
  if (st == NULL)
    return;
  CHECK(inspect(st, "a BaDwOrD here", &r) == EIM_FILTER_REJECT);
  CHECK(strcmp(r.reason, "message contains a blocked term") == 0);
  CHECK(inspect(st, "这是敏感词", &r) == EIM_FILTER_REJECT);
  CHECK(inspect(st, "all fine", &r) == EIM_FILTER_PASS);
  desc->fini(st);
}

/* Each bad configuration fails init with EIM_EINVAL and a message holding
 * every fragment given. */
static void bad_config(const char *const *kv, size_t n, const char *frag1, const char *frag2,
                       int line) {
  void *st = (void *)1;
  eim_err err;
  int rc = start(&st, &err, kv, n);
  if (rc != EIM_EINVAL || st != NULL || strstr(err.msg, frag1) == NULL ||
      (frag2 && strstr(err.msg, frag2) == NULL)) {
    fprintf(stderr, "line %d: want EINVAL with \"%s\", got %d \"%s\"\n", line, frag1, rc,
            err.msg);
    failures++;
    if (rc == EIM_OK)
      desc->fini(st);
  }
}
#define BAD(kv, frag1, frag2) bad_config(kv, sizeof kv / sizeof kv[0], frag1, frag2, __LINE__)

static void test_bad_config(void) {
  static const char *const unknown[] = {"words_file=words.txt", "colour=blue"};
  static const char *const mode[] = {"words_file=words.txt", "mode=shout"};
  static const char *const two[] = {"words_file=words.txt", "mask_char=**"};
  static const char *const none[] = {"words_file=words.txt", "mask_char="};
  static const char *const ctl[] = {"words_file=words.txt", "mask_char=\t"};
  static const char *const skip[] = {"words_file=words.txt", "skip_separators=yes"};
  static const char *const dup[] = {"words_file=words.txt", "mode=mask", "mode=reject"};
  static const char *const nowords[] = {"mode=mask"};
  static const char *const emptyname[] = {"words_file="};
  static const char *const missing[] = {"words_file=no-such-file.txt"};
  static const char *const empty[] = {"words_file=empty.txt"};
  static const char *const broken[] = {"words_file=broken.txt"};
  static const char *const longterm[] = {"words_file=long.txt"};
  char path[300];

  BAD(unknown, "50-filter.conf:3:", "colour");
  BAD(mode, "50-filter.conf:3:", "shout");
  BAD(two, "50-filter.conf:3:", "mask_char");
  BAD(none, "50-filter.conf:3:", "mask_char");
  BAD(ctl, "50-filter.conf:3:", "mask_char");
  BAD(skip, "50-filter.conf:3:", "skip_separators");
  BAD(dup, "50-filter.conf:4:", "duplicate");
  BAD(nowords, "50-filter.conf", "words_file is required");
  BAD(emptyname, "50-filter.conf:2:", "empty");
  snprintf(path, sizeof path, "%s/no-such-file.txt", confdir);
  BAD(missing, path, "No such file");
  write_file("empty.txt", "# nothing\n\n   \n");
  BAD(empty, "empty.txt", "no terms");
  write_file("broken.txt", "fine\n# comment\nbad\xFF\n");
  BAD(broken, "broken.txt:3:", "UTF-8");
  {
    char text[300];
    int i;
    for (i = 0; i < 65; i++)
      text[i] = 'x';
    memcpy(text + 65, "\n", 2);
    write_file("long.txt", text);
  }
  BAD(longterm, "long.txt:1:", "longer");
}

static void test_reload(void) {
  static const char *const kv[] = {"words_file=live.txt"};
  void *st;
  eim_err err;
  char path[300];

  write_file("live.txt", "\xEF\xBB\xBF# first list\r\nbadword\r\n");
  CHECK(start(&st, &err, kv, 1) == EIM_OK);
  if (st == NULL) {
    fprintf(stderr, "init: %s\n", err.msg);
    return;
  }
  EXPECT(st, "badword newterm", "******* newterm");

  write_file("live.txt", "  newterm  \n\n");
  CHECK(desc->filter->reload(st, &err) == EIM_OK);
  EXPECT(st, "badword newterm", "badword *******");

  /* A broken list is refused and the old one stays. */
  write_file("live.txt", "other\n\xC3\x28\n");
  memset(&err, 0, sizeof err);
  CHECK(desc->filter->reload(st, &err) == EIM_EINVAL);
  CHECK(strstr(err.msg, "live.txt:2:") != NULL);
  CHECK(strstr(last_log, "keeping the old one") != NULL);
  EXPECT(st, "other newterm", "other *******");

  /* So is a list that disappeared. */
  snprintf(path, sizeof path, "%s/live.txt", confdir);
  CHECK(unlink(path) == 0);
  memset(&err, 0, sizeof err);
  CHECK(desc->filter->reload(st, &err) == EIM_EINVAL);
  CHECK(strstr(err.msg, "live.txt") != NULL && strstr(err.msg, "No such file") != NULL);
  EXPECT(st, "other newterm", "other *******");
  CHECK(desc->filter->reload(st, NULL) == EIM_EINVAL);
  desc->fini(st);
}

static void test_many_terms(void) {
  static const char *const kv[] = {"words_file=many.txt", "skip_separators=true"};
  static const char *const cjk[] = {"敏", "感", "词", "禁", "语", "违", "规", "字"};
  size_t cap = 10000 * 40, len = 0;
  char *text = malloc(cap);
  unsigned x = 7;
  void *st;
  eim_err err;
  eim_filter_result r;
  int i;

  len += (size_t)snprintf(text, cap, "# 10,000 generated terms\n");
  for (i = 0; i < 10000; i++) {
    x = x * 1103515245u + 12345u;
    len += (size_t)snprintf(text + len, cap - len, "%s%s%c%c%05d\n", cjk[x >> 29],
                            cjk[(x >> 26) & 7], 'a' + (x >> 16) % 26, 'a' + (x >> 8) % 26, i);
  }
  write_bytes("many.txt", text, len);
  free(text);
  CHECK(start(&st, &err, kv, 2) == EIM_OK);
  if (st == NULL) {
    fprintf(stderr, "init: %s\n", err.msg);
    return;
  }
  CHECK(strstr(last_log, ": 10000 terms") != NULL);
  CHECK(inspect(st, "nothing here 00042", &r) == EIM_FILTER_PASS);
  /* The first generated term, whatever it is, is masked when spread out. */
  {
    char term[64], spread[128];
    const char *p;
    size_t o = 0;
    x = 7 * 1103515245u + 12345u;
    snprintf(term, sizeof term, "%s%s%c%c%05d", cjk[x >> 29], cjk[(x >> 26) & 7],
             'A' + (x >> 16) % 26, 'a' + (x >> 8) % 26, 0);
    for (p = term; *p; p++) {
      spread[o++] = *p;
      if (((unsigned char)p[1] & 0xC0) != 0x80 && p[1] != '\0')
        spread[o++] = '.';
    }
    spread[o] = '\0';
    CHECK(inspect(st, spread, &r) == EIM_FILTER_REWRITE);
    CHECK(r.content_len == 9 + 8 && strspn(r.content, "*") == r.content_len);
  }
  desc->fini(st);
}

/* The shipped list, by absolute path, from options that name no file. */
static void test_shipped_list(const char *words) {
  eim_opt opt = {"words_file", words, NULL, 0};
  void *st;
  eim_err err;
  CHECK(desc->init(&st, &host, &opt, 1, &err) == EIM_OK);
  if (st == NULL) {
    fprintf(stderr, "init: %s\n", err.msg);
    return;
  }
  EXPECT(st, "a badword and 敏感词", "a ******* and ***");
  desc->fini(st);
}

int main(int argc, char **argv) {
  void *so;
  eim_plugin_describe_fn describe;

  if (argc != 3) {
    fprintf(stderr, "usage: %s PLUGIN.so WORDS.txt\n", argv[0]);
    return 2;
  }
  so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (so == NULL) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 1;
  }
  describe = (eim_plugin_describe_fn)dlsym(so, EIM_PLUGIN_SYMBOL);
  if (describe == NULL) {
    fprintf(stderr, "dlsym: %s\n", dlerror());
    return 1;
  }
  desc = describe();

  snprintf(dir, sizeof dir, "/tmp/eim-filter-test-XXXXXX");
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  snprintf(confdir, sizeof confdir, "%s/plugins.d", dir);
  snprintf(conf, sizeof conf, "%s/50-filter.conf", confdir);
  if (mkdir(confdir, 0700) != 0) {
    perror(confdir);
    return 1;
  }
  write_file("words.txt", "# test list\nbadword\n\n敏感词\n");

  test_descriptor();
  test_mask_mode();
  test_skip_and_mask_char();
  test_reject_mode();
  test_bad_config();
  test_reload();
  test_many_terms();
  test_shipped_list(argv[2]);

  arena_reset(&arena);
  {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
      failures++;
  }
  dlclose(so);
  if (failures)
    fprintf(stderr, "%d check(s) failed\n", failures);
  else
    printf("filter-sensitive plugin: all checks passed\n");
  return failures ? 1 : 0;
}
