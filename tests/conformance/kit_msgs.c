/*
 * Store checks: append (seq, retries, batches, concurrency), history
 * paging, read cursors and unread counts.
 */
#include "kit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int msg_is(kit_store *k, const eim_msg *got, const eim_msg *want, const char *what) {
  KIT_EXPECT(k, strcmp(got->msg_id, want->msg_id) == 0, "%s: msg_id differs", what);
  KIT_EXPECT(k, got->seq == want->seq, "%s: seq %llu, want %llu", what,
             (unsigned long long)got->seq, (unsigned long long)want->seq);
  KIT_EXPECT(k, strcmp(got->conversation_id, want->conversation_id) == 0,
             "%s: conversation_id differs", what);
  KIT_EXPECT(k, strcmp(got->sender, want->sender) == 0, "%s: sender differs", what);
  KIT_EXPECT(k, strcmp(got->client_msg_id, want->client_msg_id) == 0,
             "%s: client_msg_id differs", what);
  KIT_EXPECT(k, strcmp(got->content_type, want->content_type) == 0,
             "%s: content_type differs", what);
  KIT_EXPECT(k, got->content_len == want->content_len &&
                    memcmp(got->content, want->content, want->content_len) == 0,
             "%s: content differs (%zu bytes, want %zu)", what, got->content_len,
             want->content_len);
  KIT_EXPECT(k, got->created_at == want->created_at, "%s: created_at differs", what);
  return 0;
}

static int append_first(kit_store *k) {
  const char *alice, *bob, *c;
  eim_msg m1, m2;
  eim_conv conv;

  if (kit_user(k, "a.alice", &alice) || kit_user(k, "a.bob", &bob) ||
      kit_group(k, alice, &bob, 1, &c) || kit_send(k, c, alice, "a-1", "hello", &m1) ||
      kit_send(k, c, bob, "a-2", "hi", &m2))
    return -1;
  KIT_EXPECT(k, m1.seq == 1 && m2.seq == 2, "seqs %llu, %llu, want 1, 2",
             (unsigned long long)m1.seq, (unsigned long long)m2.seq);
  KIT_EXPECT(k, m1.msg_id != NULL && m1.msg_id[0] != '\0' && strlen(m1.msg_id) < EIM_ID_MAX,
             "bad msg_id");
  KIT_EXPECT(k, strcmp(m1.msg_id, m2.msg_id) != 0, "two messages share a msg_id");
  KIT_OK(k, "conv_get", k->ops->conv_get(k->conn, c, alice, &conv, k->a, &k->err));
  KIT_EXPECT(k, conv.max_seq == 2, "max_seq %llu, want 2", (unsigned long long)conv.max_seq);
  KIT_EXPECT(k, conv.last_message != NULL, "no last_message");
  return msg_is(k, conv.last_message, &m2, "last_message");
}

static int append_retry(kit_store *k) {
  const char *alice, *bob, *c, *c2;
  eim_msg first, other, again;
  eim_msg *all;
  size_t n;

  if (kit_user(k, "rt.alice", &alice) || kit_user(k, "rt.bob", &bob) ||
      kit_group(k, alice, &bob, 1, &c) || kit_group(k, alice, &bob, 1, &c2) ||
      kit_send(k, c, alice, "retry-1", "first", &first) ||
      kit_send(k, c, bob, "other", "in between", &other))
    return -1;
  again = (eim_msg){.conversation_id = c, .sender = alice, .client_msg_id = "retry-1",
                    .content_type = "text", .content = "second attempt",
                    .content_len = 14, .created_at = kit_time(k)};
  KIT_OK(k, "append(retry)", k->ops->append(k->conn, &again, 1, k->a, &k->err));
  KIT_EXPECT(k, again.status == EIM_OK, "retry status %d", again.status);
  KIT_EXPECT(k, again.duplicate == 1, "a retry says duplicate = 0");
  if (msg_is(k, &again, &first, "retry"))
    return -1;
  if (kit_history_all(k, k->conn, c, &all, &n))
    return -1;
  KIT_EXPECT(k, n == 2, "history holds %zu messages after a retry, want 2", n);
  if (msg_is(k, &all[0], &first, "stored first"))
    return -1;
  /* The key is (conversation, sender, client_msg_id): others may reuse it. */
  if (kit_send(k, c, bob, "retry-1", "bob's own", &again))
    return -1;
  KIT_EXPECT(k, again.seq == 3, "another sender's same client_msg_id got seq %llu, want 3",
             (unsigned long long)again.seq);
  if (kit_send(k, c2, alice, "retry-1", "elsewhere", &again))
    return -1;
  KIT_EXPECT(k, again.seq == 1, "same client_msg_id in another conversation got seq %llu",
             (unsigned long long)again.seq);
  return 0;
}

