/* The producer side: topic creation, publish, delivery reports and the
 * broker probe behind health(). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kq.h"

#define KQ_PROBE_INTERVAL_MS 2000

static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v,
                    eim_err *err) {
  char why[256];
  if (rd_kafka_conf_set(conf, k, v, why, sizeof why) != RD_KAFKA_CONF_OK)
    return eim_err_set(err, EIM_EINTERNAL, "librdkafka %s=%s: %s", k, v, why);
  return EIM_OK;
}

/* Runs on the poller thread (or in fini's flush). A success proves the
 * broker answers, which lets health() recover before the next probe. */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  kq *q = opaque;
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    q->host->counter_add(q->host, "kafka_delivery_failures_total", 1);
    if (atomic_exchange(&q->last_err, m->err) != m->err)
      q->host->log(q->host, EIM_LOG_WARN, "delivery to %s failed: %s",
                   rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
    return;
  }
  int64_t us = rd_kafka_message_latency(m);
  if (us >= 0) q->host->observe(q->host, "kafka_produce_seconds", (double)us / 1e6);
  q->host->counter_add(q->host, "kafka_produced_total", 1);
  atomic_store(&q->healthy, 1);
}

int kq_producer_create(kq *q, eim_err *err) {
  char why[512], client_id[KQ_NODE_ID_MAX + 32];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  int rc;

  snprintf(client_id, sizeof client_id, "exampleim-%s", q->cfg.node_id);
  /* Idempotence keeps retries from duplicating or reordering a key's
   * records; the 5-minute message timeout rides out broker restarts. The
   * short reconnect backoff resumes delivery soon after an outage. */
  if ((rc = conf_set(conf, "bootstrap.servers", q->cfg.brokers, err)) != 0 ||
      (rc = conf_set(conf, "client.id", client_id, err)) != 0 ||
      (rc = conf_set(conf, "enable.idempotence", "true", err)) != 0 ||
      (rc = conf_set(conf, "acks", "all", err)) != 0 ||
      (rc = conf_set(conf, "message.timeout.ms", "300000", err)) != 0 ||
      (rc = conf_set(conf, "linger.ms", "5", err)) != 0 ||
      (rc = conf_set(conf, "reconnect.backoff.max.ms", "2000", err)) != 0 ||
      (rc = conf_set(conf, "log.connection.close", "false", err)) != 0 ||
      (rc = kq_config_apply_props(&q->cfg, conf, err)) != 0)
    goto fail;
  rd_kafka_conf_set_opaque(conf, q);
  rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
  rd_kafka_conf_set_log_cb(conf, kq_log_cb);
  rd_kafka_conf_set_error_cb(conf, kq_error_cb);

  q->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
  if (q->producer == NULL) {
    rc = eim_err_set(err, EIM_EINVAL, "kafka producer: %s", why);
    goto fail;
  }
  conf = NULL; /* owned by the producer now */
  for (int t = 0; t < KQ_NTOPICS; t++) {
    q->ptopics[t] = rd_kafka_topic_new(q->producer, q->topics[t], NULL);
    if (q->ptopics[t] == NULL) {
      rc = eim_err_set(err, EIM_EINTERNAL, "kafka topic %s: %s", q->topics[t],
                       rd_kafka_err2str(rd_kafka_last_error()));
      goto fail;
    }
  }
  return EIM_OK;

fail:
  if (conf != NULL) rd_kafka_conf_destroy(conf);
  return rc;
}

/* 1 when the broker reports topic t with a leader for every partition. */
static int topic_ready(kq *q, int t, int timeout_ms) {
  const struct rd_kafka_metadata *md = NULL;
  int ok = 0;
  if (rd_kafka_metadata(q->producer, 0, q->ptopics[t], &md, timeout_ms) != 0)
    return 0;
  if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
      md->topics[0].partition_cnt > 0) {
    ok = 1;
    for (int p = 0; p < md->topics[0].partition_cnt; p++)
      if (md->topics[0].partitions[p].leader < 0) ok = 0;
  }
  rd_kafka_metadata_destroy(md);
  return ok;
}

