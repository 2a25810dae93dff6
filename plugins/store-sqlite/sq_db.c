/*
 * Connections, the per-connection statement cache, transactions, error
 * mapping, and the small conversions every query needs.
 */
#include "sq.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define SQ_MSG_COLS \
  "id, conversation_id, seq, sender, client_msg_id, content_type, content, created_at"

/* Indexed by the SQ_* enum in sq.h. Every value is bound, never spliced. */
static const char *const sq_sql[SQ_NSTMT] = {
    [SQ_BEGIN] = "BEGIN",
    [SQ_BEGIN_WRITE] = "BEGIN IMMEDIATE",
    [SQ_COMMIT] = "COMMIT",
    [SQ_ROLLBACK] = "ROLLBACK",
    [SQ_PING] = "SELECT version FROM schema_version",
    [SQ_USER_INSERT] =
        "INSERT INTO users (username, password_hash, created_at) VALUES (?1, ?2, ?3)"
        " ON CONFLICT (username) DO NOTHING RETURNING id",
    [SQ_USER_BY_NAME] =
        "SELECT id, username, password_hash, created_at FROM users WHERE username = ?1",
    [SQ_USER_BY_ID] =
        "SELECT id, username, password_hash, created_at FROM users WHERE id = ?1",
    [SQ_USER_PEERS] =
        "SELECT DISTINCT o.user_id FROM members m"
        " JOIN members o ON o.conversation_id = m.conversation_id"
        " WHERE m.user_id = ?1 AND o.user_id <> ?1 ORDER BY o.user_id",
    [SQ_CONV_BY_PAIR] = "SELECT id FROM conversations WHERE pair = ?1",
    [SQ_CONV_INSERT] =
        "INSERT INTO conversations (type, name, pair, created_at, last_activity)"
        " VALUES (?1, ?2, ?3, ?4, ?4) RETURNING id",
    [SQ_CONV_ROW] =
        "SELECT type, name, created_at, max_seq, last_activity FROM conversations"
        " WHERE id = ?1",
    [SQ_CONV_LIST] =
        "SELECT c.id FROM members m JOIN conversations c ON c.id = m.conversation_id"
        " WHERE m.user_id = ?1 ORDER BY c.last_activity DESC, c.id",
    [SQ_MEMBER_INSERT] =
        "INSERT INTO members (conversation_id, user_id, joined_at) VALUES (?1, ?2, ?3)"
        " ON CONFLICT (conversation_id, user_id) DO NOTHING",
    [SQ_MEMBER_READ_SEQ] =
        "SELECT read_seq FROM members WHERE conversation_id = ?1 AND user_id = ?2",
    [SQ_MEMBERS] = "SELECT user_id FROM members WHERE conversation_id = ?1 ORDER BY rowid",
    [SQ_MSG_BY_CLIENT] =
        "SELECT " SQ_MSG_COLS " FROM messages"
        " WHERE conversation_id = ?1 AND sender = ?2 AND client_msg_id = ?3",
    [SQ_MSG_BY_SEQ] =
        "SELECT " SQ_MSG_COLS " FROM messages WHERE conversation_id = ?1 AND seq = ?2",
    /* The sender's membership and the conversation's last seq in one
     * look-up (an unknown conversation has no members). */
    [SQ_MEMBER_MAX_SEQ] =
        "SELECT c.max_seq FROM members m JOIN conversations c ON c.id = m.conversation_id"
        " WHERE m.conversation_id = ?1 AND m.user_id = ?2",
    /* A retry conflicts on its index and inserts nothing (sqlite3_changes
     * tells); any other violation is still an error. No RETURNING: SQLite
     * buffers those rows in a temporary b-tree, opened per statement. */
    [SQ_MSG_INSERT] =
        "INSERT INTO messages (conversation_id, seq, sender, client_msg_id,"
        " content_type, content, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
        " ON CONFLICT (conversation_id, sender, client_msg_id) DO NOTHING",
    [SQ_SEQ_SET] =
        "UPDATE conversations SET max_seq = ?2, last_activity = ?3 WHERE id = ?1",
    [SQ_READ_ADVANCE] =
        "UPDATE members SET read_seq = ?3"
        " WHERE conversation_id = ?1 AND user_id = ?2 AND read_seq < ?3",
    [SQ_HIST_AFTER] =
        "SELECT " SQ_MSG_COLS " FROM messages WHERE conversation_id = ?1 AND seq > ?2"
        " ORDER BY seq LIMIT ?3",
    [SQ_HIST_BEFORE] =
        "SELECT " SQ_MSG_COLS " FROM messages WHERE conversation_id = ?1 AND seq < ?2"
        " ORDER BY seq DESC LIMIT ?3",
    [SQ_HIST_LATEST] =
        "SELECT " SQ_MSG_COLS " FROM messages WHERE conversation_id = ?1"
        " ORDER BY seq DESC LIMIT ?2",
};

