/*
 * filter-links: refuses chat messages that link to domains outside an
 * allow-list. An example of a filter plugin built out of tree against the
 * installed ExampleIM kit (see README.md and docs/plugins.md).
 *
 * A link is `http://` or `https://` followed by a host, or a bare `www.`
 * host. The host (lower-cased, up to the first '/', ':', '?', '#' or space)
 * is allowed when it equals an allowed domain or ends with "." + one.
 */
#include <exampleim/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { FL_MAX_DOMAINS = 256, FL_HOST_MAX = 253 };

typedef struct filter_links {
  char *domains[FL_MAX_DOMAINS];
  size_t ndomains;
} filter_links;

static void fl_free(filter_links *f) {
  for (size_t i = 0; i < f->ndomains; i++) free(f->domains[i]);
  free(f);
}

/* Splits a comma-separated list of domains into f. Returns 0 or -1. */
static int fl_parse_domains(filter_links *f, const char *list) {
  const char *p = list;
  while (*p) {
    while (*p == ' ' || *p == ',') p++;
    const char *start = p;
    while (*p && *p != ',' && *p != ' ') p++;
    size_t n = (size_t)(p - start);
    if (n == 0) continue;
    if (n > FL_HOST_MAX || f->ndomains == FL_MAX_DOMAINS) return -1;
    char *d = strndup(start, n);
    if (d == NULL) return -1;
    for (char *c = d; *c; c++)
      if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
    f->domains[f->ndomains++] = d;
  }
  return 0;
}

static int fl_init(void **state, const eim_host *host, const eim_opt *opts, size_t nopts,
                   eim_err *err) {
  (void)host;
  filter_links *f = calloc(1, sizeof *f);
  if (f == NULL) return eim_err_set(err, EIM_ENOMEM, "out of memory");
  for (size_t i = 0; i < nopts; i++) {
    if (strcmp(opts[i].key, "allow_domains") == 0) {
      if (fl_parse_domains(f, opts[i].value) != 0) {
        fl_free(f);
        return eim_err_set(err, EIM_EINVAL, "%s:%d: allow_domains: at most %d domains of at most %d bytes",
                           opts[i].file, opts[i].line, FL_MAX_DOMAINS, FL_HOST_MAX);
      }
    } else {
      fl_free(f);
      return eim_err_set(err, EIM_EINVAL, "%s:%d: unknown key '%s'", opts[i].file, opts[i].line,
                         opts[i].key);
    }
  }
  *state = f;
  return EIM_OK;
}

static void fl_fini(void *state) { fl_free(state); }

static int fl_host_end(char c) {
  return c == '\0' || c == '/' || c == ':' || c == '?' || c == '#' || c == ' ' || c == '\n' ||
         c == '\t' || c == '"' || c == '\'' || c == '<' || c == '>' || c == ')';
}

/* 1 when host[0..n) is an allowed domain or a subdomain of one. */
static int fl_allowed(const filter_links *f, const char *host, size_t n) {
  for (size_t i = 0; i < f->ndomains; i++) {
    size_t dl = strlen(f->domains[i]);
    if (n == dl && strncasecmp(host, f->domains[i], n) == 0) return 1;
    if (n > dl && host[n - dl - 1] == '.' && strncasecmp(host + n - dl, f->domains[i], dl) == 0)
      return 1;
  }
  return 0;
}

static int fl_inspect(void *state, const eim_filter_msg *m, eim_filter_result *r, eim_arena *a,
                      eim_err *err) {
  const filter_links *f = state;
  (void)a;
  (void)err;
  r->verdict = EIM_FILTER_PASS;
  if (strcmp(m->content_type, "text") != 0) return EIM_OK;
  const char *s = m->content, *end = m->content + m->content_len;
  for (const char *p = s; p < end; p++) {
    const char *host = NULL;
    size_t left = (size_t)(end - p);
    if (left > 8 && strncasecmp(p, "https://", 8) == 0) host = p + 8;
    else if (left > 7 && strncasecmp(p, "http://", 7) == 0) host = p + 7;
    else if (left > 4 && strncasecmp(p, "www.", 4) == 0 && (p == s || p[-1] == ' ' || p[-1] == '\n'))
      host = p;
    if (host == NULL) continue;
    const char *h = host;
    while (h < end && !fl_host_end(*h)) h++;
    size_t n = (size_t)(h - host);
    if (n == 0) continue;
    if (!fl_allowed(f, host, n)) {
      r->verdict = EIM_FILTER_REJECT;
      snprintf(r->reason, sizeof r->reason, "links to %.*s are not allowed here",
               (int)(n > 100 ? 100 : n), host);
      return EIM_OK;
    }
    p = h - 1;
  }
  return EIM_OK;
}

static const eim_filter_ops fl_ops = {EIM_FILTER_OPS_V1, fl_inspect, NULL};

EIM_PLUGIN_DEFINE("filter-links", "1.0.0", fl_init, fl_fini, .filter = &fl_ops)
