#include "wordlist.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

int eim_fs_words_parse(const char *buf, size_t len, const char *name,
                       unsigned flags, eim_fs_matcher **out, size_t *nterms,
                       eim_err *err) {
  const char **terms = NULL;
  size_t *lens = NULL;
  int *lines = NULL;
  size_t n = 0, cap = 0, at = 0, bad = 0;
  int line = 0, rc = EIM_OK;
  eim_err why;

  *out = NULL;
  if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
    at = 3;
  while (at < len) {
    const char *nl = memchr(buf + at, '\n', len - at);
    size_t end = nl ? (size_t)(nl - buf) : len, b = at, e = end;
    line++;
    at = end + 1;
    while (b < e && is_blank(buf[b]))
      b++;
    while (e > b && is_blank(buf[e - 1]))
      e--;
    if (b == e || buf[b] == '#')
      continue;
    if (e - b > EIM_FS_LINE_MAX_BYTES) {
      rc = eim_err_set(err, EIM_EINVAL, "%s:%d: term longer than %u bytes", name,
                       line, EIM_FS_LINE_MAX_BYTES);
      goto cleanup;
    }
    if (n == EIM_FS_TERMS_MAX) {
      rc = eim_err_set(err, EIM_EINVAL, "%s:%d: more than %u terms", name, line,
                       EIM_FS_TERMS_MAX);
      goto cleanup;
    }
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 64;
      const char **t = realloc(terms, ncap * sizeof *t);
      size_t *l = t ? realloc(lens, ncap * sizeof *l) : NULL;
      int *ln = l ? realloc(lines, ncap * sizeof *ln) : NULL;
      if (t != NULL)
        terms = t;
      if (l != NULL)
        lens = l;
      if (ln == NULL) {
        rc = eim_err_set(err, EIM_ENOMEM, "out of memory reading %s", name);
        goto cleanup;
      }
      lines = ln;
      cap = ncap;
    }
    terms[n] = buf + b;
    lens[n] = e - b;
    lines[n] = line;
    n++;
  }
  if (n == 0) {
    rc = eim_err_set(err, EIM_EINVAL, "%s: contains no terms", name);
    goto cleanup;
  }
  rc = eim_fs_matcher_build(terms, lens, n, flags, out, &bad, &why);
  if (rc == EIM_EINVAL)
    eim_err_set(err, rc, "%s:%d: %s", name, lines[bad], why.msg);
  else if (rc != EIM_OK)
    eim_err_set(err, rc, "%s: %s", name, why.msg);
  else
    *nterms = n;

cleanup:
  free(terms);
  free(lens);
  free(lines);
  return rc;
}

/* Reads the whole regular file at path into a malloc'ed buffer the caller
 * frees; errno tells why on failure. */
static char *read_file(const char *path, size_t *len) {
  struct stat st;
  char *buf = NULL;
  size_t got = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    return NULL;
  if (fstat(fd, &st) != 0)
    goto fail;
  if (!S_ISREG(st.st_mode)) {
    errno = EINVAL;
    goto fail;
  }
  if ((uint64_t)st.st_size > EIM_FS_WORDS_MAX_BYTES) {
    errno = EFBIG;
    goto fail;
  }
  buf = malloc((size_t)st.st_size + 1);
  if (buf == NULL)
    goto fail;
  while (got < (size_t)st.st_size) {
    ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      goto fail;
    if (r == 0)
      break; /* the file shrank meanwhile: take what is there */
    got += (size_t)r;
  }
  close(fd);
  *len = got;
  return buf;

fail:
  {
    int e = errno;
    free(buf);
    close(fd);
    errno = e;
  }
  return NULL;
}

int eim_fs_words_load(const char *path, unsigned flags, eim_fs_matcher **out,
                      size_t *nterms, eim_err *err) {
  size_t len = 0;
  char *buf = read_file(path, &len);
  int rc;

  *out = NULL;
  if (buf == NULL)
    return eim_err_set(err, EIM_EINVAL, "cannot read words_file %s: %s", path,
                       strerror(errno));
  rc = eim_fs_words_parse(buf, len, path, flags, out, nterms, err);
  free(buf);
  return rc;
}
