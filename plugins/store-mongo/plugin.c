/* store-mongo: options, the client pool, connections, errors and the schema
 * (collections, indexes and the schema version) created at start. */
#include "mongo.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_URI "mongodb://127.0.0.1:27017/"
#define DEFAULT_DB "exampleim"
#define DEFAULT_POOL 16
#define POOL_MAX 1000

/* Unreachable backends must fail fast: these apply unless the URI sets them. */
#define SERVER_SELECTION_MS 3000
#define CONNECT_MS 2000
#define SOCKET_MS 15000

int eim__is_unavailable(const bson_error_t *e) {
  if (e->domain == MONGOC_ERROR_SERVER_SELECTION || e->domain == MONGOC_ERROR_STREAM)
    return 1;
  /* Shutdown in progress, interrupted at shutdown, host unreachable, network
   * timeout: the server is going away or not there. */
  if (e->domain == MONGOC_ERROR_SERVER)
    return e->code == 91 || e->code == 11600 || e->code == 6 || e->code == 89;
  return 0;
}

int eim__mongo_error(eim__mongo *st, const bson_error_t *e, const char *what,
                     eim_err *err) {
  if (eim__is_unavailable(e))
    return eim_err_set(err, EIM_EUNAVAIL, "cannot reach MongoDB at %s: %s", st->where,
                       e->message);
  if (e->code == 11000)
    return eim_err_set(err, EIM_ECONFLICT, "%s: duplicate key", what);
  return eim_err_set(err, EIM_EINTERNAL, "%s: %s", what, e->message);
}

/* The pool blocks when all clients are out, so the number of store workers
 * may exceed pool_size: the excess waits for a free client. */
mongoc_client_t *eim__client(eim__mongo *st) {
  return mongoc_client_pool_pop(st->pool);
}

void eim__release(eim__mongo *st, mongoc_client_t *c) {
  if (c != NULL) mongoc_client_pool_push(st->pool, c);
}

/* The caller owns the returned collection (mongoc_collection_destroy). */
mongoc_collection_t *eim__coll(eim__mongo *st, mongoc_client_t *c, const char *name) {
  return mongoc_client_get_collection(c, st->db, name);
}

static int ping_client(eim__mongo *st, mongoc_client_t *c, eim_err *err) {
  bson_t cmd = BSON_INITIALIZER;
  bson_error_t e;
  int rc = EIM_OK;

  BSON_APPEND_INT32(&cmd, "ping", 1);
  if (!mongoc_client_command_simple(c, st->db, &cmd, NULL, NULL, &e))
    rc = eim__mongo_error(st, &e, "ping", err);
  bson_destroy(&cmd);
  return rc;
}

/* One createIndexes command: keys are given as field names, a trailing
 * NULL ends them; every field ascending. */
static int create_index(eim__mongo *st, mongoc_client_t *c, const char *coll,
                        const char *name, int unique, const char *const *fields,
                        eim_err *err) {
  bson_t cmd = BSON_INITIALIZER, arr, idx, key;
  bson_error_t e;
  int rc = EIM_OK;

  BSON_APPEND_UTF8(&cmd, "createIndexes", coll);
  BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &arr);
  BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &idx);
  BSON_APPEND_DOCUMENT_BEGIN(&idx, "key", &key);
  for (size_t i = 0; fields[i] != NULL; i++) BSON_APPEND_INT32(&key, fields[i], 1);
  bson_append_document_end(&idx, &key);
  BSON_APPEND_UTF8(&idx, "name", name);
  if (unique) BSON_APPEND_BOOL(&idx, "unique", true);
  bson_append_document_end(&arr, &idx);
  bson_append_array_end(&cmd, &arr);
  if (!mongoc_client_write_command_with_opts(c, st->db, &cmd, NULL, NULL, &e))
    rc = eim__mongo_error(st, &e, "createIndexes", err);
  bson_destroy(&cmd);
  return rc;
}

/* Creates a collection unless it exists (code 48). */
static int create_collection(eim__mongo *st, mongoc_client_t *c, const char *coll,
                             eim_err *err) {
  bson_t cmd = BSON_INITIALIZER;
  bson_error_t e;
  int rc = EIM_OK;

  BSON_APPEND_UTF8(&cmd, "create", coll);
  if (!mongoc_client_write_command_with_opts(c, st->db, &cmd, NULL, NULL, &e) && e.code != 48)
    rc = eim__mongo_error(st, &e, "create", err);
  bson_destroy(&cmd);
  return rc;
}

