/* auth-jwt: where the HMAC secret comes from. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "auth_jwt.h"

/* Generated keys are 32 random bytes written as 64 hex digits and a newline,
 * so the file can be copied to other nodes and used there as secret_file. */
#define EIM__JWT_GEN_BYTES 32

/* Checks the length and copies len bytes into j->secret. */
static int eim__jwt_secret_set(eim__jwt *j, const void *s, size_t len,
                               const char *where, eim_err *err) {
  if (len < EIM__JWT_SECRET_MIN)
    return eim_err_set(err, EIM_EINVAL,
                       "%s: the JWT secret is %zu bytes, at least %d are required "
                       "(e.g. the output of `openssl rand -hex 32`)",
                       where, len, EIM__JWT_SECRET_MIN);
  if (len > EIM__JWT_SECRET_MAX)
    return eim_err_set(err, EIM_EINVAL, "%s: the JWT secret is %zu bytes, at most %d are allowed",
                       where, len, EIM__JWT_SECRET_MAX);
  memcpy(j->secret, s, len);
  j->secret_len = len;
  return EIM_OK;
}

/* Reads a whole secret file (a regular file of at most EIM__JWT_SECRET_MAX
 * bytes plus line ending), strips the trailing newline and stores it.
 * Warns when others may read it. Returns EIM_ENOTFOUND when the file does
 * not exist (the caller may create it), EIM_EINVAL on any other failure. */
static int eim__jwt_secret_read(eim__jwt *j, const char *path, const char *where,
                                eim_err *err) {
  unsigned char buf[EIM__JWT_SECRET_MAX + 3];
  size_t len = 0;
  struct stat st;
  int fd, rc;

  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    rc = errno == ENOENT ? EIM_ENOTFOUND : EIM_EINVAL;
    return eim_err_set(err, rc, "%s: cannot open JWT secret file %s: %s", where, path,
                       strerror(errno));
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    rc = eim_err_set(err, EIM_EINVAL, "%s: JWT secret file %s is not a regular file",
                     where, path);
    goto cleanup;
  }
  if ((st.st_mode & 077) != 0)
    j->host->log(j->host, EIM_LOG_WARN,
                 "JWT secret file %s is readable by group or others (mode %03o)",
                 path, (unsigned)(st.st_mode & 0777));
  for (;;) {
    ssize_t n = read(fd, buf + len, sizeof buf - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = eim_err_set(err, EIM_EINVAL, "%s: cannot read JWT secret file %s: %s", where,
                       path, strerror(errno));
      goto cleanup;
    }
    if (n == 0)
      break;
    len += (size_t)n;
    if (len == sizeof buf) {
      rc = eim_err_set(err, EIM_EINVAL, "%s: JWT secret file %s is larger than %d bytes",
                       where, path, EIM__JWT_SECRET_MAX);
      goto cleanup;
    }
  }
  while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
    len--;
  rc = eim__jwt_secret_set(j, buf, len, where, err);

cleanup:
  sodium_memzero(buf, sizeof buf);
  close(fd);
  return rc;
}

/* Writes a fresh key to data_dir/jwt.key unless someone else already did.
 * Two servers starting on the same data directory must end up with the same
 * key, and neither may read a half-written file: the key is written to a
 * private temporary file (O_EXCL, mode 0600) and published with link(),
 * which fails with EEXIST instead of replacing an existing key. Returns
 * EIM_OK when jwt.key exists afterwards (made by us or by the other start). */
