/* The test host of th.h. */
#include "th.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int th_failures;

typedef struct th_block {
  struct th_block *next;
  max_align_t data[];
} th_block;

struct eim_arena {
  th_block *head;
};

eim_arena *th_arena_new(void) {
  eim_arena *a = calloc(1, sizeof *a);

  if (a == NULL)
    abort();
  return a;
}

void th_arena_free(eim_arena *a) {
  th_block *b, *next;

  if (a == NULL)
    return;
  for (b = a->head; b != NULL; b = next) {
    next = b->next;
    free(b);
  }
  free(a);
}

static void *arena_alloc(eim_arena *a, size_t n) {
  th_block *b = malloc(sizeof *b + n + 1);

  if (b == NULL)
    return NULL;
  b->next = a->head;
  a->head = b;
  return b->data;
}

static char *arena_strndup(eim_arena *a, const char *s, size_t n) {
  char *p = arena_alloc(a, n + 1);

  if (p != NULL) {
    memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

static void host_log(const eim_host *h, int level, const char *fmt, ...) {
  va_list ap;

  (void)h;
  if (level > EIM_LOG_INFO)
    return;
  va_start(ap, fmt);
  fputs("[store-mysql] ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static const char *host_config_get(const eim_host *h, const char *key) {
  (void)h;
  (void)key;
  return NULL;
}

static int host_post(const eim_host *h, void (*fn)(void *), void *arg) {
  (void)h;
  (void)fn;
  (void)arg;
  return EIM_EINTERNAL;
}

static void host_metric(const eim_host *h, const char *name, double v) {
  (void)h;
  (void)name;
  (void)v;
}

int64_t th_now(void) {
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t host_now(const eim_host *h) {
  (void)h;
  return th_now();
}

const eim_host th_host = {
    .size = sizeof(eim_host),
    .abi_major = EIM_ABI_MAJOR,
    .abi_minor = EIM_ABI_MINOR,
    .log = host_log,
    .config_get = host_config_get,
    .post = host_post,
    .counter_add = host_metric,
    .gauge_set = host_metric,
    .observe = host_metric,
    .arena_alloc = arena_alloc,
    .arena_strndup = arena_strndup,
    .now_ms = host_now,
};

void th_load(th_plugin *p, const char *path) {
  eim_plugin_describe_fn describe;

  p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (p->dl == NULL) {
    fprintf(stderr, "FAIL: dlopen %s: %s\n", path, dlerror());
    exit(1);
  }
  describe = (eim_plugin_describe_fn)(uintptr_t)dlsym(p->dl, EIM_PLUGIN_SYMBOL);
  if (describe == NULL || (p->desc = describe()) == NULL || p->desc->store == NULL ||
      p->desc->abi_major != EIM_ABI_MAJOR) {
    fprintf(stderr, "FAIL: %s is not a store plugin of ABI %d\n", path, EIM_ABI_MAJOR);
    exit(1);
  }
  p->ops = p->desc->store;
}

size_t th_opts(eim_opt *opts, size_t max, const char *const *extra) {
  static const char *const keys[][2] = {
      {"host", "MYSQL_HOST"},     {"port", "MYSQL_PORT"},
      {"user", "MYSQL_USER"},     {"password", "MYSQL_PASSWORD"},
      {"database", "MYSQL_DATABASE"}};
  size_t n = 0, i;
  const char *v;

  for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    v = getenv(keys[i][1]);
    if (v == NULL) {
      fprintf(stderr, "FAIL: %s is not set; start the database with "
                      "`eval \"$(tests/services/up mariadb)\"` and export MYSQL_*\n",
              keys[i][1]);
      exit(1);
    }
    opts[n] = (eim_opt){.key = keys[i][0], .value = v, .file = "test.conf",
                        .line = (int)n + 1};
    n++;
  }
  for (i = 0; extra != NULL && extra[i] != NULL && n < max; i += 2) {
    opts[n] = (eim_opt){.key = extra[i], .value = extra[i + 1], .file = "test.conf",
                        .line = (int)n + 1};
    n++;
  }
  return n;
}

void *th_open(th_plugin *p, void **state, const char *const *extra) {
  eim_opt opts[16];
  size_t n = th_opts(opts, 16, extra);
  eim_err err = {0};
  void *conn = NULL;
  int rc;

  rc = p->desc->init(state, &th_host, opts, n, &err);
  if (rc == EIM_OK)
    rc = p->ops->conn_open(*state, &conn, &err);
  if (rc != EIM_OK) {
    fprintf(stderr, "FAIL: opening the store: %d %s\n", rc, err.msg);
    exit(1);
  }
  return conn;
}

const char *th_unique(eim_arena *a, const char *tag) {
  static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  static unsigned counter;
  char buf[96];
  unsigned k;
  int n;

  pthread_mutex_lock(&lock);
  k = ++counter;
  pthread_mutex_unlock(&lock);
  n = snprintf(buf, sizeof buf, "%s_%lld_%d_%u", tag, (long long)th_now() % 100000000,
               (int)getpid(), k);
  return arena_strndup(a, buf, (size_t)n);
}