/* Creates the collections and indexes and records the schema
 * version; refuses a database written by a newer schema. Idempotent. */
static int create_schema(eim__mongo *st, mongoc_client_t *c, eim_err *err) {
  static const char *const username[] = {"username", NULL};
  static const char *const pair[] = {"pair", NULL};
  static const char *const conv_user[] = {"c", "u", NULL};
  static const char *const user[] = {"u", NULL};
  static const char *const conv_seq[] = {"c", "seq", NULL};
  static const char *const conv_sender_cmid[] = {"c", "s", "cm", NULL};
  mongoc_collection_t *meta = NULL;
  mongoc_cursor_t *cur = NULL;
  const bson_t *doc;
  bson_t filter = BSON_INITIALIZER, ins = BSON_INITIALIZER;
  bson_error_t e;
  int rc;

  if ((rc = create_collection(st, c, EIM__C_META, err)) ||
      (rc = create_index(st, c, EIM__C_USERS, "username_unique", 1, username, err)) ||
      (rc = create_index(st, c, EIM__C_CONVS, "pair_unique", 1, pair, err)) ||
      (rc = create_index(st, c, EIM__C_MEMBERS, "conv_user_unique", 1, conv_user, err)) ||
      (rc = create_index(st, c, EIM__C_MEMBERS, "user", 0, user, err)) ||
      (rc = create_index(st, c, EIM__C_MSGS, "conv_seq_unique", 1, conv_seq, err)) ||
      (rc = create_index(st, c, EIM__C_MSGS, "conv_sender_cmid_unique", 1,
                         conv_sender_cmid, err)))
    goto cleanup;

  meta = eim__coll(st, c, EIM__C_META);
  BSON_APPEND_UTF8(&filter, "_id", "schema");
  cur = mongoc_collection_find_with_opts(meta, &filter, NULL, NULL);
  if (mongoc_cursor_next(cur, &doc)) {
    int64_t v = eim__get_i64(doc, "version");
    if (v > EIM__SCHEMA_VERSION)
      rc = eim_err_set(err, EIM_EINVAL,
                       "database '%s' has schema version %lld, newer than this "
                       "plugin's %d",
                       st->db, (long long)v, EIM__SCHEMA_VERSION);
    goto cleanup;
  }
  if (mongoc_cursor_error(cur, &e)) {
    rc = eim__mongo_error(st, &e, "reading the schema version", err);
    goto cleanup;
  }
  BSON_APPEND_UTF8(&ins, "_id", "schema");
  BSON_APPEND_INT64(&ins, "version", EIM__SCHEMA_VERSION);
  if (!mongoc_collection_insert_one(meta, &ins, NULL, NULL, &e) && e.code != 11000)
    rc = eim__mongo_error(st, &e, "writing the schema version", err);

cleanup:
  mongoc_cursor_destroy(cur);
  mongoc_collection_destroy(meta);
  bson_destroy(&filter);
  bson_destroy(&ins);
  return rc;
}

/* libmongoc logs through one process-wide handler: it goes to the host's log
 * of the most recent instance while one is loaded, and nowhere after. */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static const eim_host *log_host;

static void mongoc_to_host(mongoc_log_level_t level, const char *domain, const char *message,
                           void *unused) {
  int to;

  switch (level) {
  case MONGOC_LOG_LEVEL_ERROR:
  case MONGOC_LOG_LEVEL_CRITICAL: to = EIM_LOG_ERROR; break;
  case MONGOC_LOG_LEVEL_WARNING: to = EIM_LOG_WARN; break;
  case MONGOC_LOG_LEVEL_MESSAGE:
  case MONGOC_LOG_LEVEL_INFO: to = EIM_LOG_INFO; break;
  default: to = EIM_LOG_DEBUG; break;
  }
  /* FerretDB v1 has no sessions; the driver's goodbye is refused harmlessly. */
  if (strstr(message, "endSessions") != NULL) to = EIM_LOG_DEBUG;
  if (level == MONGOC_LOG_LEVEL_TRACE) return;
  pthread_mutex_lock(&log_mu);
  if (log_host != NULL) log_host->log(log_host, to, "mongoc %s: %s", domain, message);
  pthread_mutex_unlock(&log_mu);
}