static int eim__jwt_secret_generate(const char *dir, const char *path, eim_err *err) {
  unsigned char raw[EIM__JWT_GEN_BYTES];
  char hex[EIM__JWT_GEN_BYTES * 2 + 2];
  unsigned char tag[8];
  char tagx[sizeof tag * 2 + 1];
  char *tmp = NULL;
  size_t len, off = 0;
  int fd = -1, rc;

  randombytes_buf(raw, sizeof raw);
  sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
  len = strlen(hex);
  hex[len++] = '\n';
  randombytes_buf(tag, sizeof tag);
  sodium_bin2hex(tagx, sizeof tagx, tag, sizeof tag);
  if (asprintf(&tmp, "%s/.%s.%s", dir, EIM__JWT_KEY_FILE, tagx) < 0) {
    tmp = NULL;
    rc = eim_err_set(err, EIM_ENOMEM, "out of memory");
    goto cleanup;
  }
  fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    rc = eim_err_set(err, EIM_EINVAL, "cannot create JWT key file in %s: %s", dir,
                     strerror(errno));
    goto cleanup;
  }
  while (off < len) {
    ssize_t n = write(fd, hex + off, len - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = eim_err_set(err, EIM_EINVAL, "cannot write %s: %s", tmp, strerror(errno));
      goto cleanup;
    }
    off += (size_t)n;
  }
  if (fsync(fd) != 0) {
    rc = eim_err_set(err, EIM_EINVAL, "cannot sync %s: %s", tmp, strerror(errno));
    goto cleanup;
  }
  if (link(tmp, path) != 0 && errno != EEXIST) {
    rc = eim_err_set(err, EIM_EINVAL, "cannot create %s: %s", path, strerror(errno));
    goto cleanup;
  }
  rc = EIM_OK;

cleanup:
  if (fd >= 0) {
    close(fd);
    unlink(tmp);
  }
  free(tmp);
  sodium_memzero(raw, sizeof raw);
  sodium_memzero(hex, sizeof hex);
  return rc;
}

/* The last resort: data_dir/jwt.key, created on first start. Each node that
 * generates its own key rejects the others' tokens, hence the warning. */
static int eim__jwt_secret_from_data_dir(eim__jwt *j, eim_err *err) {
  const char *dir = j->host->config_get(j->host, "data_dir");
  char *path = NULL;
  int rc;

  if (dir == NULL || dir[0] == '\0')
    return eim_err_set(err, EIM_EINVAL,
                       "no JWT secret: set `secret_file` or `secret`, or %s, or give the "
                       "server a data directory to keep a generated key in",
                       EIM__JWT_SECRET_ENV);
  if (asprintf(&path, "%s/%s", dir, EIM__JWT_KEY_FILE) < 0)
    return eim_err_set(err, EIM_ENOMEM, "out of memory");
  rc = eim__jwt_secret_read(j, path, path, err);
  if (rc == EIM_ENOTFOUND) {
    rc = eim__jwt_secret_generate(dir, path, err);
    if (rc == EIM_OK)
      rc = eim__jwt_secret_read(j, path, path, err);
  }
  if (rc == EIM_OK)
    j->host->log(j->host, EIM_LOG_WARN,
                 "no JWT secret configured; using the key kept in %s. Set secret_file or "
                 EIM__JWT_SECRET_ENV " to the same secret on every node of a cluster",
                 path);
  free(path);
  return rc;
}

int eim__jwt_secret_load(eim__jwt *j, const eim__jwt_secret_src *src, eim_err *err) {
  const char *env;
  int rc;

  if (src->secret != NULL)
    return eim__jwt_secret_set(j, src->secret, strlen(src->secret), src->secret_where, err);
  env = getenv(EIM__JWT_SECRET_ENV);
  if (src->secret_file != NULL)
    rc = eim__jwt_secret_read(j, src->secret_file, src->secret_file_where, err);
  else if (env != NULL && env[0] != '\0')
    rc = eim__jwt_secret_set(j, env, strlen(env), EIM__JWT_SECRET_ENV, err);
  else
    rc = eim__jwt_secret_from_data_dir(j, err);
  /* A missing file is only "not found" inside this file; to the loader
   * every failure here is a configuration error. */
  if (rc == EIM_ENOTFOUND) {
    rc = EIM_EINVAL;
    if (err != NULL)
      err->code = rc;
  }
  return rc;
}
