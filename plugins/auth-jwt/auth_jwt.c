/* auth-jwt: the plugin descriptor, its options and its life cycle. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "auth_jwt.h"

/* A "file:line" of one option, for messages. */
typedef struct eim__jwt_where {
  char s[192];
} eim__jwt_where;

static void eim__jwt_where_set(eim__jwt_where *w, const eim_opt *o) {
  snprintf(w->s, sizeof w->s, "%s:%d", o->file != NULL ? o->file : "(config)", o->line);
}

/* ttl: whole seconds, no sign, no suffix, within the documented bounds. */
static int eim__jwt_parse_ttl(const eim_opt *o, int64_t *out, eim_err *err) {
  const char *v = o->value;
  char *end = NULL;
  long long n;

  if (v[0] < '0' || v[0] > '9')
    goto invalid;
  errno = 0;
  n = strtoll(v, &end, 10);
  if (errno != 0 || *end != '\0' || n < EIM__JWT_TTL_MIN || n > EIM__JWT_TTL_MAX)
    goto invalid;
  *out = n;
  return EIM_OK;

invalid:
  return eim_err_set(err, EIM_EINVAL, "%s:%d: ttl '%s' must be whole seconds from %d to %d",
                     o->file, o->line, v, EIM__JWT_TTL_MIN, EIM__JWT_TTL_MAX);
}

static int eim__jwt_parse_issuer(const eim_opt *o, char *out, eim_err *err) {
  size_t len = strlen(o->value), i;

  if (len == 0 || len > EIM__JWT_ISSUER_MAX)
    return eim_err_set(err, EIM_EINVAL, "%s:%d: issuer must be 1 to %d bytes", o->file,
                       o->line, EIM__JWT_ISSUER_MAX);
  for (i = 0; i < len; i++)
    if ((unsigned char)o->value[i] < 0x20 || o->value[i] == 0x7f)
      return eim_err_set(err, EIM_EINVAL, "%s:%d: issuer contains a control character",
                         o->file, o->line);
  memcpy(out, o->value, len + 1);
  return EIM_OK;
}

/* Applies the options to j and fills src with the secret sources. Strings
 * in src point into opts and into wh[]. Any unknown or repeated key is
 * refused with its file and line. */
static int eim__jwt_options(eim__jwt *j, const eim_opt *opts, size_t nopts,
                            eim__jwt_secret_src *src, eim__jwt_where wh[2], eim_err *err) {
  const eim_opt *seen[4] = {NULL, NULL, NULL, NULL};
  static const char *const keys[4] = {"secret", "secret_file", "ttl", "issuer"};
  size_t i;
  int k, rc;

  for (i = 0; i < nopts; i++) {
    const eim_opt *o = &opts[i];
    for (k = 0; k < 4 && strcmp(o->key, keys[k]) != 0; k++)
      ;
    if (k == 4)
      return eim_err_set(err, EIM_EINVAL, "%s:%d: unknown key '%s'", o->file, o->line,
                         o->key);
    if (seen[k] != NULL)
      return eim_err_set(err, EIM_EINVAL, "%s:%d: key '%s' given twice (first at line %d)",
                         o->file, o->line, o->key, seen[k]->line);
    seen[k] = o;
  }
  if (seen[0] != NULL) {
    eim__jwt_where_set(&wh[0], seen[0]);
    src->secret = seen[0]->value;
    src->secret_where = wh[0].s;
  }
  if (seen[1] != NULL) {
    if (seen[1]->value[0] == '\0')
      return eim_err_set(err, EIM_EINVAL, "%s:%d: secret_file is empty", seen[1]->file,
                         seen[1]->line);
    eim__jwt_where_set(&wh[1], seen[1]);
    src->secret_file = seen[1]->value;
    src->secret_file_where = wh[1].s;
  }
  if (seen[2] != NULL && (rc = eim__jwt_parse_ttl(seen[2], &j->ttl_s, err)) != EIM_OK)
    return rc;
  if (seen[3] != NULL && (rc = eim__jwt_parse_issuer(seen[3], j->issuer, err)) != EIM_OK)
    return rc;
  return EIM_OK;
}

/* Creates the state: options, then the secret. On failure nothing is kept
 * and err says why. */
static int eim__jwt_init(void **state, const eim_host *host, const eim_opt *opts,
                         size_t nopts, eim_err *err) {
  eim__jwt_secret_src src = {NULL, NULL, NULL, NULL};
  eim__jwt_where wh[2];
  eim__jwt *j;
  int rc;

  *state = NULL;
  if (host == NULL || host->size < offsetof(eim_host, now_ms) + sizeof host->now_ms)
    return eim_err_set(err, EIM_EINVAL, "host API table too old for auth-jwt");
  if (sodium_init() < 0)
    return eim_err_set(err, EIM_EINTERNAL, "libsodium failed to initialise");
  j = calloc(1, sizeof *j);
  if (j == NULL)
    return eim_err_set(err, EIM_ENOMEM, "out of memory");
  j->host = host;
  j->ttl_s = EIM__JWT_TTL_DEFAULT;
  rc = eim__jwt_options(j, opts, nopts, &src, wh, err);
  if (rc == EIM_OK)
    rc = eim__jwt_secret_load(j, &src, err);
  if (rc != EIM_OK)
    goto cleanup;
  *state = j;
  j = NULL;

cleanup:
  if (j != NULL) {
    sodium_memzero(j, sizeof *j);
    free(j);
  }
  return rc;
}

static void eim__jwt_fini(void *state) {
  eim__jwt *j = state;

  if (j == NULL)
    return;
  sodium_memzero(j, sizeof *j);
  free(j);
}

static const eim_auth_ops eim__jwt_auth_ops = {
    .version = EIM_AUTH_OPS_V1,
    .issue = eim__jwt_issue,
    .verify = eim__jwt_verify,
};

EIM_PLUGIN_DEFINE("auth-jwt", "1.0.0", eim__jwt_init, eim__jwt_fini,
                  .auth = &eim__jwt_auth_ops)