static void set_log_host(const eim_host *host, const eim_host *only_if) {
  pthread_mutex_lock(&log_mu);
  if (only_if == NULL || log_host == only_if) log_host = host;
  pthread_mutex_unlock(&log_mu);
}

static void set_default_ms(mongoc_uri_t *uri, const char *opt, int32_t ms) {
  if (mongoc_uri_get_option_as_int32(uri, opt, -1) < 0)
    mongoc_uri_set_option_as_int32(uri, opt, ms);
}

static void describe_hosts(eim__mongo *st) {
  size_t off = 0;

  st->where[0] = '\0';
  for (const mongoc_host_list_t *h = mongoc_uri_get_hosts(st->uri); h != NULL;
       h = h->next) {
    int k = snprintf(st->where + off, sizeof st->where - off, "%s%s",
                     off ? "," : "", h->host_and_port);
    if (k < 0 || (size_t)k >= sizeof st->where - off) break;
    off += (size_t)k;
  }
  if (st->where[0] == '\0') snprintf(st->where, sizeof st->where, "(no host)");
}

static void mongo_fini(void *state) {
  eim__mongo *st = state;

  if (st == NULL) return;
  if (st->pool != NULL) mongoc_client_pool_destroy(st->pool);
  set_log_host(NULL, st->host);
  mongoc_uri_destroy(st->uri);
  free(st->db);
  for (int i = 0; i < EIM__CURSOR_LOCKS; i++) pthread_mutex_destroy(&st->cursor_mu[i]);
  for (int i = 0; i < EIM__CONV_LOCKS; i++) pthread_mutex_destroy(&st->conv_stripe[i].mu);
  free(st);
}

/* Options: uri (or env:NAME to read it from the environment, so a password
 * need not sit in the file), database, pool_size. On success *state owns the
 * pool; the schema exists. */
static int mongo_init(void **state, const eim_host *host, const eim_opt *opts,
                      size_t nopts, eim_err *err) {
  const char *uri_s = DEFAULT_URI, *db = DEFAULT_DB;
  long pool_size = DEFAULT_POOL;
  eim__mongo *st = NULL;
  mongoc_client_t *c = NULL;
  bson_error_t e;
  int rc = EIM_OK;

  for (size_t i = 0; i < nopts; i++) {
    const eim_opt *o = &opts[i];
    if (strcmp(o->key, "uri") == 0) {
      uri_s = o->value;
      if (strncmp(uri_s, "env:", 4) == 0 && (uri_s = getenv(o->value + 4)) == NULL) {
        rc = eim_err_set(err, EIM_EINVAL, "%s:%d: uri: environment variable %s is not set",
                         o->file, o->line, o->value + 4);
        goto cleanup;
      }
    } else if (strcmp(o->key, "database") == 0) {
      db = o->value;
      if (db[0] == '\0' || strlen(db) > 63 || strpbrk(db, "/\\. \"$") != NULL) {
        rc = eim_err_set(err, EIM_EINVAL, "%s:%d: database: invalid name '%s'", o->file,
                         o->line, db);
        goto cleanup;
      }
    } else if (strcmp(o->key, "pool_size") == 0) {
      char *end;
      errno = 0;
      pool_size = strtol(o->value, &end, 10);
      if (errno || end == o->value || *end != '\0' || pool_size < 1 || pool_size > POOL_MAX) {
        rc = eim_err_set(err, EIM_EINVAL, "%s:%d: pool_size: '%s' is not 1..%d", o->file,
                         o->line, o->value, POOL_MAX);
        goto cleanup;
      }
    } else {
      rc = eim_err_set(err, EIM_EINVAL, "%s:%d: unknown key '%s'", o->file, o->line,
                       o->key);
      goto cleanup;
    }
  }

  mongoc_init();
  mongoc_log_set_handler(mongoc_to_host, NULL);
  if ((st = calloc(1, sizeof *st)) == NULL) {
    rc = eim_err_set(err, EIM_ENOMEM, "out of memory");
    goto cleanup;
  }
  for (int i = 0; i < EIM__CURSOR_LOCKS; i++) pthread_mutex_init(&st->cursor_mu[i], NULL);
  for (int i = 0; i < EIM__CONV_LOCKS; i++) pthread_mutex_init(&st->conv_stripe[i].mu, NULL);
  st->host = host;
  set_log_host(host, NULL);
  if ((st->db = strdup(db)) == NULL) {
    rc = eim_err_set(err, EIM_ENOMEM, "out of memory");
    goto cleanup;
  }
  if ((st->uri = mongoc_uri_new_with_error(uri_s, &e)) == NULL) {
    rc = eim_err_set(err, EIM_EINVAL, "uri: %s", e.message);
    goto cleanup;
  }
  set_default_ms(st->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, SERVER_SELECTION_MS);
  set_default_ms(st->uri, MONGOC_URI_CONNECTTIMEOUTMS, CONNECT_MS);
  set_default_ms(st->uri, MONGOC_URI_SOCKETTIMEOUTMS, SOCKET_MS);
  mongoc_uri_set_option_as_int32(st->uri, MONGOC_URI_MAXPOOLSIZE, (int32_t)pool_size);
  /* FerretDB v1 has no sessions, so retryable writes cannot work. */
  mongoc_uri_set_option_as_bool(st->uri, MONGOC_URI_RETRYWRITES, false);
  mongoc_uri_set_appname(st->uri, "exampleim-store-mongo");
  describe_hosts(st);
  if ((st->pool = mongoc_client_pool_new_with_error(st->uri, &e)) == NULL) {
    rc = eim_err_set(err, EIM_EINVAL, "uri: %s", e.message);
    goto cleanup;
  }
  mongoc_client_pool_set_error_api(st->pool, MONGOC_ERROR_API_VERSION_2);

  c = eim__client(st);
  if ((rc = ping_client(st, c, err)) != EIM_OK || (rc = create_schema(st, c, err)) != EIM_OK)
    goto cleanup;
  host->log(host, EIM_LOG_INFO, "connected to %s, database %s, pool_size %ld", st->where,
            st->db, pool_size);

cleanup:
  if (st != NULL) eim__release(st, c);
  if (rc != EIM_OK) {
    mongo_fini(st);
    st = NULL;
  }
  *state = st;
  return rc;
}

