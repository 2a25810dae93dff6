#include "kvfile.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { KV_MAX_FILE = 1 << 20, KV_MAX_LINE = 4096 };

static int key_char(int c) { return isalnum(c) || c == '_' || c == '.' || c == '-'; }

void eim_kvfile_free(eim_kvfile *f) {
  for (size_t i = 0; i < f->n; i++) {
    free(f->items[i].key);
    free(f->items[i].value);
  }
  free(f->items);
  free(f->path);
  memset(f, 0, sizeof *f);
}

const eim_kv *eim_kvfile_get(const eim_kvfile *f, const char *key) {
  for (size_t i = 0; i < f->n; i++)
    if (strcmp(f->items[i].key, key) == 0) return &f->items[i];
  return NULL;
}

int eim_kvfile_parse_buf(const char *path, const char *buf, size_t len,
                         eim_kvfile *out, char *errbuf, size_t errlen) {
  memset(out, 0, sizeof *out);
  out->path = strdup(path);
  if (out->path == NULL) goto nomem;
  size_t cap = 0;
  int lineno = 0;
  size_t pos = 0;
  while (pos < len) {
    size_t end = pos;
    while (end < len && buf[end] != '\n') end++;
    lineno++;
    const char *s = buf + pos, *e = buf + end;
    pos = end + 1;
    if (e - s > KV_MAX_LINE) {
      snprintf(errbuf, errlen, "%s:%d: line too long", path, lineno);
      goto fail;
    }
    for (const char *p = s; p < e; p++)
      if (*p == '\0') {
        snprintf(errbuf, errlen, "%s:%d: NUL byte in line", path, lineno);
        goto fail;
      }
    while (s < e && isspace((unsigned char)*s)) s++;
    while (e > s && isspace((unsigned char)e[-1])) e--;
    if (s == e || *s == '#') continue;
    const char *k = s;
    while (s < e && key_char((unsigned char)*s)) s++;
    size_t klen = (size_t)(s - k);
    while (s < e && (*s == ' ' || *s == '\t')) s++;
    if (klen == 0 || s == e || *s != '=') {
      snprintf(errbuf, errlen, "%s:%d: expected 'key = value'", path, lineno);
      goto fail;
    }
    s++;
    while (s < e && isspace((unsigned char)*s)) s++;
    char *key = strndup(k, klen);
    if (key == NULL) goto nomem;
    for (size_t i = 0; i < out->n; i++)
      if (strcmp(out->items[i].key, key) == 0) {
        snprintf(errbuf, errlen, "%s:%d: key '%s' repeated (first on line %d)", path,
                 lineno, key, out->items[i].line);
        free(key);
        goto fail;
      }
    char *value = strndup(s, (size_t)(e - s));
    if (value == NULL) {
      free(key);
      goto nomem;
    }
    if (out->n == cap) {
      cap = cap ? cap * 2 : 8;
      eim_kv *items = realloc(out->items, cap * sizeof *items);
      if (items == NULL) {
        free(key);
        free(value);
        goto nomem;
      }
      out->items = items;
    }
    out->items[out->n++] = (eim_kv){key, value, lineno};
  }
  return 0;

nomem:
  snprintf(errbuf, errlen, "%s: out of memory", path);
fail:
  eim_kvfile_free(out);
  return -1;
}

int eim_kvfile_load(const char *path, eim_kvfile *out, char *errbuf, size_t errlen) {
  memset(out, 0, sizeof *out);
  FILE *fp = fopen(path, "rb");
  if (fp == NULL) {
    snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  char *buf = malloc(KV_MAX_FILE + 1);
  int rc = -1;
  if (buf == NULL) {
    snprintf(errbuf, errlen, "%s: out of memory", path);
    goto done;
  }
  size_t n = fread(buf, 1, KV_MAX_FILE + 1, fp);
  if (ferror(fp)) {
    snprintf(errbuf, errlen, "%s: read error", path);
    goto done;
  }
  if (n > KV_MAX_FILE) {
    snprintf(errbuf, errlen, "%s: larger than %d bytes", path, KV_MAX_FILE);
    goto done;
  }
  rc = eim_kvfile_parse_buf(path, buf, n, out, errbuf, errlen);
done:
  free(buf);
  fclose(fp);
  return rc;
}

int eim_parse_bool(const char *s) {
  static const char *const yes[] = {"true", "yes", "on", "1"};
  static const char *const no[] = {"false", "no", "off", "0"};
  for (int i = 0; i < 4; i++) {
    if (strcasecmp(s, yes[i]) == 0) return 1;
    if (strcasecmp(s, no[i]) == 0) return 0;
  }
  return -1;
}

int eim_parse_i64(const char *s, long long min, long long max, long long *out) {
  if (*s == '\0' || isspace((unsigned char)*s)) return -1;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max) return -1;
  *out = v;
  return 0;
}
