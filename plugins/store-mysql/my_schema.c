/* Schema creation and versioning. The statements are constants (DDL cannot
 * be prepared with data, and none is needed). */
#include <stdlib.h>
#include <string.h>

#include "my_internal.h"

#define SCHEMA_VERSION 1

/* Version 1. Usernames and client_msg_ids are VARBINARY so that look-ups
 * compare bytes exactly (case-sensitive, no trailing-space padding, which
 * utf8mb4_bin applies); content is a LONGBLOB so any bytes round-trip.
 * Free-form strings (hash, group name, content type) get MEDIUM columns:
 * the store keeps what the host accepted rather than a second limit. */
static const char *const schema_v1[] = {
    "CREATE TABLE IF NOT EXISTS users ("
    " id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " username VARBINARY(512) NOT NULL,"
    " password_hash MEDIUMBLOB NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " UNIQUE KEY uq_users_username (username)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",

    /* pair_key holds "low:high" user keys of a single chat (NULL for a
     * group), so a pair has one single chat however both race to create it. */
    "CREATE TABLE IF NOT EXISTS conversations ("
    " id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " type TINYINT UNSIGNED NOT NULL,"
    " name MEDIUMTEXT NOT NULL,"
    " pair_key VARBINARY(64) NULL,"
    " created_at BIGINT NOT NULL,"
    " max_seq BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " last_activity BIGINT NOT NULL,"
    " UNIQUE KEY uq_conversations_pair (pair_key)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",

    /* id orders members by when they joined. */
    "CREATE TABLE IF NOT EXISTS members ("
    " id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " conversation_id BIGINT UNSIGNED NOT NULL,"
    " user_id BIGINT UNSIGNED NOT NULL,"
    " read_seq BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " joined_at BIGINT NOT NULL,"
    " UNIQUE KEY uq_members (conversation_id, user_id),"
    " KEY ix_members_user (user_id, conversation_id)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",

    /* Clustered by (conversation, seq): history reads are range scans, and
     * a message needs no key of its own. */
    "CREATE TABLE IF NOT EXISTS messages ("
    " conversation_id BIGINT UNSIGNED NOT NULL,"
    " seq BIGINT UNSIGNED NOT NULL,"
    " sender BIGINT UNSIGNED NOT NULL,"
    " client_msg_id VARBINARY(512) NULL,"
    " content_type MEDIUMTEXT NOT NULL,"
    " content LONGBLOB NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " PRIMARY KEY (conversation_id, seq),"
    " UNIQUE KEY uq_messages_client (conversation_id, sender, client_msg_id)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",

    "INSERT INTO schema_version (id, version) VALUES (1, 1)",
};

static int query(eim__my_conn *c, const char *sql, eim_err *err) {
  if (mysql_real_query(c->db, sql, strlen(sql)) != 0)
    return eim__my_fail(c, NULL, "schema", err);
  return EIM_OK;
}

/* Runs a query whose answer is one integer; *is_null when it is NULL or
 * there is no row. */
static int query_int(eim__my_conn *c, const char *sql, long long *out,
                     int *is_null, eim_err *err) {
  MYSQL_RES *res;
  MYSQL_ROW row;
  int rc;

  rc = query(c, sql, err);
  if (rc != EIM_OK)
    return rc;
  res = mysql_store_result(c->db);
  if (res == NULL)
    return eim__my_fail(c, NULL, "schema", err);
  row = mysql_fetch_row(res);
  *is_null = row == NULL || row[0] == NULL;
  *out = *is_null ? 0 : strtoll(row[0], NULL, 10);
  mysql_free_result(res);
  return EIM_OK;
}

/* Brings the schema to SCHEMA_VERSION with the migration lock held. */
static int migrate(eim__my_conn *c, eim_err *err) {
  long long version;
  int none, rc;
  size_t i;

  rc = query(c, "CREATE TABLE IF NOT EXISTS schema_version ("
                " id TINYINT UNSIGNED NOT NULL PRIMARY KEY,"
                " version INT UNSIGNED NOT NULL) ENGINE=InnoDB", err);
  if (rc != EIM_OK)
    return rc;
  rc = query_int(c, "SELECT version FROM schema_version WHERE id = 1", &version,
                 &none, err);
  if (rc != EIM_OK)
    return rc;
  if (none) {
    for (i = 0; i < sizeof schema_v1 / sizeof schema_v1[0]; i++) {
      rc = query(c, schema_v1[i], err);
      if (rc != EIM_OK)
        return rc;
    }
    c->st->host->log(c->st->host, EIM_LOG_INFO, "created schema version %d in %s",
                     SCHEMA_VERSION, c->st->database);
    return EIM_OK;
  }
  if (version > SCHEMA_VERSION)
    return eim_err_set(err, EIM_EINTERNAL,
                       "database %s has schema version %lld, newer than this "
                       "plugin's %d", c->st->database, version, SCHEMA_VERSION);
  return EIM_OK;
}

int eim__my_schema_ensure(eim__my_conn *c, eim_err *err) {
  eim__my_state *s = c->st;
  long long got;
  int none, rc;

  pthread_mutex_lock(&s->schema_lock);
  if (s->schema_ready) {
    rc = EIM_OK;
    goto out;
  }
  rc = query_int(c, "SELECT GET_LOCK(CONCAT('exampleim_schema.', DATABASE()), 60)",
                 &got, &none, err);
  if (rc != EIM_OK)
    goto out;
  if (none || got != 1) {
    rc = eim_err_set(err, EIM_EUNAVAIL,
                     "timed out waiting for another server to migrate %s",
                     s->database);
    goto out;
  }
  rc = migrate(c, err);
  if (query(c, "DO RELEASE_LOCK(CONCAT('exampleim_schema.', DATABASE()))",
            NULL) != EIM_OK && rc == EIM_OK)
    rc = eim_err_set(err, EIM_EINTERNAL, "cannot release the migration lock");
  if (rc == EIM_OK)
    s->schema_ready = 1;

out:
  pthread_mutex_unlock(&s->schema_lock);
  /* conn_open reports public codes only. */
  if (rc == EIM__MY_LOST)
    rc = EIM_EUNAVAIL;
  else if (rc == EIM__MY_RETRY || rc == EIM__MY_DUP)
    rc = EIM_EINTERNAL;
  return rc;
}
