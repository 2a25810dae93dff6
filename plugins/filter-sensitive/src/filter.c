/* filter-sensitive: masks or rejects chat text containing terms of a word
 * list. The ABI wrapper around the matcher: options, inspect, reload. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exampleim/plugin.h"
#include "mask.h"
#include "matcher.h"
#include "utf8.h"
#include "wordlist.h"

#define FS_REASON "message contains a blocked term"

typedef struct fs_state {
  const eim_host *host;
  char *words_path; /* resolved against the plugins.d file's directory */
  unsigned flags;   /* EIM_FS_* */
  int reject;       /* mode = reject */
  char mask[4];
  size_t mask_len;
  eim_fs_matcher *matcher; /* swapped whole by reload */
  size_t nterms;
  eim_fs_spans spans; /* scratch; filters run on the loop thread only */
} fs_state;

static const char *opt_file(const eim_opt *o) {
  return (o != NULL && o->file != NULL) ? o->file : "filter-sensitive";
}

/* Joins a relative path to the directory of the config file that named it;
 * returns a malloc'ed string or NULL. */
static char *resolve_path(const char *value, const char *conf_file) {
  const char *slash = conf_file ? strrchr(conf_file, '/') : NULL;
  size_t dir = slash ? (size_t)(slash - conf_file) + 1 : 0;
  size_t len = strlen(value);
  char *p;

  if (value[0] == '/')
    dir = 0;
  p = malloc(dir + len + 1);
  if (p == NULL)
    return NULL;
  if (dir > 0)
    memcpy(p, conf_file, dir);
  memcpy(p + dir, value, len + 1);
  return p;
}

