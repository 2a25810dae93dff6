/*
 * store-sqlite specifics the conformance kit cannot know about: options,
 * the default path, the schema version, reopening, a newer schema, busy
 * databases, acked messages surviving SIGKILL of the process, committed
 * WAL writes visible to other connections in synchronous = full, and
 * checkpoints on the plugin's own thread.
 *
 * Usage: test_store_sqlite PATH/TO/store-sqlite.so
 */
#include "kit.h"

#include <dlfcn.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const eim_plugin_desc *desc;
static eim_host host;
static char why[1024];

#define CHECK(cond, ...)                          \
  do {                                            \
    if (!(cond)) {                                \
      snprintf(why, sizeof why, __VA_ARGS__);     \
      goto fail;                                  \
    }                                             \
  } while (0)

static const char *data_dir(void) {
  return host.config_get(&host, "data_dir");
}

static char *path_in(const char *name) {
  static char buf[4][256];
  static int next;
  char *p = buf[next++ % 4];

  snprintf(p, sizeof buf[0], "%s/%s", data_dir(), name);
  return p;
}

/* Runs one SQL statement on the file directly; returns the first column of
 * the first row as an int, or -1. */
static int sql_int(const char *file, const char *sql) {
  sqlite3 *db = NULL;
  sqlite3_stmt *s = NULL;
  int v = -1;

  if (sqlite3_open_v2(file, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK) {
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
      v = sqlite3_column_int(s, 0);
    else if (rc == SQLITE_DONE)
      v = 0;
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return v;
}

static int start(const char *file, const char *sync, void **state, void **conn,
                 eim_err *err) {
  eim_opt opts[2] = {{"path", file, "test.conf", 1}, {"synchronous", sync, "test.conf", 2}};
  int code = desc->init(state, &host, opts, sync != NULL ? 2 : 1, err);

  if (code != EIM_OK)
    return code;
  code = desc->store->conn_open(*state, conn, err);
  if (code != EIM_OK)
    desc->fini(*state);
  return code;
}

static void stop(void *state, void *conn) {
  desc->store->conn_close(state, conn);
  desc->fini(state);
}

static int test_options(void) {
  eim_err err = {0};
  void *state = NULL;
  const eim_opt unknown[] = {{"path", path_in("o.db"), "store.conf", 3},
                             {"colour", "blue", "store.conf", 7}};
  const eim_opt bad_sync[] = {{"synchronous", "sometimes", "store.conf", 4}};
  const eim_opt bad_busy[] = {{"busy_timeout_ms", "5s", "store.conf", 5}};
  const eim_opt bad_ckpt[] = {{"checkpoint_pages", "99", "store.conf", 6}};
  const eim_opt twice[] = {{"path", path_in("a.db"), "store.conf", 1},
                           {"path", path_in("b.db"), "store.conf", 2}};

  CHECK(desc->init(&state, &host, unknown, 2, &err) == EIM_EINVAL, "unknown key accepted");
  CHECK(strstr(err.msg, "store.conf:7") && strstr(err.msg, "colour"),
        "message does not name file, line and key: %s", err.msg);
  CHECK(desc->init(&state, &host, bad_sync, 1, &err) == EIM_EINVAL &&
            strstr(err.msg, "store.conf:4"),
        "bad synchronous: %s", err.msg);
  CHECK(desc->init(&state, &host, bad_busy, 1, &err) == EIM_EINVAL &&
            strstr(err.msg, "store.conf:5"),
        "bad busy_timeout_ms: %s", err.msg);
  CHECK(desc->init(&state, &host, bad_ckpt, 1, &err) == EIM_EINVAL &&
            strstr(err.msg, "store.conf:6") && strstr(err.msg, "100"),
        "bad checkpoint_pages: %s", err.msg);
  CHECK(desc->init(&state, &host, twice, 2, &err) == EIM_EINVAL &&
            strstr(err.msg, "store.conf:2"),
        "repeated key: %s", err.msg);
  return 0;
fail:
  return -1;
}

static int test_default_path_and_schema(void) {
  eim_err err = {0};
  void *state = NULL;
  const char *file = path_in("exampleim.db");
  struct stat sb;

  CHECK(desc->init(&state, &host, NULL, 0, &err) == EIM_OK, "init: %s", err.msg);
  desc->fini(state);
  CHECK(stat(file, &sb) == 0, "no database at %s", file);
  CHECK(sql_int(file, "SELECT version FROM schema_version") == 1, "schema_version is not 1");
  CHECK(sql_int(file, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN"
                      " ('users', 'conversations', 'members', 'messages')") == 4,
        "tables missing");
  CHECK(sql_int(file, "SELECT journal_mode = 'wal' FROM pragma_journal_mode") == 1,
        "not in WAL mode");
  return 0;
fail:
  return -1;
}

static int test_reopen(void) {
  const eim_store_ops *o = desc->store;
  const char *file = path_in("reopen.db");
  eim_arena *a = kit_arena_new();
  eim_err err = {0};
  void *state, *conn;
  eim_user alice, bob;
  eim_conv conv;
  int existed;
  eim_msg m = {.client_msg_id = "m1", .content_type = "text", .content = "hi",
               .content_len = 2, .created_at = 5};
  int rc = -1;

  CHECK(start(file, NULL, &state, &conn, &err) == EIM_OK, "start: %s", err.msg);
  o->user_create(conn, "alice", "h", 1, &alice, a, &err);
  o->user_create(conn, "bob", "h", 2, &bob, a, &err);
  eim_conv_new req = {.type = EIM_CONV_SINGLE, .name = "", .creator = alice.user_id,
                      .members = &bob.user_id, .nmembers = 1, .created_at = 3};
  o->conv_create(conn, &req, &conv, &existed, a, &err);
  m.conversation_id = conv.conversation_id;
  m.sender = alice.user_id;
  CHECK(o->append(conn, &m, 1, a, &err) == EIM_OK && m.seq == 1, "append: %s", err.msg);
  stop(state, conn);

  CHECK(start(file, NULL, &state, &conn, &err) == EIM_OK, "restart: %s", err.msg);
  CHECK(o->user_by_name(conn, "bob", &bob, a, &err) == EIM_OK, "bob lost: %s", err.msg);
  CHECK(o->conv_create(conn, &req, &conv, &existed, a, &err) == EIM_OK && existed == 1,
        "single chat lost");
  CHECK(conv.max_seq == 1 && conv.read_seq == 1, "max_seq/read_seq %llu/%llu",
        (unsigned long long)conv.max_seq, (unsigned long long)conv.read_seq);
  m.client_msg_id = "m2";
  CHECK(o->append(conn, &m, 1, a, &err) == EIM_OK && m.seq == 2, "seq after reopen %llu",
        (unsigned long long)m.seq);
  rc = 0;
fail:
  if (state != NULL)
    stop(state, conn);
  kit_arena_free(a);
  return rc;
}

static int test_newer_schema(void) {
  const char *file = path_in("newer.db");
  eim_err err = {0};
  void *state, *conn;

  CHECK(start(file, NULL, &state, &conn, &err) == EIM_OK, "start: %s", err.msg);
  stop(state, conn);
  CHECK(sql_int(file, "UPDATE schema_version SET version = 99") == 0, "cannot edit version");
  CHECK(start(file, NULL, &state, &conn, &err) == EIM_EINVAL && strstr(err.msg, "newer"),
        "a newer schema was accepted: %s", err.msg);
  return 0;
fail:
  return -1;
}

/* Another process-like writer holds the lock longer than busy_timeout_ms:
 * the append gives up with EIM_EUNAVAIL, then works once the lock is gone. */
static int test_busy(void) {
  const eim_store_ops *o = desc->store;
  const char *file = path_in("busy.db");
  eim_opt opts[] = {{"path", file, "t", 1}, {"busy_timeout_ms", "50", "t", 2}};
  eim_arena *a = kit_arena_new();
  eim_err err = {0};
  void *state = NULL, *conn = NULL;
  sqlite3 *other = NULL;
  eim_user u;
  eim_conv conv;
  int existed;
  int rc = -1;

  CHECK(desc->init(&state, &host, opts, 2, &err) == EIM_OK, "init: %s", err.msg);
  CHECK(o->conn_open(state, &conn, &err) == EIM_OK, "conn_open: %s", err.msg);
  o->user_create(conn, "carol", "h", 1, &u, a, &err);
  eim_conv_new req = {.type = EIM_CONV_GROUP, .name = "g", .creator = u.user_id,
                      .created_at = 2};
  o->conv_create(conn, &req, &conv, &existed, a, &err);
  eim_msg m = {.conversation_id = conv.conversation_id, .sender = u.user_id,
               .client_msg_id = "b1", .content_type = "text", .content = "x",
               .content_len = 1, .created_at = 3};
  CHECK(sqlite3_open(file, &other) == SQLITE_OK &&
            sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK,
        "cannot take the lock");
  CHECK(o->append(conn, &m, 1, a, &err) == EIM_EUNAVAIL && m.status == EIM_EUNAVAIL,
        "append under a held lock gave %d: %s", m.status, err.msg);
  CHECK(o->user_create(conn, "dave", "h", 4, &u, a, &err) == EIM_EUNAVAIL,
        "user_create under a held lock did not give EIM_EUNAVAIL");
  sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
  CHECK(o->append(conn, &m, 1, a, &err) == EIM_OK && m.seq == 1, "append after the lock: %s",
        err.msg);
  rc = 0;
fail:
  sqlite3_close(other);
  if (conn != NULL)
    o->conn_close(state, conn);
  if (state != NULL)
    desc->fini(state);
  kit_arena_free(a);
  return rc;
}

#define KILL_AFTER 300

/* The child appends one message at a time and reports each ack's seq on
 * the pipe; it never returns. */
static void kill_child(const char *file, const char *sync, const char *conv,
                       const char *sender, int out) {
  void *state, *conn;
  eim_err err = {0};
  char cmid[32];

  if (start(file, sync, &state, &conn, &err) != EIM_OK)
    _exit(3);
  for (unsigned i = 1;; i++) {
    eim_arena *a = kit_arena_new();
    snprintf(cmid, sizeof cmid, "k%u", i);
    eim_msg m = {.conversation_id = conv, .sender = sender, .client_msg_id = cmid,
                 .content_type = "text", .content = cmid, .content_len = strlen(cmid),
                 .created_at = i};
    if (a == NULL || desc->store->append(conn, &m, 1, a, &err) != EIM_OK || m.seq != i)
      _exit(4);
    kit_arena_free(a);
    if (write(out, &m.seq, sizeof m.seq) != (ssize_t)sizeof m.seq)
      _exit(5);
  }
}

/* Kills a writer with SIGKILL after KILL_AFTER acks: every acked message
 * must be there when the database is opened again. */
static int test_sigkill(const char *sync) {
  const eim_store_ops *o = desc->store;
  const char *file = path_in(sync[0] == 'f' ? "kill-full.db" : "kill-normal.db");
  eim_arena *a = kit_arena_new();
  eim_err err = {0};
  void *state = NULL, *conn = NULL;
  eim_user u;
  eim_conv conv;
  eim_msg_list page;
  int existed, fds[2] = {-1, -1}, status;
  uint64_t seq = 0;
  size_t acked = 0;
  pid_t pid = -1;
  int rc = -1;

  CHECK(start(file, sync, &state, &conn, &err) == EIM_OK, "start: %s", err.msg);
  o->user_create(conn, "erin", "h", 1, &u, a, &err);
  eim_conv_new req = {.type = EIM_CONV_GROUP, .name = "k", .creator = u.user_id,
                      .created_at = 2};
  o->conv_create(conn, &req, &conv, &existed, a, &err);
  stop(state, conn);
  state = NULL;
  CHECK(pipe(fds) == 0, "pipe");
  fflush(NULL);
  pid = fork();
  CHECK(pid >= 0, "fork");
  if (pid == 0) {
    close(fds[0]);
    kill_child(file, sync, conv.conversation_id, u.user_id, fds[1]);
  }
  close(fds[1]);
  fds[1] = -1;
  while (acked < KILL_AFTER && read(fds[0], &seq, sizeof seq) == (ssize_t)sizeof seq)
    acked++;
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  pid = -1;
  CHECK(acked == KILL_AFTER, "the writer died after %zu acks", acked);

  CHECK(start(file, sync, &state, &conn, &err) == EIM_OK, "restart: %s", err.msg);
  for (uint64_t from = 0; from < acked; from += page.n) {
    /* after_seq 0 means "latest", so the first page is "before 201". */
    eim_history_q q = {.conversation_id = conv.conversation_id, .after_seq = from,
                       .before_seq = from + 201, .limit = 200};
    CHECK(o->history(conn, &q, &page, a, &err) == EIM_OK && page.n > 0,
          "history after the kill: %s", err.msg);
    for (size_t i = 0; i < page.n; i++)
      CHECK(page.items[i].seq == from + i + 1, "seq %llu missing after the kill",
            (unsigned long long)(from + i + 1));
  }
  rc = 0;
fail:
  if (pid > 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  if (fds[0] >= 0)
    close(fds[0]);
  if (fds[1] >= 0)
    close(fds[1]);
  if (state != NULL)
    stop(state, conn);
  kit_arena_free(a);
  return rc;
}

static int test_sigkill_full(void) {
  return test_sigkill("full");
}

static int test_sigkill_normal(void) {
  return test_sigkill("normal");
}

/* synchronous = full goes through sq_vfs.c, which holds a commit's WAL
 * writes until the commit's sync. While the plugin's connection is still
 * open, a plain SQLite connection (the default VFS, its own file handle)
 * must see every committed message, the big one written in pieces over
 * 128 KiB included, and find the file sound. Appends by a non-member and
 * to an unknown conversation store nothing. */
static int test_full_reads_through(void) {
  const eim_store_ops *o = desc->store;
  const char *file = path_in("through.db");
  eim_arena *a = kit_arena_new();
  eim_err err = {0};
  void *state = NULL, *conn = NULL;
  eim_user u, other;
  eim_conv conv;
  eim_msg batch[40];
  char cmid[40][16];
  size_t big_len = 300 * 1024;
  char *big = malloc(big_len);
  int existed;
  int rc = -1;

  CHECK(big != NULL, "out of memory");
  for (size_t i = 0; i < big_len; i++)
    big[i] = (char)('a' + i % 26);
  CHECK(start(file, "full", &state, &conn, &err) == EIM_OK, "start: %s", err.msg);
  o->user_create(conn, "rita", "h", 1, &u, a, &err);
  o->user_create(conn, "sam", "h", 1, &other, a, &err);
  eim_conv_new req = {.type = EIM_CONV_GROUP, .name = "t", .creator = u.user_id,
                      .created_at = 2};
  CHECK(o->conv_create(conn, &req, &conv, &existed, a, &err) == EIM_OK, "conv: %s", err.msg);
  for (int round = 0; round < 3; round++) {
    for (size_t i = 0; i < 40; i++) {
      snprintf(cmid[i], sizeof cmid[i], "r%d-%zu", round, i);
      batch[i] = (eim_msg){.conversation_id = conv.conversation_id, .sender = u.user_id,
                           .client_msg_id = cmid[i], .content_type = "text",
                           .content = i == 7 ? big : "hello", .content_len = i == 7 ? big_len : 5,
                           .created_at = 3};
    }
    batch[39].sender = other.user_id; /* not a member */
    CHECK(o->append(conn, batch, 40, a, &err) == EIM_OK, "append: %s", err.msg);
    for (size_t i = 0; i < 39; i++)
      CHECK(batch[i].status == EIM_OK && batch[i].seq == (uint64_t)round * 39 + i + 1,
            "round %d message %zu: status %d seq %llu", round, i, batch[i].status,
            (unsigned long long)batch[i].seq);
    CHECK(batch[39].status == EIM_ENOTFOUND, "a non-member's append: status %d",
          batch[39].status);
    CHECK(sql_int(file, "SELECT count(*) FROM messages") == (round + 1) * 39,
          "round %d: a plain connection counts %d messages", round,
          sql_int(file, "SELECT count(*) FROM messages"));
    CHECK(sql_int(file, "SELECT max(length(content)) FROM messages") == (int)big_len,
          "round %d: the big message reads back short", round);
    CHECK(sql_int(file, "SELECT max_seq FROM conversations WHERE id = (SELECT max(id) FROM conversations)") == (round + 1) * 39,
          "round %d: max_seq %d", round,
          sql_int(file, "SELECT max_seq FROM conversations WHERE id = (SELECT max(id) FROM conversations)"));
  }
  CHECK(sql_int(file, "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check = 'ok'") == 1,
        "integrity_check fails with the writer open");
  rc = 0;
fail:
  if (state != NULL)
    stop(state, conn);
  free(big);
  kit_arena_free(a);
  return rc;
}

static long long file_size(const char *file) {
  struct stat sb;

  return stat(file, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* Appends 20 messages to conv from u in one batch; their client ids,
 * distinct for each round, spread the retry index over many pages as
 * random ones (UUIDs) do. */
static int append_round(void *conn, const eim_conv *conv, const eim_user *u, int round,
                        eim_arena *a, eim_err *err) {
  eim_msg batch[20];
  char cmid[20][24];

  for (int i = 0; i < 20; i++) {
    snprintf(cmid[i], sizeof cmid[i], "%08x-%d", (unsigned)(round * 2654435761u), i);
    batch[i] = (eim_msg){.conversation_id = conv->conversation_id, .sender = u->user_id,
                         .client_msg_id = cmid[i], .content_type = "text",
                         .content = "hello", .content_len = 5, .created_at = 3};
  }
  return desc->store->append(conn, batch, 20, a, err);
}

/* sq_ckpt.c, with checkpoint_pages = 100: the database file does not change
 * while the log is below 100 frames, and once it is past them the file
 * grows with no further commit (SQLite's own autocheckpoint would wait for
 * 1,000 frames and a commit); under a stream of commits the log restarts,
 * so it stays near the 4 x 100 frames at which a commit copies it itself
 * (it would reach some 3,000 frames without restarts); and every message is
 * there, in a sound file. */
static int test_checkpoint_thread(const char *sync) {
  const eim_store_ops *o = desc->store;
  char name[32], wal[300];
  const char *file;
  eim_arena *a = kit_arena_new();
  eim_err err = {0};
  void *state = NULL, *conn = NULL;
  eim_user u;
  eim_conv conv;
  int existed, rc = -1, sent = 0;
  long long db_size, frame = 4096 + 24;
  /* A commit copies the log itself at 400 frames, unless the thread's pass
   * holds the checkpoint lock then (a loaded machine): a generous bound,
   * far below the 3,000 frames of a log that never restarts. */
  const long long wal_bound = 32 + 1000 * frame;
  const eim_opt opts[] = {{"path", NULL, "t.conf", 1},
                          {"synchronous", sync, "t.conf", 2},
                          {"checkpoint_pages", "100", "t.conf", 3}};
  eim_opt o3[3];

  snprintf(name, sizeof name, "ckpt-%s.db", sync);
  file = path_in(name);
  snprintf(wal, sizeof wal, "%s-wal", file);
  memcpy(o3, opts, sizeof o3);
  o3[0].value = file;
  CHECK(desc->init(&state, &host, o3, 3, &err) == EIM_OK, "init: %s", err.msg);
  CHECK(o->conn_open(state, &conn, &err) == EIM_OK, "conn_open: %s", err.msg);
  CHECK(o->user_create(conn, "cleo", "h", 1, &u, a, &err) == EIM_OK, "user: %s", err.msg);
  eim_conv_new req = {.type = EIM_CONV_GROUP, .name = "c", .creator = u.user_id,
                      .created_at = 2};
  CHECK(o->conv_create(conn, &req, &conv, &existed, a, &err) == EIM_OK, "conv: %s", err.msg);
  db_size = file_size(file);
  /* A few commits fill 100 frames. */
  for (int round = 0; file_size(wal) < 32 + 100 * frame; round++) {
    CHECK(round < 1000, "the log stays at %lld bytes", file_size(wal));
    CHECK(file_size(file) == db_size, "the database file changed at %d frames, before the "
          "threshold", (int)((file_size(wal) - 32) / frame));
    CHECK(append_round(conn, &conv, &u, round, a, &err) == EIM_OK, "append: %s", err.msg);
    sent += 20;
  }
  /* No commit from here: only the thread can copy pages into the file. */
  for (int waited = 0; file_size(file) == db_size; waited++) {
    CHECK(waited < 10000, "no checkpoint in 10 s after the log passed 100 frames");
    usleep(1000);
  }
  for (int round = 1000; round < 1600; round++) {
    CHECK(append_round(conn, &conv, &u, round, a, &err) == EIM_OK, "append: %s", err.msg);
    sent += 20;
    CHECK(file_size(wal) <= wal_bound, "round %d: the log grew to %lld bytes, past %lld",
          round, file_size(wal), wal_bound);
  }
  CHECK(sql_int(file, "SELECT count(*) FROM messages") == sent,
        "a plain connection counts %d messages of %d", sql_int(file, "SELECT count(*) FROM messages"),
        sent);
  CHECK(sql_int(file, "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check = 'ok'") == 1,
        "integrity_check fails");
  rc = 0;
fail:
  if (conn != NULL)
    o->conn_close(state, conn);
  if (state != NULL)
    desc->fini(state);
  kit_arena_free(a);
  return rc;
}

static int test_checkpoint_thread_full(void) {
  return test_checkpoint_thread("full");
}

static int test_checkpoint_thread_normal(void) {
  return test_checkpoint_thread("normal");
}

int main(int argc, char **argv) {
  static const struct {
    const char *name;
    int (*fn)(void);
  } tests[] = {
      {"options_rejected", test_options},
      {"default_path_and_schema_version", test_default_path_and_schema},
      {"reopen_keeps_data", test_reopen},
      {"newer_schema_refused", test_newer_schema},
      {"busy_is_unavailable", test_busy},
      {"sigkill_keeps_acked_full", test_sigkill_full},
      {"sigkill_keeps_acked_normal", test_sigkill_normal},
      {"full_reads_through", test_full_reads_through},
      {"checkpoint_thread_full", test_checkpoint_thread_full},
      {"checkpoint_thread_normal", test_checkpoint_thread_normal},
  };
  eim_plugin_describe_fn describe;
  void *so;
  int failed = 0;

  if (argc != 2) {
    fprintf(stderr, "usage: %s store-sqlite.so\n", argv[0]);
    return 2;
  }
  so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (so == NULL) {
    fprintf(stderr, "%s\n", dlerror());
    return 1;
  }
  *(void **)&describe = dlsym(so, EIM_PLUGIN_SYMBOL);
  desc = describe != NULL ? describe() : NULL;
  if (desc == NULL || desc->store == NULL || kit_host_open(&host, "store-sqlite") != 0) {
    fprintf(stderr, "cannot start the plugin\n");
    return 1;
  }
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
    why[0] = '\0';
    if (tests[i].fn() == 0) {
      printf("ok - %s\n", tests[i].name);
    } else {
      printf("FAIL - %s: %s\n", tests[i].name, why);
      failed++;
    }
  }
  kit_host_close(&host);
  dlclose(so);
  printf("%zu passed, %d failed\n", sizeof tests / sizeof tests[0] - (size_t)failed, failed);
  return failed != 0;
}
