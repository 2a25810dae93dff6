/* queue-kafka: the eim_queue_ops v1 of ExampleIM over Apache Kafka
 * (librdkafka). Records of the three topics are produced keyed, idempotent
 * and acks=all; every node consumes everything in a group of its own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kq.h"

int64_t kq_mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* librdkafka logs with syslog levels from its own threads; host->log is
 * thread-safe. */
void kq_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  kq *q = rd_kafka_opaque(rk);
  int l = level <= 4 ? EIM_LOG_WARN : level <= 6 ? EIM_LOG_INFO : EIM_LOG_DEBUG;
  /* Broker connection failures reach kq_error_cb, which logs each change
   * once; failed commits repeat every few seconds during an outage that
   * health() already reports; kafka.* keys go to both clients and each
   * warns about the other's. */
  if (strcmp(fac, "FAIL") == 0 || strcmp(fac, "COMMITFAIL") == 0 ||
      (strcmp(fac, "CONFWARN") == 0 && strstr(buf, "will be ignored by this") != NULL))
    l = EIM_LOG_DEBUG;
  q->host->log(q->host, l, "librdkafka %s: %s", fac, buf);
}

/* Errors that are not about one record. Most are transient (librdkafka
 * reconnects by itself), so only a change of error is logged above debug. */
void kq_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
  kq *q = opaque;
  int fatal = err == RD_KAFKA_RESP_ERR__FATAL;
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || fatal) atomic_store(&q->healthy, 0);
  if (fatal || atomic_exchange(&q->last_err, err) != err)
    q->host->log(q->host, fatal ? EIM_LOG_ERROR : EIM_LOG_WARN, "kafka %s: %s",
                 rd_kafka_name(rk), reason);
  else
    q->host->log(q->host, EIM_LOG_DEBUG, "kafka %s: %s", rd_kafka_name(rk), reason);
}

static void kq_fini(void *state) {
  kq *q = state;
  if (q == NULL) return;
  pthread_mutex_lock(&q->lock);
  atomic_store(&q->stop, 1);
  pthread_cond_broadcast(&q->wake);
  pthread_mutex_unlock(&q->lock);
  /* The consumer first: it may post records that reference the flow. */
  int64_t t0 = kq_mono_ms();
  kq_consumer_close(q);
  int64_t t1 = kq_mono_ms();
  kq_producer_close(q);
  q->host->log(q->host, EIM_LOG_INFO, "closed: consumer in %lld ms, producer in %lld ms",
               (long long)(t1 - t0), (long long)(kq_mono_ms() - t1));
  if (atomic_fetch_sub(&q->flow->refs, 1) == 1) free(q->flow);
  pthread_cond_destroy(&q->ready);
  pthread_cond_destroy(&q->wake);
  pthread_mutex_destroy(&q->lock);
  free(q);
}

static int kq_init(void **state, const eim_host *host, const eim_opt *opts,
                   size_t nopts, eim_err *err) {
  static const char *const suffix[KQ_NTOPICS] = {"chat", "ephemeral", "presence"};
  pthread_condattr_t ca;
  kq *q;
  int rc;

  *state = NULL;
  if (host == NULL || host->size < sizeof(eim_host))
    return eim_err_set(err, EIM_EINVAL, "host API table too old for queue-kafka");
  q = calloc(1, sizeof *q);
  if (q == NULL) return eim_err_set(err, EIM_ENOMEM, "out of memory");
  q->flow = calloc(1, sizeof *q->flow);
  if (q->flow == NULL) {
    free(q);
    return eim_err_set(err, EIM_ENOMEM, "out of memory");
  }
  atomic_init(&q->flow->refs, 1);
  q->host = host;
  pthread_mutex_init(&q->lock, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&q->wake, &ca);
  pthread_cond_init(&q->ready, &ca);
  pthread_condattr_destroy(&ca);

  if ((rc = kq_config_parse(&q->cfg, opts, nopts, err)) != 0) goto fail;
  if (q->cfg.node_id[0] == '\0' && (rc = kq_node_id_load(&q->cfg, host, err)) != 0)
    goto fail;
  for (int t = 0; t < KQ_NTOPICS; t++)
    snprintf(q->topics[t], sizeof q->topics[t], "%s.%s", q->cfg.prefix, suffix[t]);
  if ((rc = kq_producer_create(q, err)) != 0 ||
      (rc = kq_consumer_create(q, err)) != 0 ||
      (rc = kq_producer_threads_start(q, err)) != 0)
    goto fail;
  host->log(host, EIM_LOG_INFO, "node %s, brokers %s, topics %s.*", q->cfg.node_id,
            q->cfg.brokers, q->cfg.prefix);
  *state = q;
  return EIM_OK;

fail:
  kq_fini(q);
  return rc;
}

/* Under q->lock. */
static int all_assigned(const kq *q) {
  for (int t = 0; t < KQ_NTOPICS; t++)
    if (!q->topics_assigned[t]) return 0;
  return 1;
}

/* Creates the topics if needed, joins this node's group and returns once
 * every topic is assigned, so records published after it returns reach the
 * sink. Bounded by start_timeout_ms: EIM_EUNAVAIL when the brokers do not
 * answer in time. */
static int kq_start(void *state, const eim_queue_sink *sink, eim_err *err) {
  kq *q = state;
  int64_t deadline = kq_mono_ms() + q->cfg.start_timeout_ms;
  struct timespec ts;
  int rc, ready;

  if (sink == NULL || sink->on_record == NULL)
    return eim_err_set(err, EIM_EINVAL, "no sink");
  if (q->consumer_started)
    return eim_err_set(err, EIM_EINVAL, "queue-kafka already started");
  q->sink = *sink;
  if ((rc = kq_topics_ensure(q, q->cfg.start_timeout_ms, err)) != 0) return rc;
  atomic_store(&q->healthy, 1);
  if ((rc = kq_consumer_thread_start(q, err)) != 0) return rc;

  ts.tv_sec = deadline / 1000;
  ts.tv_nsec = (long)(deadline % 1000) * 1000000;
  pthread_mutex_lock(&q->lock);
  while (!all_assigned(q))
    if (pthread_cond_timedwait(&q->ready, &q->lock, &ts) != 0) break;
  ready = all_assigned(q);
  pthread_mutex_unlock(&q->lock);
  if (!ready)
    return eim_err_set(err, EIM_EUNAVAIL,
                       "consumer group not joined within start_timeout_ms=%d (brokers %s)",
                       q->cfg.start_timeout_ms, q->cfg.brokers);
  return EIM_OK;
}

static int kq_health(void *state, eim_err *err) {
  kq *q = state;
  if (atomic_load(&q->healthy)) return EIM_OK;
  return eim_err_set(err, EIM_EUNAVAIL, "kafka brokers %s unreachable", q->cfg.brokers);
}

static const char *kq_node_id(void *state) {
  return ((kq *)state)->cfg.node_id;
}

static const eim_queue_ops kq_ops = {
    .version = EIM_QUEUE_OPS_V1,
    .start = kq_start,
    .publish = kq_publish,
    .health = kq_health,
    .node_id = kq_node_id,
};

EIM_PLUGIN_DEFINE("queue-kafka", "1.0.0", kq_init, kq_fini, .queue = &kq_ops)
