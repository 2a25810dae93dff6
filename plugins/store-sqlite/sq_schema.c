/*
 * The schema and its migrations. schema_version holds one row, the version
 * the file is at; migration N takes a database from version N-1 to N and
 * runs in the same transaction as the version bump, so a crash leaves the
 * file at one version or the next, never between.
 */
#include "sq.h"

#include <stddef.h>

/* Migration scripts by target version; append only, never edit a shipped
 * one. Constant DDL, so sqlite3_exec is fine here. */
static const char *const sq_migrations[] = {
    NULL,
    /* 1: users, conversations, members, messages. */
    "CREATE TABLE users ("
    "  id INTEGER PRIMARY KEY,"
    "  username TEXT NOT NULL UNIQUE,"
    "  password_hash TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    /* pair is 'low:high' of the two user ids of a single chat and NULL for
     * groups: its unique index makes a single chat unique per pair. */
    "CREATE TABLE conversations ("
    "  id INTEGER PRIMARY KEY,"
    "  type INTEGER NOT NULL CHECK (type IN (1, 2)),"
    "  name TEXT NOT NULL,"
    "  pair TEXT UNIQUE,"
    "  created_at INTEGER NOT NULL,"
    "  max_seq INTEGER NOT NULL DEFAULT 0,"
    "  last_activity INTEGER NOT NULL);"
    /* The rowid keeps the order members joined in. */
    "CREATE TABLE members ("
    "  conversation_id INTEGER NOT NULL REFERENCES conversations (id),"
    "  user_id INTEGER NOT NULL REFERENCES users (id),"
    "  joined_at INTEGER NOT NULL,"
    "  read_seq INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE (conversation_id, user_id));"
    "CREATE INDEX members_by_user ON members (user_id, conversation_id);"
    "CREATE TABLE messages ("
    "  id INTEGER PRIMARY KEY,"
    "  conversation_id INTEGER NOT NULL REFERENCES conversations (id),"
    "  seq INTEGER NOT NULL,"
    "  sender INTEGER NOT NULL REFERENCES users (id),"
    "  client_msg_id TEXT NOT NULL,"
    "  content_type TEXT NOT NULL,"
    "  content BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  UNIQUE (conversation_id, seq),"
    "  UNIQUE (conversation_id, sender, client_msg_id));",
};

#define SQ_SCHEMA_LATEST ((int)(sizeof sq_migrations / sizeof sq_migrations[0]) - 1)

static int sq_exec(sqlite3 *db, const char *sql, eim_err *err, const char *what) {
  int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

  if (rc != SQLITE_OK)
    return eim_err_set(err, (rc & 0xff) == SQLITE_BUSY ? EIM_EUNAVAIL : EIM_EINTERNAL,
                       "%s: %s", what, sqlite3_errmsg(db));
  return EIM_OK;
}

static int sq_version(sqlite3 *db, int *version, eim_err *err) {
  sqlite3_stmt *s = NULL;
  int code = EIM_OK;
  int rc;

  rc = sqlite3_prepare_v2(db, "SELECT version FROM schema_version WHERE id = 1", -1,
                          &s, NULL);
  if (rc != SQLITE_OK) {
    code = eim_err_set(err, EIM_EINTERNAL, "read schema version: %s", sqlite3_errmsg(db));
    goto done;
  }
  rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    *version = sqlite3_column_int(s, 0);
  } else if (rc == SQLITE_DONE) {
    *version = 0;
  } else {
    code = eim_err_set(err, EIM_EINTERNAL, "read schema version: %s", sqlite3_errmsg(db));
  }

done:
  sqlite3_finalize(s);
  return code;
}

static int sq_set_version(sqlite3 *db, int version, eim_err *err) {
  sqlite3_stmt *s = NULL;
  int code = EIM_OK;
  int rc;

  rc = sqlite3_prepare_v2(db,
                          "INSERT INTO schema_version (id, version) VALUES (1, ?1)"
                          " ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                          -1, &s, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_int(s, 1, version);
    rc = sqlite3_step(s);
  }
  if (rc != SQLITE_DONE && rc != SQLITE_OK)
    code = eim_err_set(err, EIM_EINTERNAL, "write schema version: %s", sqlite3_errmsg(db));
  sqlite3_finalize(s);
  return code;
}

/* Brings the database on db up to the latest schema, creating it on first
 * start. Refuses (EIM_EINVAL) a file written by a newer plugin, whose
 * schema this one does not know. */
int sq__migrate(sqlite3 *db, eim_err *err) {
  int version = 0;
  int code;

  code = sq_exec(db, "BEGIN IMMEDIATE", err, "begin migration");
  if (code != EIM_OK)
    return code;
  code = sq_exec(db,
                 "CREATE TABLE IF NOT EXISTS schema_version ("
                 " id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)",
                 err, "create schema_version");
  if (code != EIM_OK)
    goto fail;
  code = sq_version(db, &version, err);
  if (code != EIM_OK)
    goto fail;
  if (version > SQ_SCHEMA_LATEST) {
    code = eim_err_set(err, EIM_EINVAL,
                       "database schema version %d is newer than this plugin's %d",
                       version, SQ_SCHEMA_LATEST);
    goto fail;
  }
  for (int v = version + 1; v <= SQ_SCHEMA_LATEST; v++) {
    code = sq_exec(db, sq_migrations[v], err, "migrate schema");
    if (code != EIM_OK)
      goto fail;
  }
  if (version != SQ_SCHEMA_LATEST) {
    code = sq_set_version(db, SQ_SCHEMA_LATEST, err);
    if (code != EIM_OK)
      goto fail;
  }
  return sq_exec(db, "COMMIT", err, "commit migration");

fail:
  sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return code;
}
