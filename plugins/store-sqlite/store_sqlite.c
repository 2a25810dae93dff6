/*
 * store-sqlite: the embedded store. Options, the plugin's life cycle, the
 * worker connections and the descriptor; the queries live in sq_users.c,
 * sq_convs.c and sq_msgs.c.
 */
#include "sq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SQ_DEFAULT_FILE "exampleim.db"
#define SQ_DEFAULT_BUSY_MS 5000
/* Full: 64 MiB of 4 KiB pages. Each checkpoint copies a hot page (an index
 * leaf of a busy conversation) once however often it changed, so fewer,
 * larger checkpoints copy less; SQLite's default of 1,000 checkpointed some
 * 20 times a second at 10,000 appends/s. Normal syncs the log only at
 * checkpoints, all of it at once, which under the writer's commits cost
 * more than it saved: 4,000 (p99 ack at 20,000 appends/s 15-17 ms, against
 * 30-39 ms with 16,000 and 12-18 ms with 1,000 at more CPU). */
#define SQ_DEFAULT_CKPT_PAGES_FULL 16000
#define SQ_DEFAULT_CKPT_PAGES_NORMAL 4000

static int sq_opt_int(const eim_opt *o, int lo, int hi, int *out, eim_err *err) {
  char *end;
  long v;

  errno = 0;
  v = strtol(o->value, &end, 10);
  if (errno != 0 || end == o->value || *end != '\0' || v < lo || v > hi)
    return eim_err_set(err, EIM_EINVAL, "%s:%d: %s must be an integer from %d to %d, not '%s'",
                       o->file, o->line, o->key, lo, hi, o->value);
  *out = (int)v;
  return EIM_OK;
}

/* Reads the options into st (whose path it mallocs). Unknown keys, bad
 * values and repeated keys are EIM_EINVAL naming the file and line. */
static int sq_options(sq_state *st, const eim_opt *opts, size_t nopts, eim_err *err) {
  const eim_opt *path = NULL, *busy = NULL, *sync = NULL, *ckpt = NULL;
  const char *data_dir;
  int code;

  for (size_t i = 0; i < nopts; i++) {
    const eim_opt *o = &opts[i];
    const eim_opt **slot;

    if (strcmp(o->key, "path") == 0)
      slot = &path;
    else if (strcmp(o->key, "busy_timeout_ms") == 0)
      slot = &busy;
    else if (strcmp(o->key, "synchronous") == 0)
      slot = &sync;
    else if (strcmp(o->key, "checkpoint_pages") == 0)
      slot = &ckpt;
    else
      return eim_err_set(err, EIM_EINVAL,
                         "%s:%d: unknown key '%s' (store-sqlite knows path, "
                         "busy_timeout_ms, synchronous, checkpoint_pages)",
                         o->file, o->line, o->key);
    if (*slot != NULL)
      return eim_err_set(err, EIM_EINVAL, "%s:%d: '%s' is already set on line %d",
                         o->file, o->line, o->key, (*slot)->line);
    *slot = o;
  }

  st->busy_timeout_ms = SQ_DEFAULT_BUSY_MS;
  if (busy != NULL) {
    code = sq_opt_int(busy, 1, 600000, &st->busy_timeout_ms, err);
    if (code != EIM_OK)
      return code;
  }
  st->sync_full = 1;
  if (sync != NULL) {
    if (strcmp(sync->value, "full") == 0)
      st->sync_full = 1;
    else if (strcmp(sync->value, "normal") == 0)
      st->sync_full = 0;
    else
      return eim_err_set(err, EIM_EINVAL, "%s:%d: synchronous must be full or normal, not '%s'",
                         sync->file, sync->line, sync->value);
  }
  st->ckpt_pages = st->sync_full ? SQ_DEFAULT_CKPT_PAGES_FULL : SQ_DEFAULT_CKPT_PAGES_NORMAL;
  if (ckpt != NULL) {
    code = sq_opt_int(ckpt, 100, 1000000, &st->ckpt_pages, err);
    if (code != EIM_OK)
      return code;
  }

  if (path != NULL) {
    if (path->value[0] == '\0')
      return eim_err_set(err, EIM_EINVAL, "%s:%d: path is empty", path->file, path->line);
    st->path = strdup(path->value);
  } else {
    data_dir = st->host->config_get(st->host, "data_dir");
    if (data_dir == NULL || data_dir[0] == '\0')
      return eim_err_set(err, EIM_EINVAL,
                         "no path set and the server has no data_dir to put %s in",
                         SQ_DEFAULT_FILE);
    if (asprintf(&st->path, "%s/%s", data_dir, SQ_DEFAULT_FILE) < 0)
      st->path = NULL;
  }
  if (st->path == NULL)
    return eim_err_set(err, EIM_ENOMEM, "out of memory");
  return EIM_OK;
}

