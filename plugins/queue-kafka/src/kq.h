/* queue-kafka internals: the state shared by the plugin's files.
 *
 * Threads: the host calls publish/health/node_id (from the loop thread or
 * any other); the plugin runs three of its own: the producer poller (serves
 * delivery reports), the consumer (hands records to the host with post) and
 * the prober (keeps the health flag). Everything shared
 * between them is either set before the threads start and then read-only,
 * or atomic. */
#ifndef EIM_QUEUE_KAFKA_KQ_H
#define EIM_QUEUE_KAFKA_KQ_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>

#include "exampleim/plugin.h"

#define KQ_NTOPICS 3
#define KQ_NODE_ID_MAX 64
#define KQ_PREFIX_MAX 100
#define KQ_TOPIC_MAX (KQ_PREFIX_MAX + 16)
#define KQ_MAX_PROPS 64

/* One `kafka.NAME = value` option, passed to librdkafka as NAME=value. */
typedef struct kq_prop {
  const char *name;  /* points into the option's key, after "kafka." */
  const char *value;
  const char *file;
  int line;
} kq_prop;

typedef struct kq_config {
  const char *brokers;
  char prefix[KQ_PREFIX_MAX + 1];
  char node_id[KQ_NODE_ID_MAX + 1];
  int partitions;
  int start_timeout_ms;
  int flush_timeout_ms;
  kq_prop props[KQ_MAX_PROPS];
  size_t nprops;
} kq_config;

/* Reference count: one for the plugin state plus one for each record posted
 * to the host and not yet run, which bounds what waits on the loop. It
 * outlives the plugin state while records are in flight, since the host may
 * run a posted record after fini(). */
typedef struct kq_flow {
  atomic_long refs;
} kq_flow;

typedef struct kq {
  const eim_host *host;
  kq_config cfg;
  char topics[KQ_NTOPICS][KQ_TOPIC_MAX];

  rd_kafka_t *producer;
  rd_kafka_topic_t *ptopics[KQ_NTOPICS];
  rd_kafka_t *consumer;

  eim_queue_sink sink;
  kq_flow *flow;

  pthread_t poller, consumer_thread, prober;
  int poller_started, consumer_started, prober_started;
  atomic_int stop;
  pthread_mutex_t lock;  /* guards the conditions below */
  pthread_cond_t wake;   /* prober sleeps on it; fini signals it */
  pthread_cond_t ready;  /* start() waits on it for the first assignment */
  int topics_assigned[KQ_NTOPICS]; /* under lock: seen in an assignment */

  atomic_int healthy;    /* 1 while the last broker probe succeeded */
  atomic_int last_err;   /* last rd_kafka_resp_err_t logged, to log changes only */
} kq;

/* config.c: parses the options into cfg (node_id left empty when not set).
 * Returns EIM_OK, or EIM_EINVAL naming the option's file and line. */
int kq_config_parse(kq_config *cfg, const eim_opt *opts, size_t nopts,
                    eim_err *err);
/* 1 when s is 1..max of A-Z a-z 0-9 . _ -: what Kafka allows in topic
 * names, and so in the prefix and the node id that names the group. */
int kq_is_name(const char *s, size_t max);
/* Applies cfg's kafka.* properties to conf. EIM_EINVAL names the option. */
int kq_config_apply_props(const kq_config *cfg, rd_kafka_conf_t *conf,
                          eim_err *err);

/* node_id.c: fills cfg->node_id from <data_dir>/node-id, creating the file
 * with a new random id the first time. EIM_EINVAL when the host has no
 * data_dir, EIM_EINTERNAL on I/O errors. */
int kq_node_id_load(kq_config *cfg, const eim_host *host, eim_err *err);

/* producer.c */
int kq_producer_create(kq *q, eim_err *err);
/* Creates the three topics if missing and waits (bounded by timeout_ms)
 * until the broker knows them with a leader for every partition. */
int kq_topics_ensure(kq *q, int timeout_ms, eim_err *err);
int kq_publish(void *state, int topic, const char *key, const void *data,
               size_t len, eim_err *err);
int kq_producer_threads_start(kq *q, eim_err *err);
/* Joins the poller and prober (stop must be set), then flushes the
 * producer for at most flush_timeout_ms and destroys it. */
void kq_producer_close(kq *q);

/* consumer.c */
int kq_consumer_create(kq *q, eim_err *err);
int kq_consumer_thread_start(kq *q, eim_err *err);
/* Joins the consumer thread (stop must be set) and destroys the consumer. */
void kq_consumer_close(kq *q);

/* plugin.c: librdkafka's log and error callbacks, shared by both clients. */
void kq_log_cb(const rd_kafka_t *rk, int level, const char *fac,
               const char *buf);
void kq_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque);
int64_t kq_mono_ms(void);

#endif
