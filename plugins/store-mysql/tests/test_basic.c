/* store-mysql.basic: options, connection errors and the store contract on
 * a real MariaDB, with the cases specific to this backend (exact username
 * match, any bytes in content, the pair key of single chats). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "th.h"

static th_plugin P;

static double seconds_since(const struct timespec *t0) {
  struct timespec t1;

  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void test_options(void) {
  const char *unknown[] = {"colour", "blue", NULL};
  const char *bad_port[] = {"port", "70000", NULL};
  const char *twice[] = {"password_file", "/nonexistent", NULL};
  const char *dup_key[] = {"pool_size", "2", "pool_size", "3", NULL};
  eim_opt opts[16];
  eim_err err = {0};
  void *state = NULL;
  size_t n;
  int rc;

  n = th_opts(opts, 16, unknown);
  rc = P.desc->init(&state, &th_host, opts, n, &err);
  TH_CHECK(rc == EIM_EINVAL && strstr(err.msg, "test.conf:6") && strstr(err.msg, "colour"),
           "unknown key: %d '%s'", rc, err.msg);
  /* The bad port replaces the good one and keeps its line, 6. */
  n = th_opts(opts, 16, bad_port);
  opts[1] = opts[n - 1];
  rc = P.desc->init(&state, &th_host, opts, n - 1, &err);
  TH_CHECK(rc == EIM_EINVAL && strstr(err.msg, "test.conf:6"), "bad port: %d '%s'", rc,
           err.msg);
  n = th_opts(opts, 16, twice);
  rc = P.desc->init(&state, &th_host, opts, n, &err);
  TH_CHECK(rc == EIM_EINVAL && strstr(err.msg, "already set"),
           "password and password_file: %d '%s'", rc, err.msg);
  n = th_opts(opts, 16, dup_key);
  rc = P.desc->init(&state, &th_host, opts, n, &err);
  TH_CHECK(rc == EIM_EINVAL && strstr(err.msg, "duplicate"), "duplicate key: %d '%s'", rc,
           err.msg);
}

/* password_file and the pool_size bound. */
static void test_password_file_and_pool(void) {
  char path[] = "/tmp/store-mysql-pw-XXXXXX";
  const char *extra[] = {"password_file", path, "pool_size", "1", NULL};
  eim_opt opts[16];
  eim_err err = {0};
  void *state = NULL, *c1 = NULL, *c2 = NULL;
  size_t n, i;
  int fd, rc;
  FILE *f;

  fd = mkstemp(path);
  TH_CHECK(fd >= 0, "mkstemp");
  if (fd < 0)
    return;
  f = fdopen(fd, "w");
  fprintf(f, "%s\n", getenv("MYSQL_PASSWORD"));
  fclose(f);
  n = th_opts(opts, 16, extra);
  /* Drop the password line th_opts added: the file is the one source. */
  for (i = 0; i < n; i++)
    if (strcmp(opts[i].key, "password") == 0)
      opts[i] = opts[--n];
  rc = P.desc->init(&state, &th_host, opts, n, &err);
  TH_CHECK(rc == EIM_OK, "init with password_file: %d %s", rc, err.msg);
  if (rc == EIM_OK) {
    TH_OK(P.ops->conn_open(state, &c1, &err), &err);
    rc = P.ops->conn_open(state, &c2, &err);
    TH_CHECK(rc == EIM_EINVAL && strstr(err.msg, "pool_size"), "over pool_size: %d %s",
             rc, err.msg);
    P.ops->conn_close(state, c1);
    TH_OK(P.ops->conn_open(state, &c2, &err), &err);
    P.ops->conn_close(state, c2);
    P.desc->fini(state);
  }
  unlink(path);
}