static void sq_fini(void *state) {
  sq_state *st = state;

  if (st == NULL)
    return;
  sq__ckpt_stop(st);
  pthread_mutex_destroy(&st->write_lock);
  if (st->vfs_held)
    sq__vfs_release();
  free(st->path);
  free(st);
}

/* Creates the state, the database file if missing, switches it to WAL and
 * brings its schema up to date. The journal mode is a property of the file,
 * so it is set once here rather than per connection. */
static int sq_init(void **state, const eim_host *host, const eim_opt *opts,
                   size_t nopts, eim_err *err) {
  sq_state *st;
  sqlite3 *db = NULL;
  sqlite3_stmt *s = NULL;
  const unsigned char *mode;
  int code;

  *state = NULL;
  st = calloc(1, sizeof *st);
  if (st == NULL)
    return eim_err_set(err, EIM_ENOMEM, "out of memory");
  st->host = host;
  if (pthread_mutex_init(&st->write_lock, NULL) != 0) {
    free(st);
    return eim_err_set(err, EIM_ENOMEM, "cannot create a mutex");
  }
  code = sq_options(st, opts, nopts, err);
  if (code != EIM_OK)
    goto fail;
  code = sq__vfs_acquire(err);
  if (code != EIM_OK)
    goto fail;
  st->vfs_held = 1;
  code = sq__open(st, 1, &db, err);
  if (code != EIM_OK)
    goto fail;
  if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &s, NULL) != SQLITE_OK ||
      sqlite3_step(s) != SQLITE_ROW) {
    code = eim_err_set(err, EIM_EUNAVAIL, "cannot set WAL mode on %s: %s", st->path,
                       sqlite3_errmsg(db));
    goto fail;
  }
  mode = sqlite3_column_text(s, 0);
  if (mode == NULL || strcmp((const char *)mode, "wal") != 0) {
    code = eim_err_set(err, EIM_EUNAVAIL, "%s stays in journal mode '%s', not wal",
                       st->path, mode != NULL ? (const char *)mode : "?");
    goto fail;
  }
  sqlite3_finalize(s);
  s = NULL;
  code = sq__migrate(db, err);
  if (code != EIM_OK)
    goto fail;
  sqlite3_close(db);
  db = NULL;
  code = sq__ckpt_start(st, err);
  if (code != EIM_OK)
    goto fail;
  host->log(host, EIM_LOG_INFO, "database %s (WAL, synchronous=%s, checkpoint_pages=%d)",
            st->path, st->sync_full ? "full" : "normal", st->ckpt_pages);
  *state = st;
  return EIM_OK;

fail:
  sqlite3_finalize(s);
  sqlite3_close(db);
  sq_fini(st);
  return code;
}

static int sq_conn_open(void *state, void **conn, eim_err *err) {
  sq_conn *c;
  int code;

  *conn = NULL;
  c = calloc(1, sizeof *c);
  if (c == NULL)
    return eim_err_set(err, EIM_ENOMEM, "out of memory");
  c->st = state;
  code = sq__open(c->st, 0, &c->db, err);
  if (code != EIM_OK) {
    free(c);
    return code;
  }
  sqlite3_wal_hook(c->db, sq__wal_hook, c->st);
  *conn = c;
  return EIM_OK;
}

static void sq_conn_close(void *state, void *conn) {
  sq_conn *c = conn;

  if (c == NULL)
    return;
  sq__rollback(c);
  sq__finalize_all(c);
  sqlite3_close(c->db);
  free(c);
}

static int sq_ping(void *conn, eim_err *err) {
  sq_conn *c = conn;
  int code = EIM_OK;
  sqlite3_stmt *s = sq__stmt(c, SQ_PING, &code, err);
  int rc;

  if (s == NULL)
    return code;
  rc = sqlite3_step(s);
  sqlite3_reset(s);
  if (rc != SQLITE_ROW)
    return sq__error(c, rc, err, "ping");
  return EIM_OK;
}

static const eim_store_ops sq_store_ops = {
    .version = EIM_STORE_OPS_V1,
    .conn_open = sq_conn_open,
    .conn_close = sq_conn_close,
    .ping = sq_ping,
    .user_create = sq__user_create,
    .user_by_name = sq__user_by_name,
    .user_by_id = sq__user_by_id,
    .conv_create = sq__conv_create,
    .conv_get = sq__conv_get,
    .conv_list = sq__conv_list,
    .conv_add_members = sq__conv_add_members,
    .conv_members = sq__conv_members,
    .user_peers = sq__user_peers,
    .append = sq__append,
    .history = sq__history,
    .read_set = sq__read_set,
};

EIM_PLUGIN_DEFINE("store-sqlite", "1.0.0", sq_init, sq_fini, .store = &sq_store_ops)
