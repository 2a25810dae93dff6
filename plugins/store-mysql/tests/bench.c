/* Append throughput: `store-mysql-test bench PLUGIN N BATCH THREADS`
 * appends N messages in batches of BATCH from THREADS workers, each with
 * its own connection and conversation, and prints messages per second. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "th.h"

static th_plugin P;

typedef struct bench_job {
  void *state;
  const char *conv, *sender;
  size_t n, batch;
  int id, fails;
} bench_job;

static void *bench_run(void *arg) {
  bench_job *j = arg;
  eim_msg *b = calloc(j->batch, sizeof *b);
  char (*cmid)[48] = calloc(j->batch, sizeof *cmid);
  static const char text[] = "a benchmark message of a typical length, about sixty bytes";
  eim_err err = {0};
  void *conn = NULL;
  size_t i, k, m;

  if (b == NULL || cmid == NULL || P.ops->conn_open(j->state, &conn, &err) != EIM_OK) {
    j->fails++;
    goto out;
  }
  for (i = 0; i < j->n; i += m) {
    eim_arena *a = th_arena_new();

    m = j->n - i < j->batch ? j->n - i : j->batch;
    for (k = 0; k < m; k++) {
      snprintf(cmid[k], sizeof cmid[k], "b%d-%zu-%lld", j->id, i + k, (long long)th_now());
      b[k] = (eim_msg){.conversation_id = j->conv, .sender = j->sender,
                       .client_msg_id = cmid[k], .content = text,
                       .content_len = sizeof text - 1, .created_at = th_now()};
    }
    if (P.ops->append(conn, b, m, a, &err) != EIM_OK) {
      fprintf(stderr, "append: %s\n", err.msg);
      j->fails++;
    }
    th_arena_free(a);
  }
  P.ops->conn_close(j->state, conn);
out:
  free(b);
  free(cmid);
  return NULL;
}

int th_main_bench(const char *plugin, size_t n, size_t batch, size_t threads) {
  eim_arena *a = th_arena_new();
  void *state = NULL, *conn;
  const char *u1, *others[1];
  bench_job *j = calloc(threads, sizeof *j);
  pthread_t *t = calloc(threads, sizeof *t);
  struct timespec t0, t1;
  double s;
  size_t i;
  int fails = 0;

  const char *extra[] = {"pool_size", "256", NULL};
  th_load(&P, plugin);
  conn = th_open(&P, &state, extra);
  u1 = th_user(&P, conn, a, "bench");
  others[0] = th_user(&P, conn, a, "bench");
  for (i = 0; i < threads; i++)
    j[i] = (bench_job){.state = state, .conv = th_group(&P, conn, a, u1, others, 1),
                       .sender = u1, .n = n / threads, .batch = batch, .id = (int)i};
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (i = 0; i < threads; i++)
    pthread_create(&t[i], NULL, bench_run, &j[i]);
  for (i = 0; i < threads; i++) {
    pthread_join(t[i], NULL);
    fails += j[i].fails;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("batch %zu, %zu thread(s): %zu messages in %.2f s = %.0f messages/s%s\n", batch,
         threads, n / threads * threads, s, (double)(n / threads * threads) / s,
         fails ? " (with failures)" : "");
  P.ops->conn_close(state, conn);
  P.desc->fini(state);
  th_arena_free(a);
  free(j);
  free(t);
  return fails ? 1 : 0;
}