int kq_topics_ensure(kq *q, int timeout_ms, eim_err *err) {
  rd_kafka_NewTopic_t *nt[KQ_NTOPICS] = {0};
  rd_kafka_AdminOptions_t *opt = NULL;
  rd_kafka_queue_t *rq = rd_kafka_queue_new(q->producer);
  rd_kafka_event_t *ev = NULL;
  int64_t deadline = kq_mono_ms() + timeout_ms;
  char why[256];
  int rc = EIM_OK;

  for (int t = 0; t < KQ_NTOPICS; t++) {
    nt[t] = rd_kafka_NewTopic_new(q->topics[t], q->cfg.partitions, -1, why, sizeof why);
    if (nt[t] == NULL) {
      rc = eim_err_set(err, EIM_EINVAL, "topic %s: %s", q->topics[t], why);
      goto done;
    }
  }
  opt = rd_kafka_AdminOptions_new(q->producer, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  /* The broker answers once the topics exist, not just once accepted. */
  rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, why, sizeof why);
  rd_kafka_AdminOptions_set_operation_timeout(opt, timeout_ms, why, sizeof why);
  rd_kafka_CreateTopics(q->producer, nt, KQ_NTOPICS, opt, rq);
  ev = rd_kafka_queue_poll(rq, timeout_ms + 1000);
  if (ev == NULL || rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rc = eim_err_set(err, EIM_EUNAVAIL, "creating topics on %s: %s", q->cfg.brokers,
                     ev != NULL ? rd_kafka_event_error_string(ev) : "timed out");
    goto done;
  }
  size_t n;
  const rd_kafka_topic_result_t **res =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
  for (size_t i = 0; i < n; i++) {
    rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
      q->host->log(q->host, EIM_LOG_INFO, "created topic %s (%d partitions)",
                   rd_kafka_topic_result_name(res[i]), q->cfg.partitions);
    } else if (e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      const char *msg = rd_kafka_topic_result_error_string(res[i]);
      rc = eim_err_set(err, EIM_EUNAVAIL, "creating topic %s: %s",
                       rd_kafka_topic_result_name(res[i]),
                       msg != NULL ? msg : rd_kafka_err2str(e));
      goto done;
    }
  }
  /* Creation is acknowledged by the controller; wait until the broker also
   * serves the topics, so the consumer finds them when it subscribes. */
  for (int t = 0; t < KQ_NTOPICS; t++) {
    for (;;) {
      int64_t left = deadline - kq_mono_ms();
      if (topic_ready(q, t, left > 0 ? (int)left : 1)) break;
      if (left <= 0) {
        rc = eim_err_set(err, EIM_EUNAVAIL, "topic %s has no leader on %s",
                         q->topics[t], q->cfg.brokers);
        goto done;
      }
      nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
    }
  }

done:
  if (ev != NULL) rd_kafka_event_destroy(ev);
  if (opt != NULL) rd_kafka_AdminOptions_destroy(opt);
  for (int t = 0; t < KQ_NTOPICS; t++)
    if (nt[t] != NULL) rd_kafka_NewTopic_destroy(nt[t]);
  rd_kafka_queue_destroy(rq);
  return rc;
}

