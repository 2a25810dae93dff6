/* The test host: see harness.h. */
#include "harness.h"

#include <dlfcn.h>
#include <ftw.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct th_call {
  void (*fn)(void *arg);
  void *arg;
  struct th_call *next;
} th_call;

/* The mailbox all nodes post to, and the metric store's lock and wake-up. */
static pthread_mutex_t th_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t th_posted = PTHREAD_COND_INITIALIZER;
static pthread_cond_t th_metric_changed = PTHREAD_COND_INITIALIZER;
static th_call *th_head, *th_tail;

int64_t th_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* pthread_cond_timedwait on the default (realtime) clock. */
static struct timespec deadline_in(int ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (long)(ms % 1000) * 1000000;
  if (ts.tv_nsec >= 1000000000) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000;
  }
  return ts;
}

static void h_log(const eim_host *h, int level, const char *fmt, ...) {
  static const char *names[] = {"error", "warn", "info", "debug"};
  const th_node *n = h->host_ctx;
  char line[1024];
  va_list ap;
  if (level > (getenv("TH_DEBUG") != NULL ? EIM_LOG_DEBUG : EIM_LOG_INFO)) return;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "[%s %s] %s\n", n->name, names[level & 3], line);
}

static const char *h_config_get(const eim_host *h, const char *key) {
  th_node *n = h->host_ctx;
  return strcmp(key, "data_dir") == 0 ? n->data_dir : NULL;
}

static int h_post(const eim_host *h, void (*fn)(void *), void *arg) {
  th_call *c = malloc(sizeof *c);
  if (c == NULL) return EIM_ENOMEM;
  c->fn = fn;
  c->arg = arg;
  c->next = NULL;
  pthread_mutex_lock(&th_lock);
  if (th_tail != NULL) th_tail->next = c;
  else th_head = c;
  th_tail = c;
  pthread_cond_signal(&th_posted);
  pthread_mutex_unlock(&th_lock);
  return EIM_OK;
}

/* Under th_lock. */
static th_metric *metric(th_node *n, const char *name) {
  for (size_t i = 0; i < n->nmetrics; i++)
    if (strcmp(n->metrics[i].name, name) == 0) return &n->metrics[i];
  if (n->nmetrics == TH_METRICS_MAX) return NULL;
  th_metric *m = &n->metrics[n->nmetrics++];
  snprintf(m->name, sizeof m->name, "%.*s", (int)sizeof m->name - 1, name);
  m->value = 0;
  return m;
}

static void metric_update(const eim_host *h, const char *name, double v, int add) {
  th_node *n = h->host_ctx;
  pthread_mutex_lock(&th_lock);
  th_metric *m = metric(n, name);
  if (m != NULL) m->value = add ? m->value + v : v;
  pthread_cond_broadcast(&th_metric_changed);
  pthread_mutex_unlock(&th_lock);
}

static void h_counter_add(const eim_host *h, const char *name, double d) {
  metric_update(h, name, d, 1);
}
static void h_gauge_set(const eim_host *h, const char *name, double v) {
  metric_update(h, name, v, 0);
}
/* Histograms keep their count, which is what the tests look at. */
static void h_observe(const eim_host *h, const char *name, double v) {
  char count[80];
  snprintf(count, sizeof count, "%s_count", name);
  metric_update(h, count, 1, 1);
}

static int64_t h_now_ms(const eim_host *h) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double th_metric_wait(th_node *n, const char *name, double min, int timeout_ms) {
  struct timespec ts = deadline_in(timeout_ms);
  double v = 0;
  pthread_mutex_lock(&th_lock);
  for (;;) {
    th_metric *m = metric(n, name);
    v = m != NULL ? m->value : 0;
    if (v >= min || pthread_cond_timedwait(&th_metric_changed, &th_lock, &ts) != 0) break;
  }
  pthread_mutex_unlock(&th_lock);
  return v;
}

int th_metric_seen(th_node *n, const char *name) {
  int seen = 0;
  pthread_mutex_lock(&th_lock);
  for (size_t i = 0; i < n->nmetrics; i++) seen |= strcmp(n->metrics[i].name, name) == 0;
  pthread_mutex_unlock(&th_lock);
  return seen;
}

