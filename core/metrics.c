#include "metrics.h"

#include <ctype.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

static atomic_uint_fast64_t msg_in[EIM_M_MSG_IN__COUNT];
static atomic_uint_fast64_t ev_out[EIM_M_EV__COUNT];
static atomic_uint_fast64_t errors[EIM_M_ERR__COUNT];
static atomic_uint_fast64_t acks;
static atomic_uint_fast64_t filter_hits[3];

static const char *const in_names[] = {"conversation.chat", "push", "conversation.read",
                                       "conversation.sync", "user.online", "ping", "other"};
static const char *const ev_names[] = {"conversation.chat", "push", "conversation.read",
                                       "presence", "conversation.created"};
static const char *const verdicts[] = {"pass", "rewrite", "reject"};

/* Histograms with fixed buckets; sums kept in micro-units to stay atomic. */
typedef struct {
  const char *name, *help;
  double bounds[14];
  int nb;
  double scale; /* sum stored as v * scale */
  atomic_uint_fast64_t counts[15];
  atomic_uint_fast64_t sum_scaled;
} hist_t;

static hist_t hists[EIM_H__COUNT] = {
    {"exampleim_store_latency_seconds", "Store call latency",
     {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10}, 14, 1e6, {0}, 0},
    {"exampleim_store_batch_size", "Messages per append batch (group commit)",
     {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192}, 14, 1, {0}, 0},
};

/* Plugin metrics: a small table under a mutex; plugins update rarely. */
typedef struct {
  char name[128];
  char kind;
  double value;
} pmetric;
static pthread_mutex_t pm_lock = PTHREAD_MUTEX_INITIALIZER;
static pmetric *pms;
static size_t npms, cappms;

void eim_metrics_init(void) {}

void eim_metrics_msg_in(eim_metric_in t) { atomic_fetch_add(&msg_in[t], 1); }
void eim_metrics_event_out(eim_metric_event t, uint64_t n) { atomic_fetch_add(&ev_out[t], n); }
void eim_metrics_error(int i) {
  if (i >= 0 && i < EIM_M_ERR__COUNT) atomic_fetch_add(&errors[i], 1);
}
void eim_metrics_ack(void) { atomic_fetch_add(&acks, 1); }
void eim_metrics_filter_hit(const char *v) {
  for (int i = 0; i < 3; i++)
    if (strcmp(v, verdicts[i]) == 0) atomic_fetch_add(&filter_hits[i], 1);
}

void eim_metrics_observe(eim_metric_hist h, double v) {
  hist_t *hi = &hists[h];
  int b = 0;
  while (b < hi->nb && v > hi->bounds[b]) b++;
  atomic_fetch_add(&hi->counts[b], 1);
  atomic_fetch_add(&hi->sum_scaled, (uint64_t)(v * hi->scale));
}

void eim_metrics_plugin(const char *plugin, const char *name, char kind, double v) {
  char full[128];
  int n = snprintf(full, sizeof full, "exampleim_plugin_%s_%s", plugin, name);
  if (n < 0 || (size_t)n >= sizeof full) return;
  for (char *p = full; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '_') *p = '_';
  pthread_mutex_lock(&pm_lock);
  pmetric *m = NULL;
  for (size_t i = 0; i < npms; i++)
    if (strcmp(pms[i].name, full) == 0) m = &pms[i];
  if (m == NULL && npms < 512) {
    if (npms == cappms) {
      size_t cap = cappms ? cappms * 2 : 16;
      pmetric *p = realloc(pms, cap * sizeof *p);
      if (p == NULL) goto out;
      pms = p;
      cappms = cap;
    }
    m = &pms[npms++];
    memset(m, 0, sizeof *m);
    memcpy(m->name, full, (size_t)n + 1);
    m->kind = kind;
  }
  if (m != NULL) {
    /* A histogram from a plugin is exposed as a running sum and count via
     * two gauges; counters add; gauges set. */
    if (kind == 'g') m->value = v;
    else m->value += v;
  }
out:
  pthread_mutex_unlock(&pm_lock);
}

