/* The consumer side: each node reads every record of the three topics in
 * its own consumer group and hands them to the loop thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kq.h"

#define KQ_LAG_INTERVAL_MS 5000
#define KQ_WATERMARK_TIMEOUT_MS 5000
#define KQ_CLOSE_TIMEOUT_MS 5000
/* Records posted to the loop and not yet run; beyond this the consumer
 * thread waits, so a stalled loop cannot make it buffer without bound. */
#define KQ_MAX_PENDING 20000

/* One consumed record on its way to the loop thread. It holds a copy of the
 * sink, not the plugin state, so it stays valid if run after fini. */
typedef struct kq_record {
  eim_queue_sink sink;
  kq_flow *flow;
  int topic;
  size_t len;
  unsigned char data[];
} kq_record;

static void flow_unref(kq_flow *f) {
  if (atomic_fetch_sub(&f->refs, 1) == 1) free(f);
}

static int topic_index(const kq *q, const char *name) {
  for (int t = 0; t < KQ_NTOPICS; t++)
    if (strcmp(q->topics[t], name) == 0) return t;
  return -1;
}

/* Runs on the loop thread. */
static void run_record(void *arg) {
  kq_record *r = arg;
  r->sink.on_record(r->sink.ctx, r->topic, r->data, r->len);
  flow_unref(r->flow);
  free(r);
}

/* The partition's current end offset into *hi. A partition just created
 * answers "not leader" for a moment, so errors are retried until
 * KQ_WATERMARK_TIMEOUT_MS has passed. */
static rd_kafka_resp_err_t end_offset(kq *q, rd_kafka_t *rk,
                                      const rd_kafka_topic_partition_t *p, int64_t *hi) {
  int64_t deadline = kq_mono_ms() + KQ_WATERMARK_TIMEOUT_MS, lo, left;
  rd_kafka_resp_err_t e;
  for (;;) {
    left = deadline - kq_mono_ms();
    e = rd_kafka_query_watermark_offsets(rk, p->topic, p->partition, &lo, hi,
                                         left > 0 ? (int)left : 1);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR || left <= 0 || atomic_load(&q->stop)) return e;
    nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
  }
}

/* A node consumes "from now on": the first time a topic is assigned, each
 * of its partitions starts at the current end, fixed here and committed
 * rather than left to auto.offset.reset, so start() can promise that
 * whatever is published after it returns is seen, and a restarted node does
 * not replay what it missed. Later assignments (after a rejoin) resume from
 * the committed offsets, so a rebalance or an outage loses nothing. */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
  kq *q = opaque;
  int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  int first[KQ_NTOPICS], nfirst = 0;
  rd_kafka_topic_partition_list_t *start = NULL;

  if (err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    q->host->log(q->host, EIM_LOG_INFO, "consumer: %d partitions revoked", parts->cnt);
    if (cooperative) rd_kafka_error_destroy(rd_kafka_incremental_unassign(rk, parts));
    else rd_kafka_assign(rk, NULL);
    return;
  }
  pthread_mutex_lock(&q->lock);
  for (int t = 0; t < KQ_NTOPICS; t++) first[t] = !q->topics_assigned[t];
  pthread_mutex_unlock(&q->lock);

  start = rd_kafka_topic_partition_list_new(parts->cnt);
  for (int i = 0; i < parts->cnt; i++) {
    rd_kafka_topic_partition_t *p = &parts->elems[i];
    int t = topic_index(q, p->topic);
    int64_t hi;
    if (t < 0 || !first[t]) continue;
    nfirst++;
    rd_kafka_resp_err_t e = end_offset(q, rk, p, &hi);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
      p->offset = hi;
      rd_kafka_topic_partition_list_add(start, p->topic, p->partition)->offset = hi;
    } else {
      q->host->log(q->host, EIM_LOG_WARN, "consumer: end of %s [%d] unknown (%s); "
                   "starting at the latest offset when fetched",
                   p->topic, p->partition, rd_kafka_err2str(e));
      p->offset = RD_KAFKA_OFFSET_END;
    }
  }
  if (cooperative) rd_kafka_error_destroy(rd_kafka_incremental_assign(rk, parts));
  else rd_kafka_assign(rk, parts);
  if (start->cnt > 0) {
    rd_kafka_resp_err_t e = rd_kafka_commit(rk, start, 0);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
      q->host->log(q->host, EIM_LOG_WARN, "consumer: committing start offsets: %s",
                   rd_kafka_err2str(e));
  }
  rd_kafka_topic_partition_list_destroy(start);
  q->host->log(q->host, EIM_LOG_INFO, "consumer: %d partitions assigned (%d from the end)",
               parts->cnt, nfirst);

  pthread_mutex_lock(&q->lock);
  for (int i = 0; i < parts->cnt; i++) {
    int t = topic_index(q, parts->elems[i].topic);
    if (t >= 0) q->topics_assigned[t] = 1;
  }
  pthread_cond_broadcast(&q->ready);
  pthread_mutex_unlock(&q->lock);
}

