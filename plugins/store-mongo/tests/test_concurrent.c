/* store-mongo.concurrent: two processes, several threads each, append to one
 * conversation at once, and both also send the same client_msg_ids at the
 * same moment (racing retries). Afterwards the conversation's seqs must be
 * exactly 1..max_seq, each client_msg_id stored once, and every retry must
 * have got back the seq of the stored message. Prints the throughput.
 *
 * Meanwhile one more thread in each process appends batches of mixed sizes,
 * up to the core's default max_batch of 256, into a second conversation, as
 * the core does (one conversation through one worker, in order): the seqs
 * there must be exactly 1..max_seq too, and each process's messages must
 * have increasing seqs in the order it appended them. Batches over 100 are
 * what FerretDB v1 splits, and it went on inserting after a duplicate key in
 * an earlier part, which left gaps and put seqs out of order.
 *
 *   store-mongo-test-concurrent PLUGIN.so DROPDB                 (parent)
 *   store-mongo-test-concurrent PLUGIN.so CONV CONV2 SENDER TAG  (child, internal) */
#include "harness.h"

#include <pthread.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 4
#define BATCHES 25
#define BATCH 8
#define SHARED_EVERY 4 /* every 4th batch carries one shared client_msg_id */
/* The second conversation's batch sizes, appended in this order. */
static const size_t order_sizes[] = {150, 1, 101, 37, 256, 2, 120, 64, 200, 3};
#define ORDER_ROUNDS 1
#define ORDER_BATCH_MAX 256

extern char **environ;

static const char *kv[] = {"uri", "env:MONGO_URI", "database", NULL, "pool_size", "8", NULL};
static th_plugin plug;
static const char *conv, *conv2, *sender, *tag;

typedef struct shared_seen {
  char cmid[64];
  uint64_t seq;
} shared_seen;

static void *child_thread(void *arg) {
  int t = (int)(intptr_t)arg;
  void *conn = NULL;
  eim_err err;
  eim_arena *a = th_arena_new();
  char cm[BATCH][64];
  eim_msg b[BATCH];

  if (plug.ops->conn_open(plug.state, &conn, &err) != EIM_OK) {
    fprintf(stderr, "conn_open: %s\n", err.msg);
    th_failures++;
    goto done;
  }
  for (int k = 0; k < BATCHES; k++) {
    size_t n = BATCH;
    for (int i = 0; i < BATCH; i++) {
      snprintf(cm[i], sizeof cm[i], "%s-%d-%d-%d", tag, t, k, i);
      b[i] = (eim_msg){.conversation_id = conv, .sender = sender, .client_msg_id = cm[i],
                       .content_type = "text", .content = cm[i], .content_len = strlen(cm[i]),
                       .created_at = th_now_ms()};
    }
    /* The same id from both processes at once: one stores, one gets it back. */
    if (k % SHARED_EVERY == 0) snprintf(cm[BATCH - 1], sizeof cm[0], "shared-%d-%d", t, k);
    /* And a resend of a message of the previous batch. */
    if (k > 0) snprintf(cm[0], sizeof cm[0], "%s-%d-%d-%d", tag, t, k - 1, 1);
    if (plug.ops->append(conn, b, n, a, &err) != EIM_OK) {
      fprintf(stderr, "append: %s\n", err.msg);
      th_failures++;
      break;
    }
    for (int i = 0; i < BATCH; i++) {
      if (b[i].status != EIM_OK || b[i].seq == 0) {
        fprintf(stderr, "message %s: status %d seq %llu\n", cm[i], b[i].status,
                (unsigned long long)b[i].seq);
        th_failures++;
      }
      if (i == 0 && k > 0 && !b[i].duplicate) {
        fprintf(stderr, "resend of %s not reported as duplicate\n", cm[i]);
        th_failures++;
      }
      if (k % SHARED_EVERY == 0 && i == BATCH - 1)
        printf("%s %llu\n", cm[i], (unsigned long long)b[i].seq);
    }
  }
  plug.ops->conn_close(plug.state, conn);
done:
  th_arena_free(a);
  return NULL;
}

/* Appends order_sizes' batches ORDER_ROUNDS times into conv2 from one thread
 * and checks that every message is new and gets a higher seq than the one
 * appended before it. Returns the number of failures. */
