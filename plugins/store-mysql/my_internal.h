/* store-mysql internals, shared by the files of the plugin only. */
#ifndef EIM_STORE_MYSQL_INTERNAL_H
#define EIM_STORE_MYSQL_INTERNAL_H

#include <mysql.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "exampleim/plugin.h"

/* Internal outcomes of one attempt, turned into EIM_* codes by eim__my_run:
 * the connection broke, the transaction must be retried (deadlock, lock wait
 * timeout), a unique key was hit (the caller's retry finds the winner), or
 * the operation asks to be run again at once, another way (not a conflict:
 * no back-off, not counted). */
enum {
  EIM__MY_LOST = -1001,
  EIM__MY_RETRY = -1002,
  EIM__MY_DUP = -1003,
  EIM__MY_AGAIN = -1004
};

/* Byte limits: indexed keys fit InnoDB's index entries; free-form strings
 * stay well below max_allowed_packet. */
#define EIM__MY_USERNAME_MAX 512
#define EIM__MY_CLIENT_MSG_ID_MAX 512
#define EIM__MY_TEXT_MAX (1024 * 1024)
#define EIM__MY_CONTENT_MAX (8 * 1024 * 1024)

typedef struct eim__my_state {
  const eim_host *host;
  char *host_name;
  unsigned port;
  char *user;
  char *password;
  char *database;
  unsigned pool_size;
  unsigned connect_timeout;
  unsigned io_timeout;
  atomic_uint open_conns;
  pthread_mutex_t schema_lock; /* one migration per process at a time */
  int schema_ready;            /* under schema_lock */
} eim__my_state;

/* The prepared statements, each prepared on first use on a connection and
 * again after a reconnect. Their text is in my_stmt.c. */
typedef enum {
  EIM__ST_USER_INSERT,
  EIM__ST_USER_BY_NAME,
  EIM__ST_USER_BY_ID,
  EIM__ST_USER_EXISTS,
  EIM__ST_CONV_INSERT,
  EIM__ST_CONV_BY_PAIR,
  EIM__ST_CONV_GET,
  EIM__ST_CONV_LOCK,
  EIM__ST_CONV_LIST,
  EIM__ST_CONV_LIST_MEMBERS,
  EIM__ST_CONV_LIST_LAST,
  EIM__ST_MEMBER_INSERT,
  EIM__ST_MEMBERS_OF,
  EIM__ST_MEMBERS_OR_NONE,
  EIM__ST_PEERS,
  EIM__ST_MSG_BY_SEQ,
  EIM__ST_MSG_AFTER,
  EIM__ST_MSG_BEFORE,
  EIM__ST_MSG_LATEST,
  EIM__ST_READ_ADVANCE,
  EIM__ST_READ_GET,
  EIM__ST_COUNT
} eim__my_stmt_id;

/* Rows per batched append statement: conversations locked or updated,
 * (conversation, sender) pairs looked up or whose cursor moves, messages
 * looked up or inserted. */
#define EIM__MY_ROWS 64

/* The append statements, whose text repeats a part once per row. Each
 * row count is its own prepared statement (id from eim__my_sized), built
 * and prepared on first use. */
typedef enum {
  EIM__SZ_CONV_LOCK,    /* id x n: SELECT id, max_seq ... FOR UPDATE */
  EIM__SZ_MEMBERS_ARE,  /* (conv, user) x n: SELECT conversation_id, user_id */
  EIM__SZ_MSG_FIND,     /* (conv, sender, client_msg_id) x n: message rows */
  EIM__SZ_CONV_SET_SEQ, /* (id, max_seq) x n, (id, last_activity) x n, id x n */
  EIM__SZ_MSG_INSERT,   /* message row x n */
  EIM__SZ_READ_SEQ,     /* (conv, user, seq) x n, (conv, user) x n */
  EIM__SZ_COUNT
} eim__my_sized_kind;

#define EIM__ST_ALL (EIM__ST_COUNT + EIM__SZ_COUNT * EIM__MY_ROWS)
/* Parameters of the largest statement: an INSERT of EIM__MY_ROWS rows. */
#define EIM__MY_MAX_PARAMS (7 * EIM__MY_ROWS)