int kq_consumer_create(kq *q, eim_err *err) {
  char why[512], group[KQ_PREFIX_MAX + KQ_NODE_ID_MAX + 16];
  char client_id[KQ_NODE_ID_MAX + 32];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  int rc = EIM_OK;

  snprintf(group, sizeof group, "%s-node-%s", q->cfg.prefix, q->cfg.node_id);
  snprintf(client_id, sizeof client_id, "exampleim-%s", q->cfg.node_id);
  const char *kv[][2] = {
      {"bootstrap.servers", q->cfg.brokers},
      {"client.id", client_id},
      {"group.id", group},
      {"auto.offset.reset", "latest"},
      /* The group has one member, so a short session costs nothing, and
       * librdkafka holds destroy() for up to a session while the
       * coordinator is unreachable: this bounds fini() during an outage. */
      {"session.timeout.ms", "10000"},
      {"enable.partition.eof", "false"},
      {"reconnect.backoff.max.ms", "2000"},
      {"log.connection.close", "false"},
  };
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
    if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], why, sizeof why) != RD_KAFKA_CONF_OK) {
      rc = eim_err_set(err, EIM_EINTERNAL, "librdkafka %s: %s", kv[i][0], why);
      goto fail;
    }
  }
  if ((rc = kq_config_apply_props(&q->cfg, conf, err)) != 0) goto fail;
  rd_kafka_conf_set_opaque(conf, q);
  rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
  rd_kafka_conf_set_log_cb(conf, kq_log_cb);
  rd_kafka_conf_set_error_cb(conf, kq_error_cb);

  q->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
  if (q->consumer == NULL) {
    rc = eim_err_set(err, EIM_EINVAL, "kafka consumer: %s", why);
    goto fail;
  }
  /* One queue: consumer_poll also serves the log, error and rebalance
   * callbacks. */
  rd_kafka_poll_set_consumer(q->consumer);
  return EIM_OK;

fail:
  rd_kafka_conf_destroy(conf);
  return rc;
}

static void deliver(kq *q, const rd_kafka_message_t *m) {
  int t = topic_index(q, rd_kafka_topic_name(m->rkt));
  kq_record *r;

  if (t < 0) return;
  while (atomic_load(&q->flow->refs) > KQ_MAX_PENDING && !atomic_load(&q->stop))
    nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
  r = malloc(sizeof *r + m->len);
  if (r == NULL) goto dropped;
  r->sink = q->sink;
  r->flow = q->flow;
  r->topic = t;
  r->len = m->len;
  if (m->len > 0) memcpy(r->data, m->payload, m->len);
  atomic_fetch_add(&q->flow->refs, 1);
  if (q->host->post(q->host, run_record, r) != EIM_OK) {
    atomic_fetch_sub(&q->flow->refs, 1);
    free(r);
    goto dropped;
  }
  q->host->counter_add(q->host, "kafka_consumed_total", 1);
  return;

dropped:
  q->host->counter_add(q->host, "kafka_consume_dropped_total", 1);
}

/* Sum over the assigned partitions of (end offset - position), from what
 * the fetcher already knows: no broker round trip. */