#define KIT_BATCH 50

static int append_batch(kit_store *k) {
  const char *alice, *bob, *c;
  eim_msg batch[KIT_BATCH], ref[KIT_BATCH];
  eim_msg *all;
  eim_conv conv;
  size_t n;
  uint64_t next = 2;

  if (kit_user(k, "b.alice", &alice) || kit_user(k, "b.bob", &bob) ||
      kit_group(k, alice, &bob, 1, &c) || kit_send(k, c, alice, "b-before", "before", NULL))
    return -1;
  for (int i = 0; i < KIT_BATCH; i++) {
    char *text = kit_fmt(k, "batch message %d", i);
    KIT_EXPECT(k, text != NULL, "out of memory");
    batch[i] = (eim_msg){.conversation_id = c, .sender = i % 2 ? bob : alice,
                         .client_msg_id = kit_fmt(k, "b-%d", i), .content_type = "text",
                         .content = text, .content_len = strlen(text),
                         .created_at = kit_time(k)};
  }
  batch[30].sender = batch[10].sender;
  batch[30].client_msg_id = batch[10].client_msg_id;
  batch[40].conversation_id = "kit-no-such-conv";
  memcpy(ref, batch, sizeof ref);
  KIT_OK(k, "append(batch)", k->ops->append(k->conn, batch, KIT_BATCH, k->a, &k->err));
  for (int i = 0; i < KIT_BATCH; i++) {
    if (i == 40) {
      KIT_EXPECT(k, batch[i].status < 0, "the message to an unknown conversation has status 0");
      continue;
    }
    KIT_EXPECT(k, batch[i].status == EIM_OK, "batch[%d] status %d", i, batch[i].status);
    if (i == 30) {
      KIT_EXPECT(k, batch[i].duplicate == 1, "the retry inside the batch is not a duplicate");
      if (msg_is(k, &batch[30], &batch[10], "retry inside the batch"))
        return -1;
      continue;
    }
    KIT_EXPECT(k, batch[i].duplicate == 0, "batch[%d] is marked duplicate", i);
    KIT_EXPECT(k, batch[i].seq == next, "batch[%d] got seq %llu, want %llu", i,
               (unsigned long long)batch[i].seq, (unsigned long long)next);
    next++;
  }
  KIT_OK(k, "conv_get", k->ops->conv_get(k->conn, c, alice, &conv, k->a, &k->err));
  KIT_EXPECT(k, conv.max_seq == next - 1, "max_seq %llu, want %llu",
             (unsigned long long)conv.max_seq, (unsigned long long)(next - 1));
  if (kit_history_all(k, k->conn, c, &all, &n))
    return -1;
  KIT_EXPECT(k, n == next - 1, "history holds %zu messages, want %llu", n,
             (unsigned long long)(next - 1));
  for (int i = 0, j = 1; i < KIT_BATCH; i++) {
    if (i == 30 || i == 40)
      continue;
    ref[i].msg_id = batch[i].msg_id;
    ref[i].seq = batch[i].seq;
    if (msg_is(k, &all[j++], &ref[i], "stored batch message"))
      return -1;
  }
  return 0;
}