static void *order_thread(void *arg) {
  void *conn = NULL;
  eim_err err;
  eim_arena *a = th_arena_new();
  char (*cm)[64] = calloc(ORDER_BATCH_MAX, sizeof *cm);
  eim_msg *b = calloc(ORDER_BATCH_MAX, sizeof *b);
  uint64_t last = 0;
  intptr_t failures = 0;
  int k = 0;

  (void)arg;
  if (cm == NULL || b == NULL || plug.ops->conn_open(plug.state, &conn, &err) != EIM_OK) {
    fprintf(stderr, "order: setup failed\n");
    failures++;
    goto done;
  }
  for (int r = 0; r < ORDER_ROUNDS && failures == 0; r++)
    for (size_t z = 0; z < sizeof order_sizes / sizeof order_sizes[0]; z++, k++) {
      size_t n = order_sizes[z];
      for (size_t i = 0; i < n; i++) {
        snprintf(cm[i], sizeof cm[i], "%s-order-%d-%zu", tag, k, i);
        b[i] = (eim_msg){.conversation_id = conv2, .sender = sender, .client_msg_id = cm[i],
                         .content_type = "text", .content = cm[i],
                         .content_len = strlen(cm[i]), .created_at = th_now_ms()};
      }
      if (plug.ops->append(conn, b, n, a, &err) != EIM_OK) {
        fprintf(stderr, "order: append of %zu: %s\n", n, err.msg);
        failures++;
        break;
      }
      for (size_t i = 0; i < n; i++) {
        if (b[i].status != EIM_OK || b[i].duplicate || b[i].seq <= last) {
          fprintf(stderr, "order: %s: status %d duplicate %d seq %llu after seq %llu\n",
                  cm[i], b[i].status, b[i].duplicate, (unsigned long long)b[i].seq,
                  (unsigned long long)last);
          failures++;
        }
        last = b[i].seq;
      }
    }
  plug.ops->conn_close(plug.state, conn);
done:
  free(cm);
  free(b);
  th_arena_free(a);
  return (void *)failures;
}

static int child(void) {
  pthread_t th[THREADS], order;
  void *order_failures = NULL;
  eim_err err;
  char go;

  if (th_load(&plug, getenv("STORE_MONGO_PLUGIN"), kv, &err) != EIM_OK) {
    fprintf(stderr, "init: %s\n", err.msg);
    return 1;
  }
  /* Start together: the parent closes our stdin when both children run. */
  while (read(0, &go, 1) > 0) {
  }
  pthread_create(&order, NULL, order_thread, NULL);
  for (int t = 0; t < THREADS; t++) pthread_create(&th[t], NULL, child_thread, (void *)(intptr_t)t);
  for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
  pthread_join(order, &order_failures);
  th_failures += (int)(intptr_t)order_failures;
  th_unload(&plug);
  fflush(stdout);
  return th_failures ? 1 : 0;
}

/* NULLs (seqs missing from history, already a failure) sort first. */
static int cmp_str(const void *x, const void *y) {
  const char *p = *(const char *const *)x, *q = *(const char *const *)y;
  if (p == NULL || q == NULL) return (p != NULL) - (q != NULL);
  return strcmp(p, q);
}

/* Reads conversation cid back as user: max_seq must be `expected`, the
 * user's read cursor at max_seq, the seqs exactly 1..max_seq, and no
 * client_msg_id stored twice. Failures are counted in th_failures. */
static void check_conv(void *conn, const char *cid, const char *user, size_t expected,
                       eim_arena *a) {
  eim_err err;
  eim_conv now;
  const char **cmids;
  uint64_t next = 1;

  CHECK(plug.ops->conv_get(conn, cid, user, &now, a, &err) == EIM_OK);
  fprintf(stderr, "%s: max_seq %llu, expected %zu\n", cid, (unsigned long long)now.max_seq,
          expected);
  CHECK(now.max_seq == expected);
  CHECK(now.read_seq == now.max_seq);
  if ((cmids = calloc(now.max_seq + 1, sizeof *cmids)) == NULL) {
    th_failures++;
    return;
  }
  for (;;) {
    eim_msg_list h;
    /* after_seq = 0 means "latest": the first page is before_seq = 201. */
    eim_history_q q = {cid, next == 1 ? 201 : 0, next - 1, 200};
    if (plug.ops->history(conn, &q, &h, a, &err) != EIM_OK) {
      fprintf(stderr, "FAIL: history: %s\n", err.msg);
      th_failures++;
      break;
    }
    for (size_t i = 0; i < h.n; i++) {
      if (h.items[i].seq != next) {
        fprintf(stderr, "FAIL: expected seq %llu, got %llu\n", (unsigned long long)next,
                (unsigned long long)h.items[i].seq);
        th_failures++;
        next = h.items[i].seq;
      }
      if (next <= now.max_seq) cmids[next - 1] = h.items[i].client_msg_id;
      next++;
    }
    if (h.n == 0 || next > now.max_seq) break;
  }
  CHECK(next == now.max_seq + 1);
  qsort(cmids, now.max_seq, sizeof *cmids, cmp_str);
  for (uint64_t i = 1; i < now.max_seq; i++)
    if (cmids[i] != NULL && cmids[i - 1] != NULL && strcmp(cmids[i], cmids[i - 1]) == 0) {
      fprintf(stderr, "FAIL: client_msg_id %s stored twice\n", cmids[i]);
      th_failures++;
    }
  free(cmids);
}