static void report_lag(kq *q) {
  rd_kafka_topic_partition_list_t *parts = NULL;
  int64_t lag = 0;

  if (rd_kafka_assignment(q->consumer, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  rd_kafka_position(q->consumer, parts);
  for (int i = 0; i < parts->cnt; i++) {
    const rd_kafka_topic_partition_t *p = &parts->elems[i];
    int64_t lo, hi;
    if (p->offset < 0 ||
        rd_kafka_get_watermark_offsets(q->consumer, p->topic, p->partition, &lo, &hi) != 0 ||
        hi < p->offset)
      continue;
    lag += hi - p->offset;
  }
  rd_kafka_topic_partition_list_destroy(parts);
  q->host->gauge_set(q->host, "kafka_consumer_lag", (double)lag);
}

/* Leaves the group cleanly (final offset commit, LeaveGroup) when the
 * brokers answer, waiting at most KQ_CLOSE_TIMEOUT_MS. With the brokers
 * down it does not try: the group has this node alone and simply expires,
 * and what was consumed but not committed is delivered again on restart
 * (at least once). kq_consumer_close() then destroys the handle without a
 * second close; librdkafka still holds that for up to session.timeout.ms
 * while the coordinator is unreachable. */
static void close_bounded(kq *q) {
  rd_kafka_queue_t *cq;
  rd_kafka_error_t *e;
  int64_t deadline = kq_mono_ms() + KQ_CLOSE_TIMEOUT_MS;

  if (!atomic_load(&q->healthy)) {
    q->host->log(q->host, EIM_LOG_WARN, "consumer: brokers down, not leaving the group");
    return;
  }
  cq = rd_kafka_queue_new(q->consumer);
  e = rd_kafka_consumer_close_queue(q->consumer, cq);

  if (e != NULL) {
    q->host->log(q->host, EIM_LOG_WARN, "consumer close: %s", rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
  } else {
    while (!rd_kafka_consumer_closed(q->consumer) && kq_mono_ms() < deadline) {
      rd_kafka_event_t *ev = rd_kafka_queue_poll(cq, 100);
      if (ev == NULL) continue;
      /* Served as an event here, so the revocation is ours to apply. */
      if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
        rebalance_cb(q->consumer, rd_kafka_event_error(ev),
                     rd_kafka_event_topic_partition_list(ev), q);
      rd_kafka_event_destroy(ev);
    }
    if (!rd_kafka_consumer_closed(q->consumer))
      q->host->log(q->host, EIM_LOG_WARN,
                   "consumer: group not left within %d ms (brokers down?); it will expire",
                   KQ_CLOSE_TIMEOUT_MS);
  }
  rd_kafka_queue_destroy(cq);
}

static void *consumer_main(void *arg) {
  kq *q = arg;
  int64_t next_lag = kq_mono_ms() + KQ_LAG_INTERVAL_MS;

  while (!atomic_load(&q->stop)) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(q->consumer, 100);
    if (m != NULL) {
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        deliver(q, m);
      } else if (atomic_exchange(&q->last_err, m->err) != m->err) {
        q->host->log(q->host, EIM_LOG_WARN, "consumer: %s", rd_kafka_message_errstr(m));
      }
      rd_kafka_message_destroy(m);
    }
    if (kq_mono_ms() >= next_lag) {
      report_lag(q);
      next_lag = kq_mono_ms() + KQ_LAG_INTERVAL_MS;
    }
  }
  close_bounded(q);
  return NULL;
}

int kq_consumer_thread_start(kq *q, eim_err *err) {
  rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(KQ_NTOPICS);
  rd_kafka_resp_err_t e;

  for (int t = 0; t < KQ_NTOPICS; t++)
    rd_kafka_topic_partition_list_add(sub, q->topics[t], RD_KAFKA_PARTITION_UA);
  e = rd_kafka_subscribe(q->consumer, sub);
  rd_kafka_topic_partition_list_destroy(sub);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
    return eim_err_set(err, EIM_EINTERNAL, "kafka subscribe: %s", rd_kafka_err2str(e));
  if (pthread_create(&q->consumer_thread, NULL, consumer_main, q) != 0)
    return eim_err_set(err, EIM_EINTERNAL, "cannot start the consumer thread");
  q->consumer_started = 1;
  return EIM_OK;
}

void kq_consumer_close(kq *q) {
  if (q->consumer_started) pthread_join(q->consumer_thread, NULL);
  q->consumer_started = 0;
  if (q->consumer != NULL)
    rd_kafka_destroy_flags(q->consumer, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  q->consumer = NULL;
}