/* Nothing listens on port 1: EIM_EUNAVAIL naming host and port, at once. */
static void test_unreachable(void) {
  const char *extra[] = {"connect_timeout", "2", NULL};
  eim_opt opts[16];
  eim_err err = {0};
  struct timespec t0;
  void *state = NULL, *conn = NULL;
  size_t n;
  int rc;

  n = th_opts(opts, 16, extra);
  opts[1].value = "1";
  TH_OK(P.desc->init(&state, &th_host, opts, n, &err), &err);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  rc = P.ops->conn_open(state, &conn, &err);
  TH_CHECK(rc == EIM_EUNAVAIL && strstr(err.msg, ":1") && strstr(err.msg, opts[0].value),
           "conn_open on a closed port: %d '%s'", rc, err.msg);
  TH_CHECK(seconds_since(&t0) < 3, "conn_open took %.1fs", seconds_since(&t0));
  P.desc->fini(state);
}

static void test_users(void *conn) {
  eim_arena *a = th_arena_new();
  const char *name = th_unique(a, "Mixed");
  char *lower = strdup(name), *padded = malloc(strlen(name) + 2);
  eim_user u, v;
  eim_err err = {0};
  int rc;

  lower[0] = 'm';
  sprintf(padded, "%s ", name);
  TH_OK(P.ops->user_create(conn, name, "$argon2id$hash", 42, &u, a, &err), &err);
  rc = P.ops->user_create(conn, name, "$argon2id$other", 43, &v, a, &err);
  TH_CHECK(rc == EIM_ECONFLICT, "second user_create: %d", rc);
  TH_OK(P.ops->user_by_name(conn, name, &v, a, &err), &err);
  TH_CHECK(strcmp(v.user_id, u.user_id) == 0 && strcmp(v.password_hash, "$argon2id$hash") == 0
               && v.created_at == 42,
           "user_by_name returned another user");
  TH_CHECK(P.ops->user_by_name(conn, lower, &v, a, &err) == EIM_ENOTFOUND,
           "user_by_name is not case-sensitive");
  TH_CHECK(P.ops->user_by_name(conn, padded, &v, a, &err) == EIM_ENOTFOUND,
           "user_by_name ignores a trailing space");
  TH_OK(P.ops->user_create(conn, lower, "$argon2id$x", 44, &v, a, &err), &err);
  TH_OK(P.ops->user_by_id(conn, u.user_id, &v, a, &err), &err);
  TH_CHECK(strcmp(v.username, name) == 0, "user_by_id: %s", v.username);
  TH_CHECK(P.ops->user_by_id(conn, "u999999999999", &v, a, &err) == EIM_ENOTFOUND,
           "unknown user_id");
  TH_CHECK(P.ops->user_by_id(conn, "x'; DROP TABLE users; --", &v, a, &err) == EIM_ENOTFOUND,
           "malformed user_id");
  free(lower);
  free(padded);
  th_arena_free(a);
}

typedef struct race {
  void *state;
  const char *a, *b;
  char id[64];
  int rc;
} race;

static void *race_single(void *arg) {
  race *r = arg;
  eim_arena *a = th_arena_new();
  const char *peer[1] = {r->b};
  eim_conv_new req = {.type = EIM_CONV_SINGLE, .creator = r->a, .members = peer,
                      .nmembers = 1, .created_at = th_now()};
  eim_conv c;
  eim_err err = {0};
  void *conn = NULL;
  int existed;

  r->rc = P.ops->conn_open(r->state, &conn, &err);
  if (r->rc == EIM_OK)
    r->rc = P.ops->conv_create(conn, &req, &c, &existed, a, &err);
  if (r->rc == EIM_OK)
    snprintf(r->id, sizeof r->id, "%s", c.conversation_id);
  else
    fprintf(stderr, "race: %d %s\n", r->rc, err.msg);
  if (conn != NULL)
    P.ops->conn_close(r->state, conn);
  th_arena_free(a);
  return NULL;
}

