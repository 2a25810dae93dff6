/* A minimal host for queue plugin tests: each "node" is one plugin instance
 * with its own host table, data directory and record log. host->post puts
 * the call on one mailbox that the test thread drains, standing in for the
 * server's loop thread. */
#ifndef EIM_QUEUE_KAFKA_HARNESS_H
#define EIM_QUEUE_KAFKA_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "exampleim/plugin.h"

#define TH_METRICS_MAX 32

typedef struct th_rec {
  int topic;
  unsigned char *data;
  size_t len;
  int64_t at_ns;     /* monotonic time on_record ran */
} th_rec;

typedef struct th_metric {
  char name[64];
  double value;
} th_metric;

typedef struct th_node {
  eim_host host;
  char name[16];
  char data_dir[256];
  void *dl;
  const eim_plugin_desc *desc;
  void *state;
  /* Filled on the test thread by on_record. */
  th_rec *recs;
  size_t nrecs, caprecs;
  /* Filled from the plugin's threads; read with th_metric_get. */
  th_metric metrics[TH_METRICS_MAX];
  size_t nmetrics;
} th_node;

/* Creates a node: dlopen()s the plugin at so_path, checks its descriptor and
 * sets up the host table with data_dir. Does not call init. Returns 0, or
 * -1 after printing why. */
int th_node_open(th_node *n, const char *name, const char *so_path,
                 const char *data_dir);
/* init() with opts; returns its code and fills err. */
int th_node_init(th_node *n, const eim_opt *opts, size_t nopts, eim_err *err);
/* start() with a sink that appends to n->recs. */
int th_node_start(th_node *n, eim_err *err);
/* fini() if initialised, then forgets the records. */
void th_node_fini(th_node *n);
void th_node_close(th_node *n);
const eim_queue_ops *th_ops(const th_node *n);

/* Runs posted calls on this thread until pred(ctx) holds or timeout_ms
 * passes; returns 1 if it holds. */
int th_drain_until(int (*pred)(void *ctx), void *ctx, int timeout_ms);
/* Waits (without draining the mailbox) until the metric reaches at least
 * min or timeout_ms passes; returns its value then. */
double th_metric_wait(th_node *n, const char *name, double min, int timeout_ms);
/* 1 once the plugin has set or added to the metric. */
int th_metric_seen(th_node *n, const char *name);

int64_t th_mono_ns(void);
/* A fresh directory under $TMPDIR (or /tmp); the caller frees nothing. */
void th_mkdtemp(char *out, size_t size, const char *tag);
void th_rm_rf(const char *dir);

#endif