/* mongoc_init() is once per process; its cleanup runs when the plugin (and
 * with it, unless someone else holds it, libmongoc) is unloaded. */
__attribute__((destructor)) static void mongo_unload(void) {
  mongoc_log_set_handler(NULL, NULL);
  mongoc_cleanup();
}

static int mongo_conn_open(void *state, void **conn, eim_err *err) {
  eim__mongo *st = state;
  eim__conn *cn;
  mongoc_client_t *c;
  int rc;

  *conn = NULL;
  c = eim__client(st);
  rc = ping_client(st, c, err);
  eim__release(st, c);
  if (rc != EIM_OK) return rc;
  if ((cn = calloc(1, sizeof *cn)) == NULL) return eim_err_set(err, EIM_ENOMEM, "out of memory");
  cn->st = st;
  *conn = cn;
  return EIM_OK;
}

static void mongo_conn_close(void *state, void *conn) { free(conn); }

static int mongo_ping(void *conn, eim_err *err) {
  eim__mongo *st = ((eim__conn *)conn)->st;
  mongoc_client_t *c = eim__client(st);
  int rc = ping_client(st, c, err);

  eim__release(st, c);
  return rc;
}

static const eim_store_ops mongo_store_ops = {
    .version = EIM_STORE_OPS_V1,
    .conn_open = mongo_conn_open,
    .conn_close = mongo_conn_close,
    .ping = mongo_ping,
    .user_create = eim__user_create,
    .user_by_name = eim__user_by_name,
    .user_by_id = eim__user_by_id,
    .conv_create = eim__conv_create,
    .conv_get = eim__conv_get,
    .conv_list = eim__conv_list,
    .conv_add_members = eim__conv_add_members,
    .conv_members = eim__conv_members,
    .user_peers = eim__user_peers,
    .append = eim__append,
    .history = eim__history,
    .read_set = eim__read_set,
};

EIM_PLUGIN_DEFINE("store-mongo", "1.0.0", mongo_init, mongo_fini,
                  .store = &mongo_store_ops);
