/* store-mysql: the descriptor, options and plugin lifetime. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "my_internal.h"

#define PASSWORD_ENV "EXAMPLEIM_MYSQL_PASSWORD"
#define PASSWORD_FILE_MAX 1024

/* mysql_library_init is not thread-safe and mysql_library_end frees what
 * every handle shares, so the first init and the last fini own them. */
static pthread_mutex_t lib_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned lib_users;

static int parse_uint(const eim_opt *o, unsigned lo, unsigned hi, unsigned *out,
                      eim_err *err) {
  unsigned long v;
  char *end;

  errno = 0;
  v = strtoul(o->value, &end, 10);
  if (o->value[0] < '0' || o->value[0] > '9' || *end != '\0' || errno != 0 ||
      v < lo || v > hi)
    return eim_err_set(err, EIM_EINVAL, "%s:%d: %s must be a number from %u to %u",
                       o->file, o->line, o->key, lo, hi);
  *out = (unsigned)v;
  return EIM_OK;
}

static int set_string(const eim_opt *o, char **out, eim_err *err) {
  char *copy = strdup(o->value);

  if (copy == NULL)
    return eim_err_set(err, EIM_ENOMEM, "out of memory");
  free(*out);
  *out = copy;
  return EIM_OK;
}

/* Reads the first line of the file named by o, without its line ending, into
 * a new string at *out. */
static int read_password_file(const eim_opt *o, char **out, eim_err *err) {
  char buf[PASSWORD_FILE_MAX + 2];
  size_t n;
  FILE *f;

  f = fopen(o->value, "r");
  if (f == NULL)
    return eim_err_set(err, EIM_EINVAL, "%s:%d: password_file '%s': %s", o->file,
                       o->line, o->value, strerror(errno));
  n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  buf[strcspn(buf, "\r\n")] = '\0';
  if (strlen(buf) > PASSWORD_FILE_MAX)
    return eim_err_set(err, EIM_EINVAL, "%s:%d: password_file '%s' is too long",
                       o->file, o->line, o->value);
  *out = strdup(buf);
  explicit_bzero(buf, sizeof buf);
  return *out != NULL ? EIM_OK : eim_err_set(err, EIM_ENOMEM, "out of memory");
}

static void state_free(eim__my_state *s) {
  if (s->password != NULL)
    explicit_bzero(s->password, strlen(s->password));
  free(s->host_name);
  free(s->user);
  free(s->password);
  free(s->database);
  pthread_mutex_destroy(&s->schema_lock);
  free(s);
}

static int apply_opt(eim__my_state *s, const eim_opt *o, const eim_opt **pw_src,
                     eim_err *err) {
  if (strcmp(o->key, "host") == 0)
    return set_string(o, &s->host_name, err);
  if (strcmp(o->key, "port") == 0)
    return parse_uint(o, 1, 65535, &s->port, err);
  if (strcmp(o->key, "user") == 0)
    return set_string(o, &s->user, err);
  if (strcmp(o->key, "database") == 0)
    return set_string(o, &s->database, err);
  if (strcmp(o->key, "pool_size") == 0)
    return parse_uint(o, 1, 4096, &s->pool_size, err);
  if (strcmp(o->key, "connect_timeout") == 0)
    return parse_uint(o, 1, 3600, &s->connect_timeout, err);
  if (strcmp(o->key, "io_timeout") == 0)
    return parse_uint(o, 1, 3600, &s->io_timeout, err);
  if (strcmp(o->key, "password") == 0 || strcmp(o->key, "password_file") == 0) {
    if (*pw_src != NULL)
      return eim_err_set(err, EIM_EINVAL,
                         "%s:%d: %s: the password is already set at %s:%d", o->file,
                         o->line, o->key, (*pw_src)->file, (*pw_src)->line);
    *pw_src = o;
    return EIM_OK;
  }
  return eim_err_set(err, EIM_EINVAL, "%s:%d: unknown key '%s'", o->file, o->line,
                     o->key);
}

static int store_init(void **state, const eim_host *host, const eim_opt *opts,
                      size_t nopts, eim_err *err) {
  const eim_opt *pw_src = NULL;
  const char *env;
  eim__my_state *s;
  size_t i, j;
  int rc;

  s = calloc(1, sizeof *s);
  if (s == NULL)
    return eim_err_set(err, EIM_ENOMEM, "out of memory");
  pthread_mutex_init(&s->schema_lock, NULL);
  s->host = host;
  s->port = 3306;
  s->pool_size = 16;
  s->connect_timeout = 5;
  s->io_timeout = 30;
  s->host_name = strdup("127.0.0.1");
  s->user = strdup("exampleim");
  s->database = strdup("exampleim");
  if (s->host_name == NULL || s->user == NULL || s->database == NULL) {
    rc = eim_err_set(err, EIM_ENOMEM, "out of memory");
    goto fail;
  }
  for (i = 0; i < nopts; i++) {
    for (j = 0; j < i; j++)
      if (strcmp(opts[j].key, opts[i].key) == 0) {
        rc = eim_err_set(err, EIM_EINVAL, "%s:%d: duplicate key '%s' (first at line %d)",
                         opts[i].file, opts[i].line, opts[i].key, opts[j].line);
        goto fail;
      }
    rc = apply_opt(s, &opts[i], &pw_src, err);
    if (rc != EIM_OK)
      goto fail;
  }
  if (pw_src != NULL && strcmp(pw_src->key, "password_file") == 0) {
    rc = read_password_file(pw_src, &s->password, err);
  } else if (pw_src != NULL) {
    s->password = strdup(pw_src->value);
    rc = s->password != NULL ? EIM_OK : eim_err_set(err, EIM_ENOMEM, "out of memory");
  } else if ((env = getenv(PASSWORD_ENV)) != NULL) {
    s->password = strdup(env);
    rc = s->password != NULL ? EIM_OK : eim_err_set(err, EIM_ENOMEM, "out of memory");
  } else {
    rc = EIM_OK;
  }
  if (rc != EIM_OK)
    goto fail;

  pthread_mutex_lock(&lib_lock);
  if (lib_users == 0 && mysql_library_init(0, NULL, NULL) != 0)
    rc = eim_err_set(err, EIM_EINTERNAL, "mysql_library_init failed");
  else
    lib_users++;
  pthread_mutex_unlock(&lib_lock);
  if (rc != EIM_OK)
    goto fail;
  *state = s;
  return EIM_OK;

fail:
  state_free(s);
  return rc;
}

static void store_fini(void *state) {
  if (state == NULL)
    return;
  state_free(state);
  pthread_mutex_lock(&lib_lock);
  if (--lib_users == 0)
    mysql_library_end();
  pthread_mutex_unlock(&lib_lock);
}

static const eim_store_ops store_ops = {
    .version = EIM_STORE_OPS_V1,
    .conn_open = eim__my_conn_open,
    .conn_close = eim__my_conn_close,
    .ping = eim__my_ping,
    .user_create = eim__my_user_create,
    .user_by_name = eim__my_user_by_name,
    .user_by_id = eim__my_user_by_id,
    .conv_create = eim__my_conv_create,
    .conv_get = eim__my_conv_get,
    .conv_list = eim__my_conv_list,
    .conv_add_members = eim__my_conv_add_members,
    .conv_members = eim__my_conv_members,
    .user_peers = eim__my_user_peers,
    .append = eim__my_append,
    .history = eim__my_history,
    .read_set = eim__my_read_set,
};

EIM_PLUGIN_DEFINE("store-mysql", "1.0.0", store_init, store_fini, .store = &store_ops)
