/* Prepared statements: their SQL, lazy preparation per connection, and
 * binding of parameters and result rows. No SQL is ever built from data. */
#include <stdlib.h>
#include <string.h>

#include "my_internal.h"

#define MSG_COLS                                                              \
  "g.conversation_id, g.seq, g.sender, g.client_msg_id, g.content_type, "     \
  "g.content, g.created_at"

#define MSG_INSERT                                                            \
  "INSERT INTO messages (conversation_id, seq, sender, client_msg_id, "       \
  "content_type, content, created_at) VALUES "

static const char *const sql_text[EIM__ST_COUNT] = {
    [EIM__ST_USER_INSERT] =
        "INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)",
    [EIM__ST_USER_BY_NAME] =
        "SELECT id, username, password_hash, created_at FROM users WHERE username = ?",
    [EIM__ST_USER_BY_ID] =
        "SELECT id, username, password_hash, created_at FROM users WHERE id = ?",
    [EIM__ST_USER_EXISTS] = "SELECT id FROM users WHERE id = ?",
    [EIM__ST_CONV_INSERT] =
        "INSERT INTO conversations (type, name, pair_key, created_at, last_activity) "
        "VALUES (?, ?, ?, ?, ?)",
    [EIM__ST_CONV_BY_PAIR] = "SELECT id FROM conversations WHERE pair_key = ?",
    [EIM__ST_CONV_GET] =
        "SELECT c.id, c.type, c.name, c.created_at, c.max_seq, c.last_activity, "
        "COALESCE(m.read_seq, 0) FROM conversations c LEFT JOIN members m "
        "ON m.conversation_id = c.id AND m.user_id = ? WHERE c.id = ?",
    [EIM__ST_CONV_LOCK] = "SELECT type FROM conversations WHERE id = ? FOR UPDATE",
    [EIM__ST_CONV_LIST] =
        "SELECT c.id, c.type, c.name, c.created_at, c.max_seq, c.last_activity, "
        "m.read_seq FROM members m JOIN conversations c ON c.id = m.conversation_id "
        "WHERE m.user_id = ? ORDER BY c.last_activity DESC, c.id DESC",
    [EIM__ST_CONV_LIST_MEMBERS] =
        "SELECT o.conversation_id, o.user_id FROM members m JOIN members o "
        "ON o.conversation_id = m.conversation_id WHERE m.user_id = ? "
        "ORDER BY o.conversation_id, o.id",
    [EIM__ST_CONV_LIST_LAST] =
        "SELECT " MSG_COLS " FROM members m JOIN conversations c "
        "ON c.id = m.conversation_id JOIN messages g ON g.conversation_id = c.id "
        "AND g.seq = c.max_seq WHERE m.user_id = ?",
    [EIM__ST_MEMBER_INSERT] =
        "INSERT INTO members (conversation_id, user_id, read_seq, joined_at) "
        "VALUES (?, ?, 0, ?) ON DUPLICATE KEY UPDATE user_id = user_id",
    [EIM__ST_MEMBERS_OF] =
        "SELECT user_id FROM members WHERE conversation_id = ? ORDER BY id",
    [EIM__ST_MEMBERS_OR_NONE] =
        "SELECT c.id, m.user_id FROM conversations c LEFT JOIN members m "
        "ON m.conversation_id = c.id WHERE c.id = ? ORDER BY m.id",
    [EIM__ST_PEERS] =
        "SELECT DISTINCT o.user_id FROM members m JOIN members o "
        "ON o.conversation_id = m.conversation_id WHERE m.user_id = ? "
        "AND o.user_id <> ? ORDER BY o.user_id",
    [EIM__ST_MSG_BY_SEQ] =
        "SELECT " MSG_COLS " FROM messages g WHERE g.conversation_id = ? AND g.seq = ?",
    [EIM__ST_MSG_AFTER] =
        "SELECT " MSG_COLS " FROM messages g WHERE g.conversation_id = ? "
        "AND g.seq > ? ORDER BY g.seq ASC LIMIT ?",
    [EIM__ST_MSG_BEFORE] =
        "SELECT " MSG_COLS " FROM messages g WHERE g.conversation_id = ? "
        "AND g.seq < ? ORDER BY g.seq DESC LIMIT ?",
    [EIM__ST_MSG_LATEST] =
        "SELECT " MSG_COLS " FROM messages g WHERE g.conversation_id = ? "
        "ORDER BY g.seq DESC LIMIT ?",
    [EIM__ST_READ_ADVANCE] =
        "UPDATE members m JOIN conversations c ON c.id = m.conversation_id "
        "SET m.read_seq = GREATEST(m.read_seq, LEAST(?, c.max_seq)) "
        "WHERE m.conversation_id = ? AND m.user_id = ?",
    [EIM__ST_READ_GET] =
        "SELECT c.max_seq, m.read_seq FROM conversations c LEFT JOIN members m "
        "ON m.conversation_id = c.id AND m.user_id = ? WHERE c.id = ?",
};

/* A sized statement's text: its parts in order, each either once (sep
 * NULL) or repeated once per row, joined by sep. */