/* ---- concurrent appends ------------------------------------------------ */

#define KIT_THREADS 8
#define KIT_PER_THREAD 500

typedef struct kit_appender {
  kit_store *k;
  pthread_barrier_t *go;
  const char *conv, *sender;
  int index;
  size_t batch;
  uint64_t seqs[KIT_PER_THREAD];
  int rc;
  char why[400];
} kit_appender;

static void *appender(void *arg) {
  kit_appender *t = arg;
  const eim_store_ops *ops = t->k->ops;
  eim_msg batch[KIT_BATCH];
  char cmid[KIT_BATCH][32];
  eim_arena *a = NULL;
  void *conn = NULL;
  eim_err err = {0};

  t->rc = ops->conn_open(t->k->state, &conn, &err);
  if (t->rc != EIM_OK)
    snprintf(t->why, sizeof t->why, "conn_open: %d (%s)", t->rc, err.msg);
  pthread_barrier_wait(t->go);
  for (size_t done = 0; t->rc == EIM_OK && done < KIT_PER_THREAD; done += t->batch) {
    kit_arena_free(a);
    a = kit_arena_new();
    for (size_t j = 0; j < t->batch; j++) {
      snprintf(cmid[j], sizeof cmid[j], "t%d-%zu", t->index, done + j);
      batch[j] = (eim_msg){.conversation_id = t->conv, .sender = t->sender,
                           .client_msg_id = cmid[j], .content_type = "text",
                           .content = cmid[j], .content_len = strlen(cmid[j]),
                           .created_at = t->k->clock};
    }
    t->rc = a != NULL ? ops->append(conn, batch, t->batch, a, &err) : EIM_ENOMEM;
    if (t->rc != EIM_OK) {
      snprintf(t->why, sizeof t->why, "append: %d (%s)", t->rc, err.msg);
      break;
    }
    for (size_t j = 0; j < t->batch; j++) {
      if (batch[j].status != EIM_OK || batch[j].duplicate) {
        t->rc = EIM_EINTERNAL;
        snprintf(t->why, sizeof t->why, "%s: status %d duplicate %d", cmid[j],
                 batch[j].status, batch[j].duplicate);
        break;
      }
      t->seqs[done + j] = batch[j].seq;
    }
  }
  kit_arena_free(a);
  if (conn != NULL)
    ops->conn_close(t->k->state, conn);
  return NULL;
}

