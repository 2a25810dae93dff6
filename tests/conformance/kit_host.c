/*
 * The kit's host table: what a server gives a plugin, minus the server. The
 * arena poisons fresh memory so a plugin that expects zeroed results shows
 * up; post() queues work for the main thread, which runs it between checks.
 */
#include "kit.h"

#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KIT_BLOCK (64 * 1024)

typedef struct kit_block {
  struct kit_block *next;
  size_t used, cap;
  alignas(max_align_t) unsigned char data[];
} kit_block;

struct eim_arena {
  kit_block *head;
};

typedef struct kit_post {
  struct kit_post *next;
  void (*fn)(void *arg);
  void *arg;
} kit_post;

typedef struct kit_ctx {
  char name[64];
  char data_dir[64];
  pthread_mutex_t lock;
  kit_post *posts, **tail;
} kit_ctx;

eim_arena *kit_arena_new(void) {
  return calloc(1, sizeof(eim_arena));
}

void kit_arena_free(eim_arena *a) {
  kit_block *b, *next;

  if (a == NULL)
    return;
  for (b = a->head; b != NULL; b = next) {
    next = b->next;
    free(b);
  }
  free(a);
}

static void *kit_arena_alloc(eim_arena *a, size_t n) {
  const size_t align = alignof(max_align_t);
  size_t need = (n + align - 1) / align * align;
  kit_block *b = a->head;
  void *p;

  if (need == 0)
    need = align;
  if (b == NULL || b->cap - b->used < need) {
    size_t cap = need > KIT_BLOCK ? need : KIT_BLOCK;
    b = malloc(sizeof *b + cap);
    if (b == NULL)
      return NULL;
    b->used = 0;
    b->cap = cap;
    b->next = a->head;
    a->head = b;
  }
  p = b->data + b->used;
  b->used += need;
  memset(p, 0xa5, n);
  return p;
}

static char *kit_arena_strndup(eim_arena *a, const char *s, size_t n) {
  char *p = kit_arena_alloc(a, n + 1);

  if (p == NULL)
    return NULL;
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

static void kit_log(const eim_host *h, int level, const char *fmt, ...) {
  static const char *const names[] = {"error", "warn", "info", "debug"};
  const kit_ctx *ctx = h->host_ctx;
  char line[1024];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "log: %s %s: %s\n", ctx->name,
          level >= 0 && level <= 3 ? names[level] : "?", line);
}

static const char *kit_config_get(const eim_host *h, const char *key) {
  kit_ctx *ctx = h->host_ctx;

  return strcmp(key, "data_dir") == 0 ? ctx->data_dir : NULL;
}

static int kit_post_fn(const eim_host *h, void (*fn)(void *arg), void *arg) {
  kit_ctx *ctx = h->host_ctx;
  kit_post *p = malloc(sizeof *p);

  if (p == NULL)
    return EIM_ENOMEM;
  p->next = NULL;
  p->fn = fn;
  p->arg = arg;
  pthread_mutex_lock(&ctx->lock);
  *ctx->tail = p;
  ctx->tail = &p->next;
  pthread_mutex_unlock(&ctx->lock);
  return EIM_OK;
}

/* Runs what plugins posted so far, on the calling (main) thread. */
void kit_host_drain(const eim_host *h) {
  kit_ctx *ctx = h->host_ctx;
  kit_post *p, *next;

  pthread_mutex_lock(&ctx->lock);
  p = ctx->posts;
  ctx->posts = NULL;
  ctx->tail = &ctx->posts;
  pthread_mutex_unlock(&ctx->lock);
  for (; p != NULL; p = next) {
    next = p->next;
    p->fn(p->arg);
    free(p);
  }
}

static void kit_metric(const eim_host *h, const char *name, double v) {}

static int64_t kit_now_ms(const eim_host *h) {
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Fills h for a plugin called plugin_name and creates its data directory.
 * Returns 0, or -1 with errno set. */
int kit_host_open(eim_host *h, const char *plugin_name) {
  kit_ctx *ctx = calloc(1, sizeof *ctx);

  if (ctx == NULL)
    return -1;
  snprintf(ctx->name, sizeof ctx->name, "%s", plugin_name);
  snprintf(ctx->data_dir, sizeof ctx->data_dir, "/tmp/exampleim-kit-XXXXXX");
  if (mkdtemp(ctx->data_dir) == NULL) {
    free(ctx);
    return -1;
  }
  pthread_mutex_init(&ctx->lock, NULL);
  ctx->tail = &ctx->posts;
  memset(h, 0, sizeof *h);
  h->size = sizeof *h;
  h->abi_major = EIM_ABI_MAJOR;
  h->abi_minor = EIM_ABI_MINOR;
  h->host_ctx = ctx;
  h->log = kit_log;
  h->config_get = kit_config_get;
  h->post = kit_post_fn;
  h->counter_add = kit_metric;
  h->gauge_set = kit_metric;
  h->observe = kit_metric;
  h->arena_alloc = kit_arena_alloc;
  h->arena_strndup = kit_arena_strndup;
  h->now_ms = kit_now_ms;
  return 0;
}

static int kit_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  return remove(path);
}

/* Runs what is still posted, then removes the data directory. */
void kit_host_close(eim_host *h) {
  kit_ctx *ctx = h->host_ctx;

  if (ctx == NULL)
    return;
  kit_host_drain(h);
  nftw(ctx->data_dir, kit_rm, 16, FTW_DEPTH | FTW_PHYS);
  pthread_mutex_destroy(&ctx->lock);
  free(ctx);
  h->host_ctx = NULL;
}