static void test_conversations(void *state, void *conn) {
  eim_arena *a = th_arena_new();
  const char *u1 = th_user(&P, conn, a, "c1"), *u2 = th_user(&P, conn, a, "c2");
  const char *u3 = th_user(&P, conn, a, "c3"), *u4 = th_user(&P, conn, a, "c4");
  const char *peer[1] = {u2}, *back[1] = {u1}, *self[1] = {u1};
  const char *members[3] = {u2, u2, u1}, *add[3] = {u3, u2, u3}, *bad[2] = {u4, "u0"};
  eim_conv_new req = {.type = EIM_CONV_SINGLE, .creator = u1, .members = peer,
                      .nmembers = 1, .created_at = th_now()};
  eim_conv c, d;
  eim_id_list ids;
  eim_err err = {0};
  race r[4];
  pthread_t t[4];
  const char *g;
  int existed, rc, i;

  TH_OK(P.ops->conv_create(conn, &req, &c, &existed, a, &err), &err);
  TH_CHECK(existed == 0 && c.type == EIM_CONV_SINGLE && c.nmembers == 2 &&
               strcmp(c.members[0], u1) == 0 && strcmp(c.name, "") == 0,
           "new single chat");
  req.creator = u2;
  req.members = back;
  TH_OK(P.ops->conv_create(conn, &req, &d, &existed, a, &err), &err);
  TH_CHECK(existed == 1 && strcmp(c.conversation_id, d.conversation_id) == 0,
           "single chat from the other side is not the same one");
  req.creator = u1;
  req.members = self;
  rc = P.ops->conv_create(conn, &req, &d, &existed, a, &err);
  TH_CHECK(rc == EIM_EINVAL, "single chat with oneself: %d", rc);

  /* Four workers creating the same new pair get one conversation. */
  for (i = 0; i < 4; i++) {
    r[i] = (race){.state = state, .a = i % 2 ? u3 : u4, .b = i % 2 ? u4 : u3};
    pthread_create(&t[i], NULL, race_single, &r[i]);
  }
  for (i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    TH_CHECK(r[i].rc == EIM_OK && strcmp(r[i].id, r[0].id) == 0,
             "racing single chats: %d %s vs %s", r[i].rc, r[i].id, r[0].id);
  }

  g = th_group(&P, conn, a, u1, members, 3);
  TH_OK(P.ops->conv_members(conn, g, &ids, a, &err), &err);
  TH_CHECK(ids.n == 2 && strcmp(ids.ids[0], u1) == 0 && strcmp(ids.ids[1], u2) == 0,
           "group members: %zu", ids.n);
  TH_OK(P.ops->conv_add_members(conn, g, add, 3, th_now(), &err), &err);
  rc = P.ops->conv_add_members(conn, g, bad, 2, th_now(), &err);
  TH_CHECK(rc == EIM_ENOTFOUND, "adding an unknown user: %d", rc);
  TH_OK(P.ops->conv_members(conn, g, &ids, a, &err), &err);
  TH_CHECK(ids.n == 3 && strcmp(ids.ids[2], u3) == 0, "members after add: %zu", ids.n);
  rc = P.ops->conv_add_members(conn, c.conversation_id, add, 1, th_now(), &err);
  TH_CHECK(rc == EIM_EINVAL, "adding to a single chat: %d", rc);
  TH_CHECK(P.ops->conv_members(conn, "c999999999999", &ids, a, &err) == EIM_ENOTFOUND,
           "members of an unknown conversation");
  TH_OK(P.ops->user_peers(conn, u2, &ids, a, &err), &err);
  TH_CHECK(ids.n == 2, "peers of u2: %zu", ids.n);
  th_arena_free(a);
}