static double kit_seconds(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* KIT_THREADS threads, each with its own connection, append KIT_PER_THREAD
 * messages each to one conversation at once, `batch` per call. The seqs must
 * be exactly 1..N, each message once, each thread's in its own order; the
 * history must agree. Prints the rate as a comment line. */
static int concurrent(kit_store *k, size_t batch, const char *label) {
  static kit_appender threads[KIT_THREADS];
  pthread_t tids[KIT_THREADS];
  pthread_barrier_t go;
  const size_t total = (size_t)KIT_THREADS * KIT_PER_THREAD;
  const char *alice, *bob, *c;
  unsigned char *seen;
  eim_msg *all;
  eim_conv conv;
  double t0, secs;
  size_t n;

  if (kit_user(k, kit_fmt(k, "%s.alice", label), &alice) ||
      kit_user(k, kit_fmt(k, "%s.bob", label), &bob) || kit_group(k, alice, &bob, 1, &c))
    return -1;
  kit_time(k);
  pthread_barrier_init(&go, NULL, KIT_THREADS + 1);
  for (int i = 0; i < KIT_THREADS; i++) {
    threads[i] = (kit_appender){.k = k, .go = &go, .conv = c, .sender = i % 2 ? bob : alice,
                                .index = i, .batch = batch};
    pthread_create(&tids[i], NULL, appender, &threads[i]);
  }
  pthread_barrier_wait(&go);
  t0 = kit_seconds();
  for (int i = 0; i < KIT_THREADS; i++)
    pthread_join(tids[i], NULL);
  secs = kit_seconds() - t0;
  pthread_barrier_destroy(&go);
  for (int i = 0; i < KIT_THREADS; i++)
    KIT_EXPECT(k, threads[i].rc == EIM_OK, "thread %d: %s", i, threads[i].why);
  printf("# %s: %zu appends by %d threads in batches of %zu: %.3f s, %.0f appends/s\n",
         label, total, KIT_THREADS, batch, secs, (double)total / secs);

  seen = k->host->arena_alloc(k->a, total + 1);
  KIT_EXPECT(k, seen != NULL, "out of memory");
  memset(seen, 0, total + 1);
  for (int i = 0; i < KIT_THREADS; i++) {
    for (size_t j = 0; j < KIT_PER_THREAD; j++) {
      uint64_t s = threads[i].seqs[j];
      KIT_EXPECT(k, s >= 1 && s <= total, "thread %d got seq %llu, outside 1..%zu", i,
                 (unsigned long long)s, total);
      KIT_EXPECT(k, !seen[s], "seq %llu handed out twice", (unsigned long long)s);
      seen[s] = 1;
      KIT_EXPECT(k, j == 0 || s > threads[i].seqs[j - 1],
                 "thread %d: seq went from %llu to %llu", i,
                 (unsigned long long)threads[i].seqs[j - 1], (unsigned long long)s);
    }
  }
  KIT_OK(k, "conv_get", k->ops->conv_get(k->conn, c, alice, &conv, k->a, &k->err));
  KIT_EXPECT(k, conv.max_seq == total, "max_seq %llu, want %zu",
             (unsigned long long)conv.max_seq, total);
  if (kit_history_all(k, k->conn, c, &all, &n))
    return -1;
  KIT_EXPECT(k, n == total, "history holds %zu messages, want %zu", n, total);
  for (size_t i = 0; i < n; i++) {
    int t;
    size_t j;
    KIT_EXPECT(k, all[i].seq == i + 1, "history position %zu has seq %llu", i,
               (unsigned long long)all[i].seq);
    KIT_EXPECT(k, sscanf(all[i].client_msg_id, "t%d-%zu", &t, &j) == 2 && t >= 0 &&
                      t < KIT_THREADS && j < KIT_PER_THREAD,
               "history has a stranger: %s", all[i].client_msg_id);
    KIT_EXPECT(k, threads[t].seqs[j] == all[i].seq,
               "%s is stored at seq %llu but was acked with %llu", all[i].client_msg_id,
               (unsigned long long)all[i].seq, (unsigned long long)threads[t].seqs[j]);
  }
  return 0;
}

static int append_concurrent(kit_store *k) {
  return concurrent(k, 1, "append.concurrent_gapless");
}

static int append_concurrent_batches(kit_store *k) {
  return concurrent(k, KIT_BATCH, "append.concurrent_batches");
}

/* ---- history ----------------------------------------------------------- */

static int page_is(kit_store *k, const char *c, uint64_t before, uint64_t after, uint32_t limit,
                   uint64_t first, uint64_t last, int has_more) {
  eim_history_q q = {.conversation_id = c, .before_seq = before, .after_seq = after,
                     .limit = limit};
  eim_msg_list page;
  size_t want = first <= last ? (size_t)(last - first + 1) : 0;

  KIT_OK(k, "history", k->ops->history(k->conn, &q, &page, k->a, &k->err));
  KIT_EXPECT(k, page.n == want, "before=%llu after=%llu limit=%u: %zu messages, want %zu",
             (unsigned long long)before, (unsigned long long)after, (unsigned)limit, page.n,
             want);
  for (size_t i = 0; i < page.n; i++) {
    KIT_EXPECT(k, page.items[i].seq == first + i,
               "before=%llu after=%llu limit=%u: position %zu has seq %llu, want %llu",
               (unsigned long long)before, (unsigned long long)after, (unsigned)limit, i,
               (unsigned long long)page.items[i].seq, (unsigned long long)(first + i));
    KIT_EXPECT(k, strcmp(page.items[i].conversation_id, c) == 0, "wrong conversation_id");
  }
  KIT_EXPECT(k, !!page.has_more == has_more, "before=%llu after=%llu limit=%u: has_more %d",
             (unsigned long long)before, (unsigned long long)after, (unsigned)limit,
             page.has_more);
  return 0;
}

static int history_paging(kit_store *k) {
  const char *alice, *bob, *c;
  eim_msg batch[10];
  eim_msg_list page;
  eim_history_q q;

  if (kit_user(k, "h.alice", &alice) || kit_user(k, "h.bob", &bob) ||
      kit_group(k, alice, &bob, 1, &c))
    return -1;
  if (page_is(k, c, 0, 0, 50, 1, 0, 0))
    return -1;
  for (int b = 0; b < 10; b++) {
    for (int i = 0; i < 10; i++) {
      const char *text = kit_fmt(k, "h-%d", b * 10 + i + 1);
      batch[i] = (eim_msg){.conversation_id = c, .sender = i % 3 ? alice : bob,
                           .client_msg_id = text, .content_type = "text", .content = text,
                           .content_len = strlen(text), .created_at = kit_time(k)};
    }
    KIT_OK(k, "append", k->ops->append(k->conn, batch, 10, k->a, &k->err));
  }
  if (page_is(k, c, 0, 0, 10, 91, 100, 1) || page_is(k, c, 0, 0, 200, 1, 100, 0) ||
      page_is(k, c, 0, 0, 100, 1, 100, 0) || page_is(k, c, 0, 0, 99, 2, 100, 1) ||
      page_is(k, c, 0, 30, 20, 31, 50, 1) || page_is(k, c, 0, 80, 20, 81, 100, 0) ||
      page_is(k, c, 0, 90, 20, 91, 100, 0) || page_is(k, c, 0, 100, 20, 1, 0, 0) ||
      page_is(k, c, 0, 1000, 20, 1, 0, 0) || page_is(k, c, 101, 0, 30, 71, 100, 1) ||
      page_is(k, c, 71, 0, 30, 41, 70, 1) || page_is(k, c, 31, 0, 30, 1, 30, 0) ||
      page_is(k, c, 20, 0, 50, 1, 19, 0) || page_is(k, c, 1, 0, 50, 1, 0, 0) ||
      page_is(k, c, 5000, 0, 1, 100, 100, 1) || page_is(k, c, 60, 50, 5, 51, 55, 1))
    return -1;
  q = (eim_history_q){.conversation_id = c, .after_seq = 41, .limit = 1};
  KIT_OK(k, "history", k->ops->history(k->conn, &q, &page, k->a, &k->err));
  KIT_EXPECT(k, page.n == 1 && page.items[0].content_len == 4 &&
                    memcmp(page.items[0].content, "h-42", 4) == 0 &&
                    strcmp(page.items[0].client_msg_id, "h-42") == 0 &&
                    strcmp(page.items[0].sender, alice) == 0 &&
                    strcmp(page.items[0].content_type, "text") == 0,
             "seq 42 does not hold the 42nd message");
  return 0;
}

/* ---- read cursors ------------------------------------------------------ */

static int read_is(kit_store *k, const char *c, const char *user, uint64_t seq,
                   uint64_t want_read, uint64_t want_max) {
  uint64_t r = 0, m = 0;

  KIT_OK(k, "read_set", k->ops->read_set(k->conn, c, user, seq, &r, &m, &k->err));
  KIT_EXPECT(k, r == want_read && m == want_max, "read_set(%llu) gave %llu/%llu, want %llu/%llu",
             (unsigned long long)seq, (unsigned long long)r, (unsigned long long)m,
             (unsigned long long)want_read, (unsigned long long)want_max);
  return 0;
}

static int read_cursor(kit_store *k) {
  const char *alice, *bob, *c;
  eim_msg batch[10];
  eim_conv conv;
  uint64_t r, m;

  if (kit_user(k, "c.alice", &alice) || kit_user(k, "c.bob", &bob) ||
      kit_group(k, alice, &bob, 1, &c))
    return -1;
  if (read_is(k, c, bob, 5, 0, 0))
    return -1;
  for (int i = 0; i < 10; i++)
    batch[i] = (eim_msg){.conversation_id = c, .sender = alice,
                         .client_msg_id = kit_fmt(k, "c-%d", i), .content_type = "text",
                         .content = "x", .content_len = 1, .created_at = kit_time(k)};
  KIT_OK(k, "append", k->ops->append(k->conn, batch, 10, k->a, &k->err));
  if (read_is(k, c, bob, 5, 5, 10) || read_is(k, c, bob, 3, 5, 10) ||
      read_is(k, c, bob, 0, 5, 10) || read_is(k, c, bob, 1000000, 10, 10) ||
      read_is(k, c, bob, 7, 10, 10))
    return -1;
  KIT_OK(k, "conv_get", k->ops->conv_get(k->conn, c, bob, &conv, k->a, &k->err));
  KIT_EXPECT(k, conv.read_seq == 10, "conv_get read_seq %llu, want 10",
             (unsigned long long)conv.read_seq);
  KIT_EXPECT(k, k->ops->read_set(k->conn, "kit-no-such-conv", bob, 1, &r, &m, &k->err) < 0,
             "read_set on an unknown conversation succeeded");
  return 0;
}

static int unread_is(kit_store *k, const char *c, const char *user, uint64_t want_max,
                     uint64_t want_read) {
  eim_conv conv;

  KIT_OK(k, "conv_get", k->ops->conv_get(k->conn, c, user, &conv, k->a, &k->err));
  KIT_EXPECT(k, conv.max_seq == want_max && conv.read_seq == want_read,
             "max_seq/read_seq %llu/%llu (unread %llu), want %llu/%llu",
             (unsigned long long)conv.max_seq, (unsigned long long)conv.read_seq,
             (unsigned long long)(conv.max_seq - conv.read_seq), (unsigned long long)want_max,
             (unsigned long long)want_read);
  return 0;
}

static int read_unread(kit_store *k) {
  const char *alice, *bob, *carol, *c;

  if (kit_user(k, "n.alice", &alice) || kit_user(k, "n.bob", &bob) ||
      kit_user(k, "n.carol", &carol))
    return -1;
  const char *others[] = {bob, carol};
  if (kit_group(k, alice, others, 2, &c) || kit_send(k, c, alice, "n-1", "1", NULL) ||
      kit_send(k, c, alice, "n-2", "2", NULL) || kit_send(k, c, alice, "n-3", "3", NULL))
    return -1;
  if (unread_is(k, c, alice, 3, 3) || unread_is(k, c, bob, 3, 0) ||
      unread_is(k, c, carol, 3, 0))
    return -1;
  if (read_is(k, c, carol, 2, 2, 3) || kit_send(k, c, bob, "n-4", "4", NULL))
    return -1;
  if (unread_is(k, c, bob, 4, 4) || unread_is(k, c, alice, 4, 3) ||
      unread_is(k, c, carol, 4, 2))
    return -1;
  return 0;
}

const kit_check kit_store_msg_checks[] = {
    {"append.seq_from_1", append_first},
    {"append.retry_idempotent", append_retry},
    {"append.batch", append_batch},
    {"append.concurrent_gapless", append_concurrent},
    {"append.concurrent_batches", append_concurrent_batches},
    {"history.paging", history_paging},
    {"read.cursor_forward_clamped", read_cursor},
    {"read.unread_counts", read_unread},
    {NULL, NULL},
};
