#include "harness.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int th_failures;

typedef struct block {
  struct block *next;
  max_align_t data[];
} block;

struct eim_arena {
  block *head;
};

eim_arena *th_arena_new(void) { return calloc(1, sizeof(eim_arena)); }

void th_arena_free(eim_arena *a) {
  if (a == NULL) return;
  for (block *b = a->head, *next; b != NULL; b = next) {
    next = b->next;
    free(b);
  }
  free(a);
}

static void *arena_alloc(eim_arena *a, size_t n) {
  block *b = malloc(sizeof *b + n);
  if (b == NULL) return NULL;
  b->next = a->head;
  a->head = b;
  return b->data;
}

static char *arena_strndup(eim_arena *a, const char *s, size_t n) {
  char *p = arena_alloc(a, n + 1);
  if (p == NULL) return NULL;
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

static void host_log(const eim_host *h, int level, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "[store-mongo %d] ", level);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

static const char *config_get(const eim_host *h, const char *key) { return NULL; }
static int post(const eim_host *h, void (*fn)(void *), void *arg) { return EIM_EINVAL; }
static void counter_add(const eim_host *h, const char *name, double d) {}
static void gauge_set(const eim_host *h, const char *name, double v) {}
static void observe(const eim_host *h, const char *name, double v) {}

int64_t th_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(const eim_host *h) { return th_now_ms(); }

const eim_host th_host = {
    .size = sizeof(eim_host),
    .abi_major = EIM_ABI_MAJOR,
    .abi_minor = EIM_ABI_MINOR,
    .log = host_log,
    .config_get = config_get,
    .post = post,
    .counter_add = counter_add,
    .gauge_set = gauge_set,
    .observe = observe,
    .arena_alloc = arena_alloc,
    .arena_strndup = arena_strndup,
    .now_ms = now_ms,
};

int th_load(th_plugin *p, const char *path, const char *const *kv, eim_err *err) {
  eim_opt opts[16];
  size_t n = 0;
  eim_plugin_describe_fn describe;
  int rc;

  memset(p, 0, sizeof *p);
  if ((p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL)
    return eim_err_set(err, EIM_EINVAL, "dlopen: %s", dlerror());
  *(void **)&describe = dlsym(p->dl, EIM_PLUGIN_SYMBOL);
  if (describe == NULL || (p->desc = describe()) == NULL || p->desc->store == NULL) {
    dlclose(p->dl);
    return eim_err_set(err, EIM_EINVAL, "%s is not a store plugin", path);
  }
  p->ops = p->desc->store;
  for (; kv != NULL && kv[2 * n] != NULL && n < 16; n++) {
    opts[n].key = kv[2 * n];
    opts[n].value = kv[2 * n + 1];
    opts[n].file = "test.conf";
    opts[n].line = (int)n + 1;
  }
  rc = p->desc->init(&p->state, &th_host, opts, n, err);
  if (rc != EIM_OK) {
    dlclose(p->dl);
    p->dl = NULL;
  }
  return rc;
}

void th_unload(th_plugin *p) {
  if (p->dl == NULL) return;
  p->desc->fini(p->state);
  dlclose(p->dl);
  p->dl = NULL;
}

const char *th_env(const char *name) {
  const char *v = getenv(name);
  if (v == NULL || v[0] == '\0') {
    fprintf(stderr, "FAIL: %s is not set (start the service: tests/services/up ferretdb)\n",
            name);
    exit(1);
  }
  return v;
}

void th_unique(char *buf, size_t size, const char *prefix) {
  static unsigned counter;
  snprintf(buf, size, "%s%lx%x%u", prefix, (unsigned long)th_now_ms(), (unsigned)getpid(),
           counter++);
}

const char *th_database(void) {
  char name[64];

  if (getenv("STORE_MONGO_TEST_DB") == NULL) {
    th_unique(name, sizeof name, "exampleim_t");
    setenv("STORE_MONGO_TEST_DB", name, 1);
  }
  return getenv("STORE_MONGO_TEST_DB");
}

int th_drop_database(const char *dropdb) {
  char cmd[1024];

  snprintf(cmd, sizeof cmd, "'%s' \"$MONGO_URI\" '%s'", dropdb, th_database());
  return system(cmd);
}