typedef struct {
  char *buf;
  size_t len, cap;
  int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
  if (b->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->oom = 1;
      return;
    }
    if ((size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = (b->cap + (size_t)n) * 2;
    char *p = realloc(b->buf, cap);
    if (p == NULL) {
      b->oom = 1;
      return;
    }
    b->buf = p;
    b->cap = cap;
  }
}

char *eim_metrics_render(const char *extra, size_t *len) {
  sbuf b = {malloc(8192), 0, 8192, 0};
  if (b.buf == NULL) return NULL;
  b.buf[0] = '\0';
  sb_printf(&b, "%s", extra ? extra : "");
  sb_printf(&b, "# HELP exampleim_messages_in_total WebSocket requests received, by type.\n"
                "# TYPE exampleim_messages_in_total counter\n");
  for (int i = 0; i < EIM_M_MSG_IN__COUNT; i++)
    sb_printf(&b, "exampleim_messages_in_total{type=\"%s\"} %llu\n", in_names[i],
              (unsigned long long)atomic_load(&msg_in[i]));
  sb_printf(&b, "# HELP exampleim_events_out_total Events written to connections, by type.\n"
                "# TYPE exampleim_events_out_total counter\n");
  for (int i = 0; i < EIM_M_EV__COUNT; i++)
    sb_printf(&b, "exampleim_events_out_total{type=\"%s\"} %llu\n", ev_names[i],
              (unsigned long long)atomic_load(&ev_out[i]));
  sb_printf(&b, "# HELP exampleim_acks_total Requests answered with an ack.\n"
                "# TYPE exampleim_acks_total counter\nexampleim_acks_total %llu\n",
            (unsigned long long)atomic_load(&acks));
  sb_printf(&b, "# HELP exampleim_errors_total Error replies and responses, by code.\n"
                "# TYPE exampleim_errors_total counter\n");
  for (int i = 0; i < EIM_M_ERR__COUNT; i++)
    sb_printf(&b, "exampleim_errors_total{code=\"%s\"} %llu\n", eim_errcode_name(i),
              (unsigned long long)atomic_load(&errors[i]));
  sb_printf(&b, "# HELP exampleim_filter_verdicts_total Filter verdicts, by kind.\n"
                "# TYPE exampleim_filter_verdicts_total counter\n");
  for (int i = 0; i < 3; i++)
    sb_printf(&b, "exampleim_filter_verdicts_total{verdict=\"%s\"} %llu\n", verdicts[i],
              (unsigned long long)atomic_load(&filter_hits[i]));
  for (int h = 0; h < EIM_H__COUNT; h++) {
    hist_t *hi = &hists[h];
    sb_printf(&b, "# HELP %s %s.\n# TYPE %s histogram\n", hi->name, hi->help, hi->name);
    uint64_t cum = 0;
    for (int i = 0; i <= hi->nb; i++) {
      cum += atomic_load(&hi->counts[i]);
      if (i < hi->nb)
        sb_printf(&b, "%s_bucket{le=\"%g\"} %llu\n", hi->name, hi->bounds[i],
                  (unsigned long long)cum);
      else
        sb_printf(&b, "%s_bucket{le=\"+Inf\"} %llu\n", hi->name, (unsigned long long)cum);
    }
    sb_printf(&b, "%s_sum %g\n%s_count %llu\n", hi->name,
              (double)atomic_load(&hi->sum_scaled) / hi->scale, hi->name,
              (unsigned long long)cum);
  }
  pthread_mutex_lock(&pm_lock);
  for (size_t i = 0; i < npms; i++)
    sb_printf(&b, "# TYPE %s %s\n%s %g\n", pms[i].name, pms[i].kind == 'g' ? "gauge" : "counter",
              pms[i].name, pms[i].value);
  pthread_mutex_unlock(&pm_lock);
  if (b.oom) {
    free(b.buf);
    return NULL;
  }
  *len = b.len;
  return b.buf;
}

void eim_metrics_shutdown(void) {
  pthread_mutex_lock(&pm_lock);
  free(pms);
  pms = NULL;
  npms = cappms = 0;
  pthread_mutex_unlock(&pm_lock);
}