static void test_messages(void *conn) {
  static const char content[] = "a\0b \xF0\x9F\x98\x80 \xff\xfe end";
  eim_arena *a = th_arena_new();
  const char *u1 = th_user(&P, conn, a, "m1"), *u2 = th_user(&P, conn, a, "m2");
  const char *others[1] = {u2};
  const char *g1 = th_group(&P, conn, a, u1, others, 1);
  const char *g2 = th_group(&P, conn, a, u1, others, 1);
  eim_msg b[4];
  eim_msg_list page;
  eim_conv_list list;
  eim_conv cv;
  eim_err err = {0};
  uint64_t rs, ms;
  int rc, i;

  b[0] = (eim_msg){.conversation_id = g1, .sender = u1, .client_msg_id = "k1",
                   .content_type = "text", .content = content,
                   .content_len = sizeof content - 1, .created_at = 1000};
  b[1] = (eim_msg){.conversation_id = "c999999999999", .sender = u1,
                   .client_msg_id = "k2", .content = "x", .content_len = 1,
                   .created_at = 1001};
  b[2] = (eim_msg){.conversation_id = g1, .sender = u1, .client_msg_id = "k1",
                   .content = "other", .content_len = 5, .created_at = 1002};
  b[3] = (eim_msg){.conversation_id = g1, .sender = u2, .client_msg_id = "k1",
                   .content = "u2", .content_len = 2, .created_at = 1003};
  TH_OK(P.ops->append(conn, b, 4, a, &err), &err);
  TH_CHECK(b[0].status == EIM_OK && b[0].seq == 1 && !b[0].duplicate, "first message");
  TH_CHECK(b[1].status == EIM_ENOTFOUND, "unknown conversation: %d", b[1].status);
  TH_CHECK(b[2].status == EIM_OK && b[2].duplicate && b[2].seq == 1 &&
               strcmp(b[2].msg_id, b[0].msg_id) == 0 &&
               b[2].content_len == sizeof content - 1 && b[2].created_at == 1000,
           "retry in the same batch");
  TH_CHECK(b[3].status == EIM_OK && b[3].seq == 2 && !b[3].duplicate,
           "same client_msg_id from another sender");
  /* Someone outside the group: refused, and no seq is used up. */
  b[0] = (eim_msg){.conversation_id = g1, .sender = th_user(&P, conn, a, "m3"),
                   .client_msg_id = "k9", .content = "x", .content_len = 1,
                   .created_at = 1004};
  TH_OK(P.ops->append(conn, b, 1, a, &err), &err);
  TH_CHECK(b[0].status == EIM_ENOTFOUND && b[0].seq == 0, "non-member sender: %d",
           b[0].status);

  TH_OK(P.ops->history(conn, &(eim_history_q){.conversation_id = g1, .limit = 10}, &page,
                       a, &err),
        &err);
  TH_CHECK(page.n == 2 && page.items[0].content_len == sizeof content - 1 &&
               memcmp(page.items[0].content, content, sizeof content - 1) == 0 &&
               strcmp(page.items[0].content_type, "text") == 0 && !page.has_more,
           "content does not round-trip byte for byte");

  for (i = 0; i < 5; i++) {
    char cmid[16];
    snprintf(cmid, sizeof cmid, "p%d", i);
    b[0] = (eim_msg){.conversation_id = g1, .sender = u2, .client_msg_id = cmid,
                     .content = cmid, .content_len = strlen(cmid),
                     .created_at = 2000 + i};
    TH_OK(P.ops->append(conn, b, 1, a, &err), &err);
  }
  /* Seqs 1..7 now: page backwards and forwards. */
  TH_OK(P.ops->history(conn, &(eim_history_q){.conversation_id = g1, .limit = 3}, &page,
                       a, &err),
        &err);
  TH_CHECK(page.n == 3 && page.items[0].seq == 5 && page.items[2].seq == 7 && page.has_more,
           "latest page");
  TH_OK(P.ops->history(conn,
                       &(eim_history_q){.conversation_id = g1, .before_seq = 3, .limit = 3},
                       &page, a, &err),
        &err);
  TH_CHECK(page.n == 2 && page.items[0].seq == 1 && !page.has_more, "before_seq page");
  TH_OK(P.ops->history(conn,
                       &(eim_history_q){.conversation_id = g1, .after_seq = 4, .limit = 2},
                       &page, a, &err),
        &err);
  TH_CHECK(page.n == 2 && page.items[0].seq == 5 && page.has_more, "after_seq page");
  rc = P.ops->history(conn, &(eim_history_q){.conversation_id = "c999999999999", .limit = 2},
                      &page, a, &err);
  TH_CHECK(rc == EIM_ENOTFOUND, "history of an unknown conversation: %d", rc);

  /* u2 sent seq 7, so it has read it; u1 read seq 1 by sending it. */
  TH_OK(P.ops->conv_get(conn, g1, u2, &cv, a, &err), &err);
  TH_CHECK(cv.max_seq == 7 && cv.read_seq == 7 && cv.last_message &&
               cv.last_message->seq == 7 && cv.last_activity == 2004,
           "conv_get as the last sender");
  TH_OK(P.ops->read_set(conn, g1, u1, 4, &rs, &ms, &err), &err);
  TH_CHECK(rs == 4 && ms == 7, "read_set 4: %llu/%llu", (unsigned long long)rs,
           (unsigned long long)ms);
  TH_OK(P.ops->read_set(conn, g1, u1, 2, &rs, &ms, &err), &err);
  TH_CHECK(rs == 4, "read cursor moved back to %llu", (unsigned long long)rs);
  TH_OK(P.ops->read_set(conn, g1, u1, 99, &rs, &ms, &err), &err);
  TH_CHECK(rs == 7, "read cursor beyond max_seq: %llu", (unsigned long long)rs);

  /* g2 gets a newer message than g1's last: it comes first. */
  b[0] = (eim_msg){.conversation_id = g2, .sender = u1, .client_msg_id = "late",
                   .content = "late", .content_len = 4, .created_at = 3000};
  TH_OK(P.ops->append(conn, b, 1, a, &err), &err);
  TH_OK(P.ops->conv_list(conn, u2, &list, a, &err), &err);
  TH_CHECK(list.n == 2 && strcmp(list.items[0].conversation_id, g2) == 0 &&
               strcmp(list.items[1].conversation_id, g1) == 0 &&
               list.items[0].last_message && list.items[0].last_message->seq == 1 &&
               list.items[1].nmembers == 2 && list.items[0].read_seq == 0 &&
               list.items[1].read_seq == 7,
           "conv_list order and contents");

  /* New messages around a retry of a stored one: the first attempt inserts
   * without looking client_msg_ids up, hits the unique key and runs again
   * with the look-up; the new ones still get seqs 2 and 3, no gap. */
  b[0] = (eim_msg){.conversation_id = g2, .sender = u1, .client_msg_id = "n1",
                   .content = "n1", .content_len = 2, .created_at = 3001};
  b[1] = (eim_msg){.conversation_id = g2, .sender = u1, .client_msg_id = "late",
                   .content = "again", .content_len = 5, .created_at = 3002};
  b[2] = (eim_msg){.conversation_id = g2, .sender = u1, .client_msg_id = "n2",
                   .content = "n2", .content_len = 2, .created_at = 3003};
  TH_OK(P.ops->append(conn, b, 3, a, &err), &err);
  TH_CHECK(b[0].status == EIM_OK && b[0].seq == 2 && !b[0].duplicate &&
               b[1].status == EIM_OK && b[1].seq == 1 && b[1].duplicate &&
               b[1].content_len == 4 && memcmp(b[1].content, "late", 4) == 0 &&
               b[2].status == EIM_OK && b[2].seq == 3 && !b[2].duplicate,
           "new messages around a stored retry: seqs %llu %llu %llu, duplicate %d",
           (unsigned long long)b[0].seq, (unsigned long long)b[1].seq,
           (unsigned long long)b[2].seq, b[1].duplicate);
  TH_OK(P.ops->history(conn, &(eim_history_q){.conversation_id = g2, .limit = 10}, &page,
                       a, &err),
        &err);
  TH_CHECK(page.n == 3 && page.items[2].seq == 3, "g2 holds %zu messages", page.n);
  th_arena_free(a);
}