int main(int argc, char **argv) {
  eim_err err;
  void *conn = NULL;
  eim_arena *a;
  eim_user u;
  eim_conv cv, cv2;
  char name[64];
  int existed, status;
  pid_t pid[2];
  int go[2], out[2][2];
  int64_t t0, elapsed;
  const size_t shared_per_thread = (BATCHES + SHARED_EVERY - 1) / SHARED_EVERY;
  const size_t own = 2 * THREADS * (BATCHES * BATCH - (BATCHES - 1) - shared_per_thread);
  const size_t shared = THREADS * shared_per_thread;
  size_t ordered = 0;

  for (size_t z = 0; z < sizeof order_sizes / sizeof order_sizes[0]; z++)
    ordered += 2 * ORDER_ROUNDS * order_sizes[z];

  kv[3] = th_database();
  if (argc == 6) {
    conv = argv[2];
    conv2 = argv[3];
    sender = argv[4];
    tag = argv[5];
    return child();
  }
  if (argc != 3) {
    fprintf(stderr, "usage: %s store-mongo.so store-mongo-test-dropdb\n", argv[0]);
    return 2;
  }
  th_env("MONGO_URI");
  setenv("STORE_MONGO_PLUGIN", argv[1], 1);
  a = th_arena_new();
  if (th_load(&plug, argv[1], kv, &err) != EIM_OK ||
      plug.ops->conn_open(plug.state, &conn, &err) != EIM_OK) {
    fprintf(stderr, "FAIL: init: %s\n", err.msg);
    return 1;
  }
  th_unique(name, sizeof name, "racer");
  CHECK(plug.ops->user_create(conn, name, "h", 1, &u, a, &err) == EIM_OK);
  eim_conv_new req = {EIM_CONV_GROUP, "race", u.user_id, NULL, 0, th_now_ms()};
  CHECK(plug.ops->conv_create(conn, &req, &cv, &existed, a, &err) == EIM_OK);
  CHECK(plug.ops->conv_create(conn, &req, &cv2, &existed, a, &err) == EIM_OK);
  if (th_failures) return 1;

  if (pipe(go) != 0) return 1;
  t0 = th_now_ms();
  for (int i = 0; i < 2; i++) {
    posix_spawn_file_actions_t fa;
    char *args[] = {argv[0], argv[1], (char *)cv.conversation_id, (char *)cv2.conversation_id,
                    (char *)u.user_id, i == 0 ? "p0" : "p1", NULL};
    if (pipe(out[i]) != 0) return 1;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, go[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[i][1], 1);
    posix_spawn_file_actions_addclose(&fa, go[1]);
    posix_spawn_file_actions_addclose(&fa, out[i][0]);
    if (posix_spawn(&pid[i], argv[0], &fa, NULL, args, environ) != 0) return 1;
    posix_spawn_file_actions_destroy(&fa);
    close(out[i][1]);
  }
  close(go[0]);
  close(go[1]);

  /* Each child prints "cmid seq" for the shared ids; both must agree. */
  shared_seen *seen[2] = {calloc(shared, sizeof(shared_seen)), calloc(shared, sizeof(shared_seen))};
  size_t nseen[2] = {0, 0};
  for (int i = 0; i < 2; i++) {
    FILE *f = fdopen(out[i][0], "r");
    char line[128];
    while (f != NULL && fgets(line, sizeof line, f) != NULL && nseen[i] < shared) {
      unsigned long long s;
      if (sscanf(line, "%63s %llu", seen[i][nseen[i]].cmid, &s) == 2) seen[i][nseen[i]++].seq = s;
    }
    if (f != NULL) fclose(f);
  }
  for (int i = 0; i < 2; i++) {
    CHECK(waitpid(pid[i], &status, 0) == pid[i]);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  elapsed = th_now_ms() - t0;
  CHECK(nseen[0] == shared && nseen[1] == shared);
  for (size_t i = 0; i < nseen[0]; i++)
    for (size_t j = 0; j < nseen[1]; j++)
      if (strcmp(seen[0][i].cmid, seen[1][j].cmid) == 0) CHECK(seen[0][i].seq == seen[1][j].seq);

  /* Read everything back: seqs 1..max_seq, each once, no client_msg_id twice. */
  check_conv(conn, cv.conversation_id, u.user_id, own + shared, a);
  check_conv(conn, cv2.conversation_id, u.user_id, ordered, a);
  printf("throughput: %zu messages stored (%d appends of %d from 2 processes x %d threads, "
         "and %zu in batches of up to %d from one thread of each) in %lld ms = %.0f msg/s\n",
         own + shared + ordered, 2 * THREADS * BATCHES, BATCH, THREADS, ordered,
         ORDER_BATCH_MAX, (long long)elapsed,
         (double)(own + shared + ordered) * 1000.0 / (double)(elapsed ? elapsed : 1));

  free(seen[0]);
  free(seen[1]);
  plug.ops->conn_close(plug.state, conn);
  th_unload(&plug);
  th_arena_free(a);
  CHECK(th_drop_database(argv[2]) == 0);
  fprintf(stderr, "%s: %d failure(s)\n", argv[0], th_failures);
  return th_failures ? 1 : 0;
}