int kq_publish(void *state, int topic, const char *key, const void *data,
               size_t len, eim_err *err) {
  kq *q = state;
  size_t keylen = key != NULL ? strlen(key) : 0;
  rd_kafka_resp_err_t e;

  if (topic < 0 || topic >= KQ_NTOPICS)
    return eim_err_set(err, EIM_EINVAL, "unknown topic %d", topic);
  if (data == NULL && len > 0)
    return eim_err_set(err, EIM_EINVAL, "no data");
  /* F_COPY: the caller's buffer is only valid during the call. No F_BLOCK:
   * a full queue is reported, never waited out on the loop thread. */
  e = rd_kafka_producev(q->producer, RD_KAFKA_V_RKT(q->ptopics[topic]),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_KEY(key, keylen),
                        RD_KAFKA_V_VALUE((void *)data, len), RD_KAFKA_V_END);
  switch (e) {
  case RD_KAFKA_RESP_ERR_NO_ERROR:
    return EIM_OK;
  case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    q->host->counter_add(q->host, "kafka_publish_rejected_total", 1);
    return eim_err_set(err, EIM_EUNAVAIL, "kafka: local queue full (brokers %s unreachable?)",
                       q->cfg.brokers);
  case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    return eim_err_set(err, EIM_ETOOBIG, "kafka: record of %zu bytes is too large", len);
  default:
    q->host->counter_add(q->host, "kafka_publish_rejected_total", 1);
    return eim_err_set(err, EIM_EUNAVAIL, "kafka: %s", rd_kafka_err2str(e));
  }
}

/* Serves delivery reports and the producer's log and error callbacks. */
static void *poller_main(void *arg) {
  kq *q = arg;
  while (!atomic_load(&q->stop)) rd_kafka_poll(q->producer, 100);
  return NULL;
}

/* Asks the broker for the chat topic's metadata every couple of seconds:
 * health() reads the outcome, so it never blocks. */
static void *prober_main(void *arg) {
  kq *q = arg;
  pthread_mutex_lock(&q->lock);
  while (!atomic_load(&q->stop)) {
    pthread_mutex_unlock(&q->lock);
    const struct rd_kafka_metadata *md = NULL;
    int up = rd_kafka_metadata(q->producer, 0, q->ptopics[EIM_TOPIC_CHAT], &md,
                               KQ_PROBE_INTERVAL_MS) == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (md != NULL) rd_kafka_metadata_destroy(md);
    if (atomic_exchange(&q->healthy, up) != up)
      q->host->log(q->host, up ? EIM_LOG_INFO : EIM_LOG_WARN, "brokers %s %s",
                   q->cfg.brokers, up ? "reachable" : "unreachable");

    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += KQ_PROBE_INTERVAL_MS / 1000;
    pthread_mutex_lock(&q->lock);
    if (!atomic_load(&q->stop)) pthread_cond_timedwait(&q->wake, &q->lock, &ts);
  }
  pthread_mutex_unlock(&q->lock);
  return NULL;
}

int kq_producer_threads_start(kq *q, eim_err *err) {
  if (pthread_create(&q->poller, NULL, poller_main, q) != 0)
    return eim_err_set(err, EIM_EINTERNAL, "cannot start the producer thread");
  q->poller_started = 1;
  if (pthread_create(&q->prober, NULL, prober_main, q) != 0)
    return eim_err_set(err, EIM_EINTERNAL, "cannot start the probe thread");
  q->prober_started = 1;
  return EIM_OK;
}

void kq_producer_close(kq *q) {
  if (q->prober_started) pthread_join(q->prober, NULL);
  if (q->poller_started) pthread_join(q->poller, NULL);
  q->prober_started = q->poller_started = 0;
  if (q->producer == NULL) return;

  /* Graceful shutdown: what publish accepted is delivered unless the
   * brokers stay away for the whole flush timeout. */
  rd_kafka_flush(q->producer, q->cfg.flush_timeout_ms);
  int left = rd_kafka_outq_len(q->producer);
  if (left > 0) {
    q->host->log(q->host, EIM_LOG_ERROR,
                 "%d records not delivered within flush_timeout_ms=%d are dropped",
                 left, q->cfg.flush_timeout_ms);
    rd_kafka_purge(q->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(q->producer, 1000);
  }
  for (int t = 0; t < KQ_NTOPICS; t++)
    if (q->ptopics[t] != NULL) rd_kafka_topic_destroy(q->ptopics[t]);
  rd_kafka_destroy(q->producer);
  q->producer = NULL;
}