#define WIDE 150 /* conversations in one batch: three statement chunks */

/* One batch over WIDE conversations, in no key order, mixing new messages,
 * repeats inside the batch, a non-member and an unknown conversation; then
 * the same batch again, all retries. Per conversation, seqs follow batch
 * order. */
static void test_wide_batch(void *conn) {
  static eim_msg b[4 * WIDE + 1], first[4 * WIDE + 1];
  static const char *const cmid[4] = {"w-a", "w-a", "w-a", "w-b"};
  eim_arena *a = th_arena_new();
  const char *u1 = th_user(&P, conn, a, "w1"), *u2 = th_user(&P, conn, a, "w2");
  const char *u3 = th_user(&P, conn, a, "w3");
  const char *g[WIDE], *even[1] = {u2}, *odd[1] = {u3};
  size_t r, j, i, n = 0;
  int pass, member, ok;
  eim_err err = {0};
  eim_conv cv;
  eim_msg *m;

  for (i = 0; i < WIDE; i++)
    g[i] = th_group(&P, conn, a, u1, i % 2 ? odd : even, 1);
  for (r = 0; r < 4; r++)
    for (j = 0; j < WIDE; j++)
      b[n++] = (eim_msg){.conversation_id = g[j * 7 % WIDE],
                         .sender = r == 1 ? u2 : u1, .client_msg_id = cmid[r],
                         .content = cmid[r], .content_len = 3,
                         .created_at = 5000 + (int64_t)r};
  b[n++] = (eim_msg){.conversation_id = "c999999999999", .sender = u1,
                     .client_msg_id = "w-a", .content = "x", .content_len = 1};
  memcpy(first, b, sizeof b);
  for (pass = 0; pass < 2; pass++) {
    memcpy(b, first, sizeof b);
    TH_OK(P.ops->append(conn, b, n, a, &err), &err);
    for (i = 0, ok = 1; i + 1 < n; i++) {
      m = &b[i];
      r = i / WIDE;
      member = (i % WIDE) * 7 % WIDE % 2 == 0;
      if (r == 1 && !member)
        ok &= m->status == EIM_ENOTFOUND && m->seq == 0;
      else if (r == 3)
        ok &= m->status == EIM_OK && m->seq == (member ? 3u : 2u) &&
              m->duplicate == pass;
      else if (r == 1)
        ok &= m->status == EIM_OK && m->seq == 2 && m->duplicate == pass;
      else /* the first send, and its repeat */
        ok &= m->status == EIM_OK && m->seq == 1 && m->duplicate == (pass || r == 2);
      TH_CHECK(ok, "wide batch pass %d message %zu: status %d seq %llu dup %d", pass,
               i, m->status, (unsigned long long)m->seq, m->duplicate);
      if (!ok)
        break;
    }
    TH_CHECK(b[n - 1].status == EIM_ENOTFOUND, "wide batch: unknown conversation %d",
             b[n - 1].status);
    TH_CHECK(strcmp(b[2 * WIDE].msg_id, b[0].msg_id) == 0 &&
                 b[2 * WIDE].created_at == 5000,
             "wide batch: a repeat answers with the first message");
  }
  for (i = 0; i < WIDE; i++) {
    TH_OK(P.ops->conv_get(conn, g[i], u1, &cv, a, &err), &err);
    TH_CHECK(cv.max_seq == (i % 2 ? 2u : 3u) && cv.read_seq == cv.max_seq &&
                 cv.last_activity == 5003,
             "wide batch: conversation %zu max_seq %llu read_seq %llu", i,
             (unsigned long long)cv.max_seq, (unsigned long long)cv.read_seq);
    if (i % 2 == 0) {
      TH_OK(P.ops->conv_get(conn, g[i], u2, &cv, a, &err), &err);
      TH_CHECK(cv.read_seq == 2, "wide batch: u2's cursor in %zu at %llu", i,
               (unsigned long long)cv.read_seq);
    }
  }
  th_arena_free(a);
}

int th_main_basic(const char *plugin) {
  void *state = NULL, *conn;

  th_load(&P, plugin);
  test_options();
  test_password_file_and_pool();
  test_unreachable();
  conn = th_open(&P, &state, NULL);
  test_users(conn);
  test_conversations(state, conn);
  test_messages(conn);
  test_wide_batch(conn);
  P.ops->conn_close(state, conn);
  P.desc->fini(state);
  printf("store-mysql.basic: %s\n", th_failures ? "FAILED" : "passed");
  return th_failures ? 1 : 0;
}