/* Opens a handle on st->path with the per-connection settings. create allows
 * creating the file (only init does: a worker finding no database means it
 * was removed under us). On failure *db is NULL and the error names the
 * path. */
int sq__open(sq_state *st, int create, sqlite3 **db, eim_err *err) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  /* No autocheckpoint pragma: worker connections hand checkpoints to the
   * thread of sq_ckpt.c (their WAL hook replaces SQLite's).
   * journal_size_limit gives the log's space back after one. */
  const char *pragmas = st->sync_full
                            ? "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"
                              " PRAGMA journal_size_limit = 67108864;"
                            : "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
                              " PRAGMA journal_size_limit = 67108864;";
  int rc;
  int code;

  if (create)
    flags |= SQLITE_OPEN_CREATE;
  *db = NULL;
  /* FULL syncs the log at every commit, where sq_vfs.c writes what it
   * gathered; NORMAL does not, so it keeps the default VFS. */
  rc = sqlite3_open_v2(st->path, db, flags, st->sync_full ? SQ_VFS_NAME : NULL);
  if (rc != SQLITE_OK) {
    code = eim_err_set(err, rc == SQLITE_NOMEM ? EIM_ENOMEM : EIM_EUNAVAIL,
                       "cannot open %s: %s", st->path,
                       *db != NULL ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
    goto fail;
  }
  sqlite3_extended_result_codes(*db, 1);
  sqlite3_busy_timeout(*db, st->busy_timeout_ms);
  rc = sqlite3_exec(*db, pragmas, NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    code = eim_err_set(err, EIM_EUNAVAIL, "cannot configure %s: %s", st->path,
                       sqlite3_errmsg(*db));
    goto fail;
  }
  return EIM_OK;

fail:
  sqlite3_close(*db);
  *db = NULL;
  return code;
}

/* Maps a SQLite result code onto an EIM_E* code, fills err with what failed
 * and SQLite's message, and returns the code. Busy after the timeout and I/O
 * trouble are EIM_EUNAVAIL: the caller may retry later. */
int sq__error(sq_conn *c, int rc, eim_err *err, const char *what) {
  int code;

  switch (rc & 0xff) {
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
  case SQLITE_IOERR:
  case SQLITE_FULL:
  case SQLITE_CANTOPEN:
  case SQLITE_READONLY:
  case SQLITE_PROTOCOL:
    code = EIM_EUNAVAIL;
    break;
  case SQLITE_NOMEM:
    code = EIM_ENOMEM;
    break;
  case SQLITE_CONSTRAINT:
    code = EIM_ECONFLICT;
    break;
  case SQLITE_TOOBIG:
    code = EIM_ETOOBIG;
    break;
  default:
    code = EIM_EINTERNAL;
    break;
  }
  return eim_err_set(err, code, "%s: %s (%s)", what, sqlite3_errmsg(c->db),
                     c->st->path);
}

/* Returns the cached statement `id`, reset and with no bindings, preparing
 * it on first use. The connection owns it. On failure returns NULL with
 * *code and err set. */