typedef struct sized_part {
  const char *text;
  const char *sep;
} sized_part;

#define SIZED_PARTS 7

/* The look-ups name their unique key: the optimiser may otherwise take
 * the primary key's conversation prefix and scan a whole conversation. */
static const struct {
  int padded; /* rows rounded up to a power of two, the rest bound NULL */
  sized_part parts[SIZED_PARTS];
} sized[EIM__SZ_COUNT] = {
    /* Rows are locked in key order, whatever order the keys come in, so
     * batches over the same conversations queue rather than deadlock. */
    [EIM__SZ_CONV_LOCK] = {1,
                           {{"SELECT id, max_seq FROM conversations WHERE id IN (", NULL},
                            {"?", ", "},
                            {") ORDER BY id FOR UPDATE", NULL}}},
    [EIM__SZ_MEMBERS_ARE] = {1,
                             {{"SELECT conversation_id, user_id FROM members "
                               "FORCE INDEX (uq_members) WHERE ",
                               NULL},
                              {"(conversation_id = ? AND user_id = ?)", " OR "}}},
    [EIM__SZ_MSG_FIND] = {1,
                          {{"SELECT " MSG_COLS " FROM messages g "
                            "FORCE INDEX (uq_messages_client) WHERE ",
                            NULL},
                           {"(g.conversation_id = ? AND g.sender = ? "
                            "AND g.client_msg_id = ?)",
                            " OR "}}},
    [EIM__SZ_CONV_SET_SEQ] = {1,
                              {{"UPDATE conversations SET max_seq = CASE id", NULL},
                               {" WHEN ? THEN ?", ""},
                               {" ELSE max_seq END, last_activity = CASE id", NULL},
                               {" WHEN ? THEN ?", ""},
                               {" ELSE last_activity END WHERE id IN (", NULL},
                               {"?", ", "},
                               {")", NULL}}},
    [EIM__SZ_MSG_INSERT] = {0,
                            {{MSG_INSERT, NULL}, {"(?, ?, ?, ?, ?, ?, ?)", ", "}}},
    [EIM__SZ_READ_SEQ] = {1,
                          {{"UPDATE members FORCE INDEX (uq_members) "
                            "SET read_seq = GREATEST(read_seq, CASE",
                            NULL},
                           {" WHEN conversation_id = ? AND user_id = ? THEN ?", ""},
                           {" ELSE read_seq END) WHERE ", NULL},
                           {"(conversation_id = ? AND user_id = ?)", " OR "}}},
};

eim__my_stmt_id eim__my_sized(eim__my_sized_kind kind, size_t n, size_t *rows) {
  size_t r = n;

  if (sized[kind].padded)
    for (r = 1; r < n; r *= 2)
      ;
  *rows = r;
  return (eim__my_stmt_id)(EIM__ST_COUNT + (size_t)kind * EIM__MY_ROWS + r - 1);
}

/* The text of statement id, malloc'd for a sized one (then *owned). */
static const char *stmt_text(eim__my_stmt_id id, char **owned) {
  size_t kind, rows, len = 1, i, r;
  const sized_part *p;
  char *buf, *w;

  *owned = NULL;
  if (id < EIM__ST_COUNT)
    return sql_text[id];
  kind = (id - EIM__ST_COUNT) / EIM__MY_ROWS;
  rows = (id - EIM__ST_COUNT) % EIM__MY_ROWS + 1;
  p = sized[kind].parts;
  for (i = 0; i < SIZED_PARTS && p[i].text != NULL; i++)
    len += p[i].sep == NULL ? strlen(p[i].text)
                            : rows * (strlen(p[i].text) + strlen(p[i].sep));
  buf = malloc(len);
  if (buf == NULL)
    return NULL;
  w = buf;
  for (i = 0; i < SIZED_PARTS && p[i].text != NULL; i++) {
    for (r = 0; r < (p[i].sep == NULL ? 1 : rows); r++) {
      if (r > 0)
        w = stpcpy(w, p[i].sep);
      w = stpcpy(w, p[i].text);
    }
  }
  *owned = buf;
  return buf;
}

/* Result columns fetched at most: a message row. */
#define MAX_COLS 16

static int stmt_get(eim__my_conn *c, eim__my_stmt_id id, MYSQL_STMT **out,
                    eim_err *err) {
  MYSQL_STMT *st = c->stmts[id];
  const char *sql;
  char *owned;
  int rc;

  if (st == NULL) {
    sql = stmt_text(id, &owned);
    if (sql == NULL)
      return eim_err_set(err, EIM_ENOMEM, "out of memory");
    st = mysql_stmt_init(c->db);
    if (st == NULL) {
      free(owned);
      return eim__my_fail(c, NULL, "mysql_stmt_init", err);
    }
    rc = mysql_stmt_prepare(st, sql, strlen(sql)) != 0
             ? eim__my_fail(c, st, "prepare", err)
             : EIM_OK;
    free(owned);
    if (rc != EIM_OK) {
      mysql_stmt_close(st);
      return rc;
    }
    c->stmts[id] = st;
  }
  *out = st;
  return EIM_OK;
}