static void on_record(void *ctx, int topic, const void *data, size_t len) {
  th_node *n = ctx;
  if (n->nrecs == n->caprecs) {
    size_t cap = n->caprecs ? n->caprecs * 2 : 256;
    th_rec *r = realloc(n->recs, cap * sizeof *r);
    if (r == NULL) abort();
    n->recs = r;
    n->caprecs = cap;
  }
  th_rec *r = &n->recs[n->nrecs++];
  r->topic = topic;
  r->len = len;
  r->data = malloc(len ? len : 1);
  if (r->data == NULL) abort();
  memcpy(r->data, data, len);
  r->at_ns = th_mono_ns();
}

int th_node_open(th_node *n, const char *name, const char *so_path,
                 const char *data_dir) {
  memset(n, 0, sizeof *n);
  snprintf(n->name, sizeof n->name, "%s", name);
  snprintf(n->data_dir, sizeof n->data_dir, "%s", data_dir);
  n->dl = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
  if (n->dl == NULL) {
    fprintf(stderr, "dlopen %s: %s\n", so_path, dlerror());
    return -1;
  }
  eim_plugin_describe_fn describe =
      (eim_plugin_describe_fn)dlsym(n->dl, EIM_PLUGIN_SYMBOL);
  if (describe == NULL || (n->desc = describe()) == NULL ||
      n->desc->abi_major != EIM_ABI_MAJOR || n->desc->size < EIM_PLUGIN_DESC_MIN_SIZE ||
      n->desc->queue == NULL || n->desc->queue->version < EIM_QUEUE_OPS_V1) {
    fprintf(stderr, "%s: not a queue plugin of ABI %d\n", so_path, EIM_ABI_MAJOR);
    dlclose(n->dl);
    n->dl = NULL;
    return -1;
  }
  n->host = (eim_host){
      .size = sizeof(eim_host),
      .abi_major = EIM_ABI_MAJOR,
      .abi_minor = EIM_ABI_MINOR,
      .host_ctx = n,
      .log = h_log,
      .config_get = h_config_get,
      .post = h_post,
      .counter_add = h_counter_add,
      .gauge_set = h_gauge_set,
      .observe = h_observe,
      .now_ms = h_now_ms,
  };
  return 0;
}

int th_node_init(th_node *n, const eim_opt *opts, size_t nopts, eim_err *err) {
  memset(err, 0, sizeof *err);
  return n->desc->init(&n->state, &n->host, opts, nopts, err);
}

int th_node_start(th_node *n, eim_err *err) {
  eim_queue_sink sink = {on_record, n};
  memset(err, 0, sizeof *err);
  return n->desc->queue->start(n->state, &sink, err);
}

const eim_queue_ops *th_ops(const th_node *n) { return n->desc->queue; }

/* Runs everything posted so far, so no record of a finished node is left
 * pointing at it. */
static void drain_now(void) {
  pthread_mutex_lock(&th_lock);
  th_call *c = th_head;
  th_head = th_tail = NULL;
  pthread_mutex_unlock(&th_lock);
  while (c != NULL) {
    th_call *next = c->next;
    c->fn(c->arg);
    free(c);
    c = next;
  }
}

void th_node_fini(th_node *n) {
  if (n->state != NULL) n->desc->fini(n->state);
  n->state = NULL;
  drain_now();
  for (size_t i = 0; i < n->nrecs; i++) free(n->recs[i].data);
  free(n->recs);
  n->recs = NULL;
  n->nrecs = n->caprecs = 0;
}

void th_node_close(th_node *n) {
  th_node_fini(n);
  if (n->dl != NULL) dlclose(n->dl);
  n->dl = NULL;
}

int th_drain_until(int (*pred)(void *ctx), void *ctx, int timeout_ms) {
  struct timespec ts = deadline_in(timeout_ms);
  for (;;) {
    if (pred(ctx)) return 1;
    pthread_mutex_lock(&th_lock);
    int timed_out = 0;
    while (th_head == NULL && !timed_out)
      timed_out = pthread_cond_timedwait(&th_posted, &th_lock, &ts) != 0;
    pthread_mutex_unlock(&th_lock);
    drain_now();
    if (timed_out) return pred(ctx);
  }
}

void th_mkdtemp(char *out, size_t size, const char *tag) {
  const char *tmp = getenv("TMPDIR");
  snprintf(out, size, "%s/eim-kafka-%s-XXXXXX", tmp != NULL ? tmp : "/tmp", tag);
  if (mkdtemp(out) == NULL) {
    perror("mkdtemp");
    exit(1);
  }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f) {
  if (remove(path) != 0) fprintf(stderr, "remove %s: %s\n", path, strerror(errno));
  return 0;
}

void th_rm_rf(const char *dir) {
  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