typedef struct eim__my_conn {
  eim__my_state *st;
  MYSQL *db;                        /* NULL while disconnected */
  MYSQL_STMT *stmts[EIM__ST_ALL];
  /* Parameter binding scratch, here rather than on the stack: an append
   * INSERT binds EIM__MY_MAX_PARAMS values. */
  MYSQL_BIND binds[EIM__MY_MAX_PARAMS];
  long long ints[EIM__MY_MAX_PARAMS];
  unsigned long lens[EIM__MY_MAX_PARAMS];
  int in_txn;
  int broken;                       /* lost: drop and reconnect */
  int committing;                   /* COMMIT sent: its outcome is unknown */
} eim__my_conn;

/* A parameter or a result column. For parameters: I64 (i), STR (s, len;
 * s NULL binds SQL NULL). For results: I64 fills i, STR fills s (from the
 * call's arena, NUL-terminated) and len; is_null says SQL NULL. */
enum { EIM__MY_I64 = 1, EIM__MY_STR = 2 };
typedef struct eim__my_val {
  int type;
  long long i;
  const char *s;
  unsigned long len;
  char is_null;
} eim__my_val;

#define EIM__I64(v) ((eim__my_val){.type = EIM__MY_I64, .i = (long long)(v)})
#define EIM__STR(p, n) ((eim__my_val){.type = EIM__MY_STR, .s = (p), .len = (n)})
#define EIM__CSTR(p) eim__my_cstr(p)

/* A NUL-terminated string parameter; NULL binds SQL NULL. */
static inline eim__my_val eim__my_cstr(const char *s) {
  return EIM__STR(s, s != NULL ? strlen(s) : 0);
}

/* my_conn.c */
int eim__my_conn_open(void *state, void **conn, eim_err *err);
void eim__my_conn_close(void *state, void *conn);
int eim__my_ping(void *conn, eim_err *err);

/* One attempt of an operation, run by eim__my_run on a live connection. */
typedef int (*eim__my_op)(eim__my_conn *c, void *ctx, eim_err *err);

/* Runs op, reconnecting first when the connection is down. Rolls back an
 * open transaction after a failure. Retries a deadlock, lock wait timeout
 * or unique-key race a bounded number of times; after a lost connection,
 * retries once on a fresh connection when that cannot apply a write twice
 * (op is idempotent, or the loss came before COMMIT was sent, so the
 * server rolled the transaction back). Non-idempotent ops must therefore
 * write inside a transaction. Returns EIM_OK or an
 * EIM_E* code (EIM_EUNAVAIL when the server cannot be reached). */
int eim__my_run(eim__my_conn *c, eim__my_op op, void *ctx, int idempotent,
                eim_err *err);

/* Transaction control. begin starts a READ COMMITTED read-write
 * transaction (the session default); begin_snapshot a REPEATABLE READ
 * read-only one whose reads all see one snapshot. */
int eim__my_begin(eim__my_conn *c, eim_err *err);
int eim__my_begin_snapshot(eim__my_conn *c, eim_err *err);
int eim__my_commit(eim__my_conn *c, eim_err *err);

/* Maps the last error of the connection (or of stmt when not NULL) to an
 * internal or EIM_* code and writes the message; marks the connection
 * broken when it was lost. */
int eim__my_fail(eim__my_conn *c, MYSQL_STMT *stmt, const char *what,
                 eim_err *err);

/* my_stmt.c */
/* Executes statement id with params; a statement with a result set has it
 * buffered on the client, ready for eim__my_next. Returns EIM_OK or a code
 * of eim__my_fail (EIM__MY_DUP for a duplicate key). */
int eim__my_exec(eim__my_conn *c, eim__my_stmt_id id, const eim__my_val *params,
                 size_t nparams, eim_err *err);
/* Fetches the next row of statement id into cols (their type set by the
 * caller); strings are copied into a. Returns 1 with a row, 0 at the end
 * (and frees the result), or an error code. */
int eim__my_next(eim__my_conn *c, eim__my_stmt_id id, eim__my_val *cols,
                 size_t ncols, eim_arena *a, eim_err *err);
/* Frees the rest of a result set the caller stops reading. */
void eim__my_done(eim__my_conn *c, eim__my_stmt_id id);
/* Rows changed by, and the AUTO_INCREMENT or LAST_INSERT_ID(expr) value
 * of, the last execution of statement id. */