int eim__my_exec(eim__my_conn *c, eim__my_stmt_id id, const eim__my_val *params,
                 size_t nparams, eim_err *err) {
  MYSQL_BIND *b = c->binds;
  long long *ints = c->ints;
  unsigned long *lens = c->lens;
  MYSQL_STMT *st = NULL;
  size_t i;
  int rc;

  if (nparams > EIM__MY_MAX_PARAMS)
    return eim_err_set(err, EIM_EINTERNAL, "too many parameters");
  rc = stmt_get(c, id, &st, err);
  if (rc != EIM_OK)
    return rc;
  memset(b, 0, nparams * sizeof *b);
  for (i = 0; i < nparams; i++) {
    if (params[i].type == EIM__MY_I64) {
      ints[i] = params[i].i;
      b[i].buffer_type = MYSQL_TYPE_LONGLONG;
      b[i].buffer = &ints[i];
    } else if (params[i].s == NULL) {
      b[i].buffer_type = MYSQL_TYPE_NULL;
    } else {
      /* BLOB so the bytes reach the column as they are, NULs included. */
      lens[i] = params[i].len;
      b[i].buffer_type = MYSQL_TYPE_BLOB;
      b[i].buffer = (void *)params[i].s;
      b[i].buffer_length = params[i].len;
      b[i].length = &lens[i];
    }
  }
  if (mysql_stmt_bind_param(st, b) != 0 || mysql_stmt_execute(st) != 0)
    return eim__my_fail(c, st, "execute", err);
  if (mysql_stmt_field_count(st) > 0 && mysql_stmt_store_result(st) != 0)
    return eim__my_fail(c, st, "store result", err);
  return EIM_OK;
}

int eim__my_next(eim__my_conn *c, eim__my_stmt_id id, eim__my_val *cols,
                 size_t ncols, eim_arena *a, eim_err *err) {
  MYSQL_STMT *st = c->stmts[id];
  MYSQL_BIND b[MAX_COLS];
  char *buf;
  size_t i;
  int rc;

  if (st == NULL || ncols > MAX_COLS)
    return eim_err_set(err, EIM_EINTERNAL, "fetch without a result");
  /* Strings are bound with no buffer: fetch reports their lengths (and
   * MYSQL_DATA_TRUNCATED), then each is fetched into an arena buffer of
   * exactly the right size. */
  memset(b, 0, sizeof b);
  for (i = 0; i < ncols; i++) {
    cols[i].is_null = 0;
    cols[i].len = 0;
    b[i].is_null = &cols[i].is_null;
    b[i].length = &cols[i].len;
    if (cols[i].type == EIM__MY_I64) {
      b[i].buffer_type = MYSQL_TYPE_LONGLONG;
      b[i].buffer = &cols[i].i;
    } else {
      b[i].buffer_type = MYSQL_TYPE_BLOB;
    }
  }
  if (mysql_stmt_bind_result(st, b) != 0)
    return eim__my_fail(c, st, "bind result", err);
  rc = mysql_stmt_fetch(st);
  if (rc == MYSQL_NO_DATA) {
    mysql_stmt_free_result(st);
    return 0;
  }
  if (rc != 0 && rc != MYSQL_DATA_TRUNCATED)
    return eim__my_fail(c, st, "fetch", err);
  for (i = 0; i < ncols; i++) {
    if (cols[i].type != EIM__MY_STR) {
      if (cols[i].is_null)
        cols[i].i = 0;
      continue;
    }
    if (cols[i].is_null) {
      cols[i].s = NULL;
      continue;
    }
    buf = eim__my_alloc(c, a, cols[i].len + 1);
    if (buf == NULL)
      return eim_err_set(err, EIM_ENOMEM, "out of memory");
    if (cols[i].len > 0) {
      MYSQL_BIND one;
      memset(&one, 0, sizeof one);
      one.buffer_type = MYSQL_TYPE_BLOB;
      one.buffer = buf;
      one.buffer_length = cols[i].len;
      if (mysql_stmt_fetch_column(st, &one, (unsigned)i, 0) != 0)
        return eim__my_fail(c, st, "fetch column", err);
    }
    buf[cols[i].len] = '\0';
    cols[i].s = buf;
  }
  return 1;
}

void eim__my_done(eim__my_conn *c, eim__my_stmt_id id) {
  if (c->stmts[id] != NULL)
    mysql_stmt_free_result(c->stmts[id]);
}

unsigned long long eim__my_affected(eim__my_conn *c, eim__my_stmt_id id) {
  return mysql_stmt_affected_rows(c->stmts[id]);
}

unsigned long long eim__my_insert_id(eim__my_conn *c, eim__my_stmt_id id) {
  return mysql_stmt_insert_id(c->stmts[id]);
}

void eim__my_stmts_close(eim__my_conn *c) {
  size_t i;

  for (i = 0; i < EIM__ST_ALL; i++) {
    if (c->stmts[i] != NULL)
      mysql_stmt_close(c->stmts[i]);
    c->stmts[i] = NULL;
  }
}
