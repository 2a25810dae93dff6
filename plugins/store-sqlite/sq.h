/*
 * store-sqlite internals shared by its source files. Nothing here is part of
 * the plugin ABI: the one exported symbol is eim_plugin_describe().
 */
#ifndef EIM_STORE_SQLITE_SQ_H
#define EIM_STORE_SQLITE_SQ_H

#include <exampleim/plugin.h>
#include <pthread.h>
#include <sqlite3.h>

/* Longest string a field may hold; content alone may reach SQ_MAX_CONTENT.
 * The host enforces the protocol's tighter limits; these only keep a broken
 * caller from filling the disk. */
#define SQ_MAX_FIELD (64 * 1024)
#define SQ_MAX_CONTENT (1024 * 1024)

typedef struct sq_ckpt sq_ckpt;

typedef struct sq_state {
  const eim_host *host;
  char *path;
  int busy_timeout_ms;
  int sync_full; /* 1: PRAGMA synchronous=FULL, 0: NORMAL */
  int ckpt_pages; /* log frames that start a checkpoint (checkpoint_pages) */
  sq_ckpt *ckpt;  /* the checkpoint thread, once started */
  /* Writers of this process queue here before BEGIN IMMEDIATE: SQLite's busy
   * handler polls with growing sleeps, a mutex hands the lock over at once. */
  pthread_mutex_t write_lock;
  int vfs_held; /* sq__vfs_acquire succeeded */
} sq_state;

/* Every statement a connection caches; see the SQL table in sq_db.c. */
enum {
  SQ_BEGIN,
  SQ_BEGIN_WRITE,
  SQ_COMMIT,
  SQ_ROLLBACK,
  SQ_PING,
  SQ_USER_INSERT,
  SQ_USER_BY_NAME,
  SQ_USER_BY_ID,
  SQ_USER_PEERS,
  SQ_CONV_BY_PAIR,
  SQ_CONV_INSERT,
  SQ_CONV_ROW,
  SQ_CONV_LIST,
  SQ_MEMBER_INSERT,
  SQ_MEMBER_READ_SEQ,
  SQ_MEMBERS,
  SQ_MSG_BY_CLIENT,
  SQ_MSG_BY_SEQ,
  SQ_MEMBER_MAX_SEQ,
  SQ_MSG_INSERT,
  SQ_SEQ_SET,
  SQ_READ_ADVANCE,
  SQ_HIST_AFTER,
  SQ_HIST_BEFORE,
  SQ_HIST_LATEST,
  SQ_NSTMT
};

typedef struct sq_conn {
  sq_state *st;
  sqlite3 *db;
  sqlite3_stmt *stmt[SQ_NSTMT];
  int holds_write_lock;
} sq_conn;

/* sq_db.c */
int sq__open(sq_state *st, int create, sqlite3 **db, eim_err *err);
int sq__error(sq_conn *c, int rc, eim_err *err, const char *what);
sqlite3_stmt *sq__stmt(sq_conn *c, int id, int *code, eim_err *err);
int sq__begin(sq_conn *c, int write, eim_err *err);
int sq__commit(sq_conn *c, eim_err *err);
void sq__rollback(sq_conn *c);
void sq__finalize_all(sq_conn *c);
int sq__parse_id(const char *s, sqlite3_int64 *id);
const char *sq__id_str(sq_conn *c, eim_arena *a, sqlite3_int64 id);
const char *sq__col_str(sq_conn *c, eim_arena *a, sqlite3_stmt *s, int col);
int sq__bind_str(sqlite3_stmt *s, int idx, const char *v);
int sq__id_list(sq_conn *c, sqlite3_stmt *s, eim_arena *a, const char ***ids,
                size_t *n, eim_err *err);

/* sq_vfs.c: the VFS that gathers a commit's WAL writes into one write,
 * for synchronous = FULL connections. */
#define SQ_VFS_NAME "eim-walgather"
int sq__vfs_acquire(eim_err *err);
void sq__vfs_release(void);

/* sq_ckpt.c: checkpoints on a thread of their own. sq__wal_hook is every
 * worker connection's sqlite3_wal_hook, with the sq_state as its argument. */
int sq__ckpt_start(sq_state *st, eim_err *err);
void sq__ckpt_stop(sq_state *st);
int sq__wal_hook(void *st, sqlite3 *db, const char *name, int frames);

/* sq_schema.c */
int sq__migrate(sqlite3 *db, eim_err *err);

/* sq_users.c, sq_convs.c, sq_msgs.c: the eim_store_ops members. */
int sq__user_create(void *conn, const char *username, const char *password_hash,
                    int64_t created_at, eim_user *out, eim_arena *a, eim_err *err);
int sq__user_by_name(void *conn, const char *username, eim_user *out,
                     eim_arena *a, eim_err *err);
int sq__user_by_id(void *conn, const char *user_id, eim_user *out, eim_arena *a,
                   eim_err *err);
int sq__user_peers(void *conn, const char *user_id, eim_id_list *out,
                   eim_arena *a, eim_err *err);
int sq__conv_create(void *conn, const eim_conv_new *req, eim_conv *out,
                    int *existed, eim_arena *a, eim_err *err);
int sq__conv_get(void *conn, const char *conversation_id, const char *user_id,
                 eim_conv *out, eim_arena *a, eim_err *err);
int sq__conv_list(void *conn, const char *user_id, eim_conv_list *out,
                  eim_arena *a, eim_err *err);
int sq__conv_add_members(void *conn, const char *conversation_id,
                         const char *const *user_ids, size_t n, int64_t now,
                         eim_err *err);
int sq__conv_members(void *conn, const char *conversation_id, eim_id_list *out,
                     eim_arena *a, eim_err *err);
int sq__append(void *conn, eim_msg *batch, size_t n, eim_arena *a, eim_err *err);
int sq__history(void *conn, const eim_history_q *q, eim_msg_list *out,
                eim_arena *a, eim_err *err);
int sq__read_set(void *conn, const char *conversation_id, const char *user_id,
                 uint64_t seq, uint64_t *read_seq, uint64_t *max_seq, eim_err *err);

/* sq_msgs.c, for sq_convs.c's last_message. */
int sq__msg_row(sq_conn *c, sqlite3_stmt *s, eim_msg *m, eim_arena *a, eim_err *err);

#endif