sqlite3_stmt *sq__stmt(sq_conn *c, int id, int *code, eim_err *err) {
  sqlite3_stmt *s = c->stmt[id];
  int rc;

  if (s != NULL) {
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
  }
  rc = sqlite3_prepare_v3(c->db, sq_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
  if (rc != SQLITE_OK) {
    *code = sq__error(c, rc, err, "prepare");
    return NULL;
  }
  c->stmt[id] = s;
  return s;
}

static void sq_reset_all(sq_conn *c) {
  for (int i = 0; i < SQ_NSTMT; i++) {
    if (c->stmt[i] != NULL)
      sqlite3_reset(c->stmt[i]);
  }
}

static void sq_release_write(sq_conn *c) {
  if (c->holds_write_lock) {
    c->holds_write_lock = 0;
    pthread_mutex_unlock(&c->st->write_lock);
  }
}

static int sq_exec_cached(sq_conn *c, int id, eim_err *err) {
  int code = EIM_OK;
  sqlite3_stmt *s = sq__stmt(c, id, &code, err);
  int rc;

  if (s == NULL)
    return code;
  rc = sqlite3_step(s);
  sqlite3_reset(s);
  if (rc != SQLITE_DONE)
    return sq__error(c, rc, err, sq_sql[id]);
  return EIM_OK;
}

/* Starts a transaction: a read snapshot, or with write = 1 the database's
 * write lock at once (BEGIN IMMEDIATE), so a writer never has to upgrade a
 * read lock, which SQLite can only refuse. Every call of the plugin runs in
 * one transaction and ends it with sq__commit or sq__rollback. */
int sq__begin(sq_conn *c, int write, eim_err *err) {
  int code;

  if (write) {
    pthread_mutex_lock(&c->st->write_lock);
    c->holds_write_lock = 1;
  }
  code = sq_exec_cached(c, write ? SQ_BEGIN_WRITE : SQ_BEGIN, err);
  if (code != EIM_OK)
    sq_release_write(c);
  return code;
}

/* Commits; on failure rolls back and returns the error. Either way the
 * transaction is over and every cached statement is reset. */
int sq__commit(sq_conn *c, eim_err *err) {
  int code;

  sq_reset_all(c);
  code = sq_exec_cached(c, SQ_COMMIT, err);
  if (code != EIM_OK) {
    sq__rollback(c);
    return code;
  }
  sq_release_write(c);
  return EIM_OK;
}

/* Ends the transaction, if any, without keeping its changes. */
void sq__rollback(sq_conn *c) {
  sq_reset_all(c);
  if (!sqlite3_get_autocommit(c->db))
    sq_exec_cached(c, SQ_ROLLBACK, NULL);
  sq_release_write(c);
}

void sq__finalize_all(sq_conn *c) {
  for (int i = 0; i < SQ_NSTMT; i++) {
    sqlite3_finalize(c->stmt[i]);
    c->stmt[i] = NULL;
  }
}

/* IDs are the rowids written in decimal. Anything else (another store's id,
 * garbage) parses to no row: returns -1, which callers report as not
 * found. Leading zeros are refused so one row has exactly one id. */
int sq__parse_id(const char *s, sqlite3_int64 *id) {
  uint64_t v = 0;
  size_t i;

  if (s == NULL || s[0] < '1' || s[0] > '9')
    return -1;
  for (i = 0; s[i] != '\0'; i++) {
    if (s[i] < '0' || s[i] > '9' || i >= 19)
      return -1;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  if (v > (uint64_t)INT64_MAX)
    return -1;
  *id = (sqlite3_int64)v;
  return 0;
}

/* The id as an arena string; NULL when the arena is exhausted. */
const char *sq__id_str(sq_conn *c, eim_arena *a, sqlite3_int64 id) {
  char buf[24];
  int n = snprintf(buf, sizeof buf, "%" PRId64, (int64_t)id);

  return c->st->host->arena_strndup(a, buf, (size_t)n);
}

/* A text column copied verbatim, by its byte length, into the arena; ""
 * for NULL. Returns NULL only when the arena is exhausted. */
const char *sq__col_str(sq_conn *c, eim_arena *a, sqlite3_stmt *s, int col) {
  const unsigned char *v = sqlite3_column_text(s, col);
  int n = sqlite3_column_bytes(s, col);

  return c->st->host->arena_strndup(a, v != NULL ? (const char *)v : "", (size_t)n);
}

/* Binds a NUL-terminated string as text of its exact length. */
int sq__bind_str(sqlite3_stmt *s, int idx, const char *v) {
  return sqlite3_bind_text(s, idx, v, (int)strlen(v), SQLITE_STATIC);
}

/* Steps s, whose first column is a rowid, to the end and returns the ids
 * as arena strings in row order. */
int sq__id_list(sq_conn *c, sqlite3_stmt *s, eim_arena *a, const char ***ids,
                size_t *n, eim_err *err) {
  sqlite3_int64 *tmp = NULL;
  size_t len = 0, cap = 0;
  const char **out;
  int code = EIM_OK;
  int rc;

  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (len == cap) {
      size_t ncap = cap != 0 ? cap * 2 : 16;
      sqlite3_int64 *grown = realloc(tmp, ncap * sizeof *tmp);
      if (grown == NULL) {
        code = eim_err_set(err, EIM_ENOMEM, "out of memory");
        goto done;
      }
      tmp = grown;
      cap = ncap;
    }
    tmp[len++] = sqlite3_column_int64(s, 0);
  }
  if (rc != SQLITE_DONE) {
    code = sq__error(c, rc, err, "list ids");
    goto done;
  }
  out = c->st->host->arena_alloc(a, (len != 0 ? len : 1) * sizeof *out);
  if (out == NULL) {
    code = eim_err_set(err, EIM_ENOMEM, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < len; i++) {
    out[i] = sq__id_str(c, a, tmp[i]);
    if (out[i] == NULL) {
      code = eim_err_set(err, EIM_ENOMEM, "out of memory");
      goto done;
    }
  }
  *ids = out;
  *n = len;

done:
  free(tmp);
  return code;
}