unsigned long long eim__my_affected(eim__my_conn *c, eim__my_stmt_id id);
unsigned long long eim__my_insert_id(eim__my_conn *c, eim__my_stmt_id id);
void eim__my_stmts_close(eim__my_conn *c);
/* The statement of kind for n rows (1 to EIM__MY_ROWS). Kinds that select
 * or update by key run with n rounded up to a power of two, the places
 * past n bound to NULL (which matches nothing), so that few statements are
 * prepared; *rows gets the row count to bind. MSG_INSERT has every n. */
eim__my_stmt_id eim__my_sized(eim__my_sized_kind kind, size_t n, size_t *rows);

/* my_schema.c */
/* Creates or upgrades the schema once per process, under a server-wide
 * GET_LOCK so that servers starting together migrate one at a time. */
int eim__my_schema_ensure(eim__my_conn *c, eim_err *err);

/* my_ids.c */
/* Ids are minted from AUTO_INCREMENT keys with a kind letter: "u12" for a
 * user, "c7" a conversation (messages: eim__my_msg_id). parse returns 0
 * and the key,
 * or -1 for anything else (callers answer EIM_ENOTFOUND). */
int eim__my_id_parse(const char *id, char kind, unsigned long long *key);
/* The id string of key, from the arena; NULL when out of memory. */
const char *eim__my_id_make(eim__my_conn *c, eim_arena *a, char kind,
                            unsigned long long key);
void *eim__my_alloc(eim__my_conn *c, eim_arena *a, size_t n);

/* The eim_store_ops entries: my_users.c, my_convs.c, my_conv_list.c,
 * my_append.c, my_msgs.c. */
int eim__my_user_create(void *conn, const char *username, const char *password_hash,
                        int64_t created_at, eim_user *out, eim_arena *a, eim_err *err);
int eim__my_user_by_name(void *conn, const char *username, eim_user *out,
                         eim_arena *a, eim_err *err);
int eim__my_user_by_id(void *conn, const char *user_id, eim_user *out,
                       eim_arena *a, eim_err *err);
int eim__my_conv_create(void *conn, const eim_conv_new *req, eim_conv *out,
                        int *existed, eim_arena *a, eim_err *err);
int eim__my_conv_get(void *conn, const char *conversation_id, const char *user_id,
                     eim_conv *out, eim_arena *a, eim_err *err);
int eim__my_conv_list(void *conn, const char *user_id, eim_conv_list *out,
                      eim_arena *a, eim_err *err);
int eim__my_conv_add_members(void *conn, const char *conversation_id,
                             const char *const *user_ids, size_t n, int64_t now,
                             eim_err *err);
int eim__my_conv_members(void *conn, const char *conversation_id, eim_id_list *out,
                         eim_arena *a, eim_err *err);
int eim__my_user_peers(void *conn, const char *user_id, eim_id_list *out,
                       eim_arena *a, eim_err *err);
int eim__my_append(void *conn, eim_msg *batch, size_t n, eim_arena *a, eim_err *err);
int eim__my_history(void *conn, const eim_history_q *q, eim_msg_list *out,
                    eim_arena *a, eim_err *err);
int eim__my_read_set(void *conn, const char *conversation_id, const char *user_id,
                     uint64_t seq, uint64_t *read_seq, uint64_t *max_seq, eim_err *err);

/* my_convs.c, shared with my_conv_list.c. */
/* The columns of CONV_GET and CONV_LIST: id, type, name, created_at,
 * max_seq, last_activity, read_seq. */
void eim__my_conv_cols(eim__my_val *cols);
/* Fills out from such a row (members and last message are the caller's).
 * EIM_OK or EIM_ENOMEM. */
int eim__my_conv_from_row(eim__my_conn *c, const eim__my_val *row, eim_conv *out,
                          eim_arena *a, eim_err *err);

/* my_msgs.c, shared with my_convs.c and my_append.c. */
/* Reads one message row (conversation_id, seq, sender, client_msg_id,
 * content_type, content, created_at: the column order of every message
 * query) into m, strings from a. EIM_OK or EIM_ENOMEM. */
int eim__my_msg_from_row(eim__my_conn *c, const eim__my_val *row, eim_msg *m,
                         eim_arena *a);
#define EIM__MY_MSG_COLS 7
void eim__my_msg_cols(eim__my_val *cols);
/* A message's id: "m<conversation key>.<seq>", from a. */
const char *eim__my_msg_id(eim__my_conn *c, eim_arena *a, unsigned long long conv,
                           unsigned long long seq);

#endif
