#include "workers.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hmap.h"
#include "log.h"
#include "metrics.h"

typedef struct {
  eim_job *head, *tail;
} jobq;

/* Each worker sleeps on its own condition variable, so a submit wakes the
 * one worker that will take the job, and only when it sleeps: waking every
 * worker for each append cost more CPU than the append's SQL. */
typedef struct worker {
  pthread_t thread;
  void *conn;
  jobq appends;             /* this worker's shard */
  pthread_cond_t cond;
  int idle;                 /* waiting on cond and not yet woken */
  unsigned idx;
  int started;
  int cond_ready;
} worker;

static struct {
  const eim_store_ops *ops;
  void *state;
  worker *w;
  unsigned n;
  unsigned shards;          /* workers 0..shards-1 take appends */
  unsigned max_batch;
  pthread_mutex_t lock;
  jobq calls;               /* any worker */
  int stopping;
  atomic_uint_fast64_t inflight;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void q_push(jobq *q, eim_job *j) {
  j->next = NULL;
  if (q->tail) q->tail->next = j;
  else q->head = j;
  q->tail = j;
}

static eim_job *q_pop(jobq *q) {
  eim_job *j = q->head;
  if (j) {
    q->head = j->next;
    if (q->head == NULL) q->tail = NULL;
  }
  return j;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void finish_on_loop(void *arg) {
  eim_job *j = arg;
  atomic_fetch_sub(&pool.inflight, 1);
  j->done(j);
}

static void complete(eim_job *j) {
  j->mail.fn = finish_on_loop;
  j->mail.arg = j;
  eim_mailbox_post_node(&j->mail);
}

/* Completes jobs[0..n) in order with one mailbox post: one wake-up of the
 * loop per batch instead of one per message (on a shared core each wake-up
 * is a context switch). */
static void complete_batch(eim_job **jobs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    jobs[i]->mail.fn = finish_on_loop;
    jobs[i]->mail.arg = jobs[i];
    if (i + 1 < n) jobs[i]->mail.next = &jobs[i + 1]->mail;
  }
  if (n > 0) eim_mailbox_post_chain(&jobs[0]->mail, &jobs[n - 1]->mail);
}

/* Wakes w if it sleeps. Call with pool.lock held. */
static void wake(worker *w) {
  if (w->idle) {
    w->idle = 0;
    pthread_cond_signal(&w->cond);
  }
}

static const char *copy(eim_arena *a, const char *s) {
  return s ? eim_arena_strdup(a, s) : NULL;
}

/* Runs one group commit of the jobs in `batch` and completes them. The
 * store's results live in a batch arena; each job gets its own copy so jobs
 * can finish independently. */
static void run_appends(worker *w, eim_job **jobs, size_t n, eim_msg *batch) {
  eim_arena a;
  eim_arena_init(&a);
  eim_err err = {0, ""};
  for (size_t i = 0; i < n; i++) {
    batch[i] = jobs[i]->msg;
    batch[i].status = EIM_OK;
    batch[i].duplicate = 0;
  }
  double t0 = now_s();
  int rc = pool.ops->append(w->conn, batch, n, &a, &err);
  eim_metrics_observe(EIM_H_STORE_LATENCY, now_s() - t0);
  eim_metrics_observe(EIM_H_BATCH_SIZE, (double)n);
  for (size_t i = 0; i < n; i++) {
    eim_job *j = jobs[i];
    if (rc != EIM_OK) {
      j->rc = rc;
      j->err = err;
    } else {
      eim_msg *m = &batch[i];
      j->rc = m->status;
      if (m->status != EIM_OK) {
        eim_err_set(&j->err, m->status, "%s", err.msg[0] ? err.msg : "append failed");
      } else {
        eim_msg out = *m;
        eim_arena *ja = &j->arena;
        out.conversation_id = copy(ja, m->conversation_id);
        out.sender = copy(ja, m->sender);
        out.client_msg_id = copy(ja, m->client_msg_id);
        out.content_type = copy(ja, m->content_type);
        out.msg_id = copy(ja, m->msg_id);
        out.content = eim_arena_strndup(ja, m->content, m->content_len);
        j->msg = out;
      }
    }
  }
  complete_batch(jobs, n);
  eim_arena_reset(&a);
}

/* Store workers run under SCHED_BATCH: woken, they do not preempt the loop
 * thread when they share its core. The loop then reads every frame that is
 * ready and queues it before the worker runs, so a commit carries all of
 * them instead of the first. Unprivileged; failing leaves SCHED_OTHER. */
static void batch_policy(void) {
#ifdef SCHED_BATCH
  struct sched_param sp = {.sched_priority = 0};
  (void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
#endif
}

static void *worker_main(void *arg) {
  worker *w = arg;
  eim_job **jobs = malloc(pool.max_batch * sizeof *jobs);
  eim_msg *batch = malloc(pool.max_batch * sizeof *batch);
  if (jobs == NULL || batch == NULL) abort();
  batch_policy();
  pthread_mutex_lock(&pool.lock);
  for (;;) {
    if (w->appends.head != NULL) {
      size_t n = 0;
      eim_job *j;
      while (n < pool.max_batch && (j = q_pop(&w->appends)) != NULL) jobs[n++] = j;
      pthread_mutex_unlock(&pool.lock);
      run_appends(w, jobs, n, batch);
      pthread_mutex_lock(&pool.lock);
      continue;
    }
    eim_job *j = q_pop(&pool.calls);
    if (j != NULL) {
      pthread_mutex_unlock(&pool.lock);
      double t0 = now_s();
      j->work(j, w->conn);
      eim_metrics_observe(EIM_H_STORE_LATENCY, now_s() - t0);
      complete(j);
      pthread_mutex_lock(&pool.lock);
      continue;
    }
    if (pool.stopping) break;
    w->idle = 1;
    pthread_cond_wait(&w->cond, &pool.lock);
    w->idle = 0;
  }
  pthread_mutex_unlock(&pool.lock);
  free(jobs);
  free(batch);
  return NULL;
}

void eim_job_init(eim_job *job, void (*done)(eim_job *), void *ctx) {
  memset(job, 0, sizeof *job);
  eim_arena_init(&job->arena);
  job->done = done;
  job->ctx = ctx;
}

int eim_workers_start(const eim_store_ops *ops, void *store_state, unsigned n, unsigned shards,
                      unsigned max_batch, char *errbuf, size_t errlen) {
  pool.ops = ops;
  pool.state = store_state;
  pool.n = n;
  pool.shards = shards < 1 ? 1 : shards > n ? n : shards;
  pool.max_batch = max_batch;
  pool.stopping = 0;
  pool.w = calloc(n, sizeof *pool.w);
  if (pool.w == NULL) {
    snprintf(errbuf, errlen, "out of memory");
    return -1;
  }
  for (unsigned i = 0; i < n; i++) {
    eim_err err = {0, ""};
    pool.w[i].idx = i;
    if (pthread_cond_init(&pool.w[i].cond, NULL) != 0) {
      snprintf(errbuf, errlen, "cannot create a condition variable");
      eim_workers_stop();
      return -1;
    }
    pool.w[i].cond_ready = 1;
    if (ops->conn_open(store_state, &pool.w[i].conn, &err) != EIM_OK) {
      snprintf(errbuf, errlen, "store connection failed: %s", err.msg[0] ? err.msg : "no reason given");
      eim_workers_stop();
      return -1;
    }
  }
  for (unsigned i = 0; i < n; i++) {
    if (pthread_create(&pool.w[i].thread, NULL, worker_main, &pool.w[i]) != 0) {
      snprintf(errbuf, errlen, "cannot start store worker thread");
      eim_workers_stop();
      return -1;
    }
    pool.w[i].started = 1;
  }
  return 0;
}

void eim_workers_call(eim_job *job) {
  job->is_append = 0;
  atomic_fetch_add(&pool.inflight, 1);
  pthread_mutex_lock(&pool.lock);
  q_push(&pool.calls, job);
  /* One sleeping worker, the highest-numbered first so that the append
   * shards stay free for appends; a busy worker looks at the calls before
   * it sleeps, so none asleep means nothing to do. */
  for (unsigned i = pool.n; i-- > 0;) {
    if (pool.w[i].idle) {
      wake(&pool.w[i]);
      break;
    }
  }
  pthread_mutex_unlock(&pool.lock);
}

void eim_workers_append(eim_job *job) {
  job->is_append = 1;
  atomic_fetch_add(&pool.inflight, 1);
  worker *w = &pool.w[eim_hash_str(job->msg.conversation_id) % pool.shards];
  pthread_mutex_lock(&pool.lock);
  q_push(&w->appends, job);
  wake(w);
  pthread_mutex_unlock(&pool.lock);
}

uint64_t eim_workers_inflight(void) { return atomic_load(&pool.inflight); }

void eim_workers_stop(void) {
  if (pool.w == NULL) return;
  pthread_mutex_lock(&pool.lock);
  pool.stopping = 1;
  for (unsigned i = 0; i < pool.n; i++)
    if (pool.w[i].cond_ready) wake(&pool.w[i]);
  pthread_mutex_unlock(&pool.lock);
  for (unsigned i = 0; i < pool.n; i++)
    if (pool.w[i].started) pthread_join(pool.w[i].thread, NULL);
  for (unsigned i = 0; i < pool.n; i++) {
    if (pool.w[i].conn) pool.ops->conn_close(pool.state, pool.w[i].conn);
    if (pool.w[i].cond_ready) pthread_cond_destroy(&pool.w[i].cond);
  }
  free(pool.w);
  pool.w = NULL;
}
