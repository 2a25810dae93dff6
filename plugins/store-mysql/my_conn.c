/* Connections: one MYSQL handle per conn_open, reconnected after a loss,
 * and the retry policy every operation runs under. */
#include <errmsg.h>
#include <mysqld_error.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "my_internal.h"

/* Deadlocks and lock wait timeouts are expected under contention between
 * workers and servers; a handful of retries resolves them. */
#define MAX_CONFLICT_RETRIES 10

static void disconnect(eim__my_conn *c) {
  eim__my_stmts_close(c);
  if (c->db != NULL)
    mysql_close(c->db);
  c->db = NULL;
  c->in_txn = 0;
  c->broken = 0;
}

/* Opens c->db. Session settings come as init commands so that every
 * reconnect gets them too. EIM_EUNAVAIL naming host and port on failure. */
static int connect_db(eim__my_conn *c, eim_err *err) {
  eim__my_state *s = c->st;
  unsigned proto = MYSQL_PROTOCOL_TCP;
  my_bool off = 0;
  MYSQL *db;
  int rc;

  db = mysql_init(NULL);
  if (db == NULL)
    return eim_err_set(err, EIM_ENOMEM, "mysql_init: out of memory");
  /* TCP even for "localhost", so host and port mean what they say. */
  mysql_options(db, MYSQL_OPT_PROTOCOL, &proto);
  mysql_options(db, MYSQL_OPT_CONNECT_TIMEOUT, &s->connect_timeout);
  mysql_options(db, MYSQL_OPT_READ_TIMEOUT, &s->io_timeout);
  mysql_options(db, MYSQL_OPT_WRITE_TIMEOUT, &s->io_timeout);
  /* The library's own reconnect would silently drop prepared statements. */
  mysql_options(db, MYSQL_OPT_RECONNECT, &off);
  mysql_options(db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  /* READ COMMITTED: a reader after a row lock sees the latest commit, so
   * the duplicate check in append needs no gap locks. */
  mysql_options(db, MYSQL_INIT_COMMAND,
                "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");
  mysql_options(db, MYSQL_INIT_COMMAND,
                "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION', "
                "innodb_lock_wait_timeout = 5");
  if (mysql_real_connect(db, s->host_name, s->user, s->password, s->database,
                         s->port, NULL, 0) == NULL) {
    rc = eim_err_set(err, EIM_EUNAVAIL, "cannot connect to MariaDB at %s:%u: %s",
                     s->host_name, s->port, mysql_error(db));
    mysql_close(db);
    return rc;
  }
  c->db = db;
  c->in_txn = 0;
  c->broken = 0;
  return EIM_OK;
}

int eim__my_fail(eim__my_conn *c, MYSQL_STMT *stmt, const char *what,
                 eim_err *err) {
  unsigned no = stmt != NULL ? mysql_stmt_errno(stmt) : mysql_errno(c->db);
  const char *msg = stmt != NULL ? mysql_stmt_error(stmt) : mysql_error(c->db);
  eim__my_state *s = c->st;

  switch (no) {
  case CR_CONNECTION_ERROR:
  case CR_CONN_HOST_ERROR:
  case CR_SERVER_GONE_ERROR:
  case CR_SERVER_LOST:
  case CR_SERVER_LOST_EXTENDED:
  case CR_ERR_NET_READ:
  case CR_ERR_NET_WRITE:
  case ER_SERVER_SHUTDOWN:
  case ER_CONNECTION_KILLED:
  case ER_NET_READ_INTERRUPTED:
    c->broken = 1;
    eim_err_set(err, EIM_EUNAVAIL, "lost connection to MariaDB at %s:%u (%s: %s)",
                s->host_name, s->port, what, msg);
    return EIM__MY_LOST;
  case ER_LOCK_DEADLOCK:
  case ER_LOCK_WAIT_TIMEOUT:
    eim_err_set(err, EIM_EUNAVAIL, "%s: %s", what, msg);
    return EIM__MY_RETRY;
  case ER_DUP_ENTRY:
    eim_err_set(err, EIM_ECONFLICT, "%s: %s", what, msg);
    return EIM__MY_DUP;
  case ER_DATA_TOO_LONG:
  case ER_TRUNCATED_WRONG_VALUE_FOR_FIELD:
    return eim_err_set(err, EIM_EINVAL, "%s: %s", what, msg);
  default:
    return eim_err_set(err, EIM_EINTERNAL, "%s: %s (error %u)", what, msg, no);
  }
}

int eim__my_begin(eim__my_conn *c, eim_err *err) {
  static const char q[] = "START TRANSACTION";

  if (mysql_real_query(c->db, q, sizeof q - 1) != 0)
    return eim__my_fail(c, NULL, "start transaction", err);
  c->in_txn = 1;
  return EIM_OK;
}

int eim__my_begin_snapshot(eim__my_conn *c, eim_err *err) {
  static const char iso[] = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ";
  static const char q[] = "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY";

  if (mysql_real_query(c->db, iso, sizeof iso - 1) != 0 ||
      mysql_real_query(c->db, q, sizeof q - 1) != 0)
    return eim__my_fail(c, NULL, "start transaction", err);
  c->in_txn = 1;
  return EIM_OK;
}

int eim__my_commit(eim__my_conn *c, eim_err *err) {
  c->in_txn = 0;
  c->committing = 1;
  if (mysql_commit(c->db) != 0)
    return eim__my_fail(c, NULL, "commit", err);
  c->committing = 0;
  return EIM_OK;
}

/* A few milliseconds, growing, with jitter so that two losers of the same
 * deadlock do not collide again in step. */
static void backoff(unsigned attempt) {
  struct timespec ts;
  long ms = (long)attempt + (rand() % 4);

  ts.tv_sec = 0;
  ts.tv_nsec = ms * 1000000L;
  nanosleep(&ts, NULL);
}

int eim__my_run(eim__my_conn *c, eim__my_op op, void *ctx, int idempotent,
                eim_err *err) {
  const eim_host *h = c->st->host;
  unsigned conflicts = 0;
  int may_resend = 1;
  int rc;

  for (;;) {
    if (c->db == NULL) {
      rc = connect_db(c, err);
      if (rc != EIM_OK)
        return rc;
      h->counter_add(h, "mysql_reconnects_total", 1);
    }
    c->committing = 0;
    rc = op(c, ctx, err);
    if (rc == EIM_OK)
      return EIM_OK;
    if (c->in_txn && !c->broken && mysql_rollback(c->db) != 0)
      c->broken = 1;
    c->in_txn = 0;
    if (c->broken)
      disconnect(c);
    if (rc == EIM__MY_LOST) {
      /* A server restart shows up on the first round trip of an idle
       * connection. Resending is safe unless a COMMIT may have landed. */
      if (may_resend && (idempotent || !c->committing)) {
        may_resend = 0;
        continue;
      }
      return EIM_EUNAVAIL;
    }
    if (rc == EIM__MY_AGAIN)
      continue;
    if (rc == EIM__MY_RETRY || rc == EIM__MY_DUP) {
      if (++conflicts < MAX_CONFLICT_RETRIES) {
        h->counter_add(h, "mysql_conflict_retries_total", 1);
        backoff(conflicts);
        continue;
      }
      return EIM_EUNAVAIL;
    }
    return rc;
  }
}

int eim__my_conn_open(void *state, void **conn, eim_err *err) {
  eim__my_state *s = state;
  eim__my_conn *c = NULL;
  int rc;

  if (atomic_fetch_add(&s->open_conns, 1) >= s->pool_size) {
    rc = eim_err_set(err, EIM_EINVAL,
                     "pool_size %u reached: set pool_size to at least the number "
                     "of store workers", s->pool_size);
    goto fail;
  }
  c = calloc(1, sizeof *c);
  if (c == NULL) {
    rc = eim_err_set(err, EIM_ENOMEM, "out of memory");
    goto fail;
  }
  c->st = s;
  rc = connect_db(c, err);
  if (rc != EIM_OK)
    goto fail;
  rc = eim__my_schema_ensure(c, err);
  if (rc != EIM_OK)
    goto fail;
  *conn = c;
  return EIM_OK;

fail:
  if (c != NULL) {
    disconnect(c);
    free(c);
  }
  atomic_fetch_sub(&s->open_conns, 1);
  return rc;
}

void eim__my_conn_close(void *state, void *conn) {
  eim__my_state *s = state;
  eim__my_conn *c = conn;

  if (c == NULL)
    return;
  disconnect(c);
  free(c);
  atomic_fetch_sub(&s->open_conns, 1);
}

static int op_ping(eim__my_conn *c, void *ctx, eim_err *err) {
  if (mysql_ping(c->db) != 0)
    return eim__my_fail(c, NULL, "ping", err);
  return EIM_OK;
}

int eim__my_ping(void *conn, eim_err *err) {
  return eim__my_run(conn, op_ping, NULL, 1, err);
}
