/* store-mysql.threads and store-mysql.multiprocess: appends racing from
 * several worker threads, and from two processes sharing the database,
 * leave every conversation with seqs 1..N, no gap, no duplicate. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "th.h"

static th_plugin P;

typedef struct job {
  void *state;
  const char *conv, *conv2, *sender;
  char tag[64];
  size_t n, batch;
  int fails;
} job;

static void *run_job(void *arg) {
  job *j = arg;
  eim_err err = {0};
  void *conn = NULL;

  if (P.ops->conn_open(j->state, &conn, &err) != EIM_OK) {
    fprintf(stderr, "FAIL conn_open: %s\n", err.msg);
    j->fails++;
    return NULL;
  }
  j->fails += th_append_run(&P, conn, j->conv, j->sender, j->tag, j->n, j->batch);
  P.ops->conn_close(j->state, conn);
  return NULL;
}

/* Batches alternating between two conversations, starting with conv in
 * one thread and conv2 in the other: lock order must not deadlock them. */
static void *run_mixed(void *arg) {
  job *j = arg;
  eim_msg b[8];
  char cmid[8][96];
  eim_err err = {0};
  void *conn = NULL;
  size_t i, k;
  int rc;

  if (P.ops->conn_open(j->state, &conn, &err) != EIM_OK) {
    j->fails++;
    return NULL;
  }
  for (i = 0; i < j->n; i += 8) {
    eim_arena *a = th_arena_new();

    for (k = 0; k < 8; k++) {
      snprintf(cmid[k], sizeof cmid[k], "%s-%zu", j->tag, i + k);
      b[k] = (eim_msg){.conversation_id = k % 2 ? j->conv2 : j->conv,
                       .sender = j->sender, .client_msg_id = cmid[k],
                       .content = "mixed", .content_len = 5, .created_at = th_now()};
    }
    rc = P.ops->append(conn, b, 8, a, &err);
    if (rc != EIM_OK) {
      fprintf(stderr, "FAIL mixed append: %d %s\n", rc, err.msg);
      j->fails++;
    }
    for (k = 0; rc == EIM_OK && k < 8; k++)
      if (b[k].status != EIM_OK || b[k].duplicate)
        j->fails++;
    th_arena_free(a);
  }
  P.ops->conn_close(j->state, conn);
  return NULL;
}

int th_main_threads(const char *plugin) {
  static const size_t batches[4] = {1, 4, 16, 64};
  eim_arena *a = th_arena_new();
  void *state = NULL, *conn;
  const char *u1, *u2, *others[1], *g, *h;
  pthread_t t[4];
  job j[4];
  int i;

  th_load(&P, plugin);
  conn = th_open(&P, &state, NULL);
  u1 = th_user(&P, conn, a, "t1");
  u2 = th_user(&P, conn, a, "t2");
  others[0] = u2;
  g = th_group(&P, conn, a, u1, others, 1);
  h = th_group(&P, conn, a, u1, others, 1);
  if (g == NULL || h == NULL)
    return 1;

  for (i = 0; i < 4; i++) {
    j[i] = (job){.state = state, .conv = g, .sender = i % 2 ? u2 : u1, .n = 160,
                 .batch = batches[i]};
    snprintf(j[i].tag, sizeof j[i].tag, "thr%d", i);
    pthread_create(&t[i], NULL, run_job, &j[i]);
  }
  for (i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    TH_CHECK(j[i].fails == 0, "thread %d saw %d failures", i, j[i].fails);
  }
  th_check_gapless(&P, conn, g, 4 * 160);

  for (i = 0; i < 2; i++) {
    j[i] = (job){.state = state, .conv = i ? h : g, .conv2 = i ? g : h,
                 .sender = u1, .n = 160};
    snprintf(j[i].tag, sizeof j[i].tag, "mix%d", i);
    pthread_create(&t[i], NULL, run_mixed, &j[i]);
  }
  for (i = 0; i < 2; i++) {
    pthread_join(t[i], NULL);
    TH_CHECK(j[i].fails == 0, "mixed thread %d saw %d failures", i, j[i].fails);
  }
  th_check_gapless(&P, conn, g, 4 * 160 + 160);
  th_check_gapless(&P, conn, h, 160);

  P.ops->conn_close(state, conn);
  P.desc->fini(state);
  th_arena_free(a);
  printf("store-mysql.threads: %s\n", th_failures ? "FAILED" : "passed");
  return th_failures ? 1 : 0;
}

/* A child process: two threads appending n/2 messages each. */
int th_main_worker(const char *plugin, const char *conv, const char *sender,
                   const char *tag, size_t n) {
  void *state = NULL, *conn;
  pthread_t t[2];
  job j[2];
  int i, fails = 0;

  th_load(&P, plugin);
  conn = th_open(&P, &state, NULL);
  for (i = 0; i < 2; i++) {
    j[i] = (job){.state = state, .conv = conv, .sender = sender, .n = n / 2,
                 .batch = i ? 8 : 1};
    snprintf(j[i].tag, sizeof j[i].tag, "%s-%d", tag, i);
    pthread_create(&t[i], NULL, run_job, &j[i]);
  }
  for (i = 0; i < 2; i++) {
    pthread_join(t[i], NULL);
    fails += j[i].fails;
  }
  P.ops->conn_close(state, conn);
  P.desc->fini(state);
  return fails ? 1 : 0;
}

int th_main_multiproc(const char *self, const char *plugin) {
  const size_t per_process = 400;
  eim_arena *a = th_arena_new();
  void *state = NULL, *conn;
  const char *u1, *u2, *others[1], *g;
  char n_arg[32];
  pid_t pid[2];
  int i, status;

  th_load(&P, plugin);
  conn = th_open(&P, &state, NULL);
  u1 = th_user(&P, conn, a, "p1");
  u2 = th_user(&P, conn, a, "p2");
  others[0] = u2;
  g = th_group(&P, conn, a, u1, others, 1);
  if (g == NULL)
    return 1;
  snprintf(n_arg, sizeof n_arg, "%zu", per_process);
  fflush(NULL);
  for (i = 0; i < 2; i++) {
    pid[i] = fork();
    if (pid[i] == 0) {
      execl(self, self, "worker", plugin, g, i ? u2 : u1, i ? "proc1" : "proc0", n_arg,
            (char *)NULL);
      _exit(127);
    }
    TH_CHECK(pid[i] > 0, "fork failed");
  }
  for (i = 0; i < 2; i++) {
    if (pid[i] <= 0)
      continue;
    TH_CHECK(waitpid(pid[i], &status, 0) == pid[i] && WIFEXITED(status) &&
                 WEXITSTATUS(status) == 0,
             "worker process %d failed (status %d)", i, status);
  }
  th_check_gapless(&P, conn, g, 2 * per_process);
  P.ops->conn_close(state, conn);
  P.desc->fini(state);
  th_arena_free(a);
  printf("store-mysql.multiprocess: %s\n", th_failures ? "FAILED" : "passed");
  return th_failures ? 1 : 0;
}