/* 1 when v is exactly one printable code point (no control character). */
static int one_char(const char *v, size_t *len) {
  uint32_t cp;
  size_t n = strlen(v);
  size_t k = n ? eim_fs_utf8_decode((const unsigned char *)v, n, &cp) : 0;
  if (k == 0 || k != n || cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
    return 0;
  *len = k;
  return 1;
}

static int parse_opts(fs_state *s, const eim_opt *opts, size_t nopts,
                      eim_err *err) {
  const eim_opt *words = NULL, *seen[4] = {NULL, NULL, NULL, NULL};
  static const char *const keys[4] = {"words_file", "mode", "mask_char",
                                      "skip_separators"};
  size_t i, k;

  for (i = 0; i < nopts; i++) {
    const eim_opt *o = &opts[i];
    const char *v = o->value ? o->value : "";
    for (k = 0; k < 4 && strcmp(o->key, keys[k]) != 0; k++)
      ;
    if (k == 4)
      return eim_err_set(err, EIM_EINVAL, "%s:%d: unknown key '%s'", opt_file(o),
                         o->line, o->key);
    if (seen[k] != NULL)
      return eim_err_set(err, EIM_EINVAL, "%s:%d: duplicate key '%s' (first on line %d)",
                         opt_file(o), o->line, o->key, seen[k]->line);
    seen[k] = o;
    if (k == 0) {
      if (v[0] == '\0')
        return eim_err_set(err, EIM_EINVAL, "%s:%d: words_file is empty", opt_file(o),
                           o->line);
      words = o;
    } else if (k == 1) {
      if (strcmp(v, "mask") != 0 && strcmp(v, "reject") != 0)
        return eim_err_set(err, EIM_EINVAL, "%s:%d: mode must be mask or reject, not '%s'",
                           opt_file(o), o->line, v);
      s->reject = strcmp(v, "reject") == 0;
    } else if (k == 2) {
      if (!one_char(v, &s->mask_len))
        return eim_err_set(err, EIM_EINVAL,
                           "%s:%d: mask_char must be exactly one printable character",
                           opt_file(o), o->line);
      memcpy(s->mask, v, s->mask_len);
    } else {
      if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
        return eim_err_set(err, EIM_EINVAL,
                           "%s:%d: skip_separators must be true or false, not '%s'",
                           opt_file(o), o->line, v);
      s->flags = strcmp(v, "true") == 0 ? EIM_FS_SKIP_SEPARATORS : 0;
    }
  }
  if (words == NULL)
    return eim_err_set(err, EIM_EINVAL, "%s: words_file is required",
                       opt_file(nopts ? &opts[0] : NULL));
  s->words_path = resolve_path(words->value, words->file);
  if (s->words_path == NULL)
    return eim_err_set(err, EIM_ENOMEM, "out of memory");
  return EIM_OK;
}

static void fs_fini(void *state) {
  fs_state *s = state;
  if (s == NULL)
    return;
  eim_fs_matcher_free(s->matcher);
  eim_fs_spans_free(&s->spans);
  free(s->words_path);
  free(s);
}

static int fs_init(void **state, const eim_host *host, const eim_opt *opts,
                   size_t nopts, eim_err *err) {
  fs_state *s = NULL;
  int rc;

  *state = NULL;
  if (host == NULL ||
      host->size < offsetof(eim_host, arena_alloc) + sizeof host->arena_alloc ||
      host->arena_alloc == NULL) {
    rc = eim_err_set(err, EIM_EINVAL, "filter-sensitive: host table lacks arena_alloc");
    goto cleanup;
  }
  s = calloc(1, sizeof *s);
  if (s == NULL) {
    rc = eim_err_set(err, EIM_ENOMEM, "out of memory");
    goto cleanup;
  }
  s->host = host;
  s->mask[0] = '*';
  s->mask_len = 1;
  rc = parse_opts(s, opts, nopts, err);
  if (rc != EIM_OK)
    goto cleanup;
  rc = eim_fs_words_load(s->words_path, s->flags, &s->matcher, &s->nterms, err);
  if (rc != EIM_OK)
    goto cleanup;
  if (host->log != NULL)
    host->log(host, EIM_LOG_INFO, "word list loaded from %s: %zu terms, %zu states",
              s->words_path, s->nterms, eim_fs_matcher_states(s->matcher));
  *state = s;
  s = NULL;

cleanup:
  fs_fini(s);
  return rc;
}

static void count(const fs_state *s, const char *name) {
  if (s->host->counter_add != NULL)
    s->host->counter_add(s->host, name, 1);
}

static int fs_inspect(void *state, const eim_filter_msg *m, eim_filter_result *r,
                      eim_arena *a, eim_err *err) {
  fs_state *s = state;
  size_t out_len;
  char *out;

  r->verdict = EIM_FILTER_PASS;
  r->content = NULL;
  r->content_len = 0;
  r->reason[0] = '\0';
  if (m->content_type != NULL && strcmp(m->content_type, "text") != 0)
    return EIM_OK;
  if (eim_fs_find(s->matcher, m->content, m->content_len, &s->spans) != EIM_OK)
    return eim_err_set(err, EIM_ENOMEM, "out of memory scanning a message");
  if (s->spans.n == 0)
    return EIM_OK;

  out_len = s->reject ? 0 : eim_fs_masked_len(m->content, m->content_len, &s->spans,
                                               s->mask_len);
  if (s->reject || out_len > m->max_len) {
    r->verdict = EIM_FILTER_REJECT;
    snprintf(r->reason, sizeof r->reason, "%s",
             s->reject ? FS_REASON : FS_REASON " and masking it would exceed the length limit");
    count(s, "filter_sensitive_rejected_total");
    return EIM_OK;
  }
  out = s->host->arena_alloc(a, out_len + 1);
  if (out == NULL)
    return eim_err_set(err, EIM_ENOMEM, "out of memory masking a message");
  eim_fs_mask(m->content, m->content_len, &s->spans, s->mask, s->mask_len, out);
  out[out_len] = '\0';
  r->verdict = EIM_FILTER_REWRITE;
  r->content = out;
  r->content_len = out_len;
  count(s, "filter_sensitive_masked_total");
  return EIM_OK;
}

/* Builds the new automaton completely before touching the old one, so a
 * broken list leaves the filter as it was. */
static int fs_reload(void *state, eim_err *err) {
  fs_state *s = state;
  eim_fs_matcher *m = NULL;
  size_t n = 0;
  eim_err why;
  int rc = eim_fs_words_load(s->words_path, s->flags, &m, &n, &why);

  if (rc != EIM_OK) {
    if (s->host->log != NULL)
      s->host->log(s->host, EIM_LOG_WARN,
                   "word list not reloaded, keeping the old one: %s",
                   why.msg);
    return eim_err_set(err, rc, "%s", why.msg);
  }
  eim_fs_matcher_free(s->matcher);
  s->matcher = m;
  s->nterms = n;
  if (s->host->log != NULL)
    s->host->log(s->host, EIM_LOG_INFO, "word list reloaded from %s: %zu terms",
                 s->words_path, n);
  return EIM_OK;
}

static const eim_filter_ops fs_ops = {
    .version = EIM_FILTER_OPS_V1,
    .inspect = fs_inspect,
    .reload = fs_reload,
};

EIM_PLUGIN_DEFINE("filter-sensitive", "1.0.0", fs_init, fs_fini, .filter = &fs_ops)
