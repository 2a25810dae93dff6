#include "loader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "arena.h"
#include "kvfile.h"
#include "log.h"
#include "mailbox.h"
#include "metrics.h"

/* --- The host API table ------------------------------------------------ */

static const eim_config *host_cfg;

static void host_log(const eim_host *h, int level, const char *fmt, ...) {
  const eim_plugin_inst *pi = h->host_ctx;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  for (char *c = msg; *c; c++)
    if (*c == '"' || *c == '\n') *c = *c == '"' ? '\'' : ' ';
  eim_log(level, "plugin=%s msg=\"%s\"", pi->desc ? pi->desc->name : "?", msg);
}

static const char *host_config_get(const eim_host *h, const char *key) {
  (void)h;
  return host_cfg ? eim_config_get(host_cfg, key) : NULL;
}

static int host_post(const eim_host *h, void (*fn)(void *), void *arg) {
  (void)h;
  return eim_mailbox_post(fn, arg) == 0 ? EIM_OK : EIM_ENOMEM;
}

static const char *plugin_name(const eim_host *h) {
  const eim_plugin_inst *pi = h->host_ctx;
  return pi->desc ? pi->desc->name : "unknown";
}

static void host_counter_add(const eim_host *h, const char *name, double d) {
  eim_metrics_plugin(plugin_name(h), name, 'c', d);
}

static void host_gauge_set(const eim_host *h, const char *name, double v) {
  eim_metrics_plugin(plugin_name(h), name, 'g', v);
}

static void host_observe(const eim_host *h, const char *name, double v) {
  char n[128];
  snprintf(n, sizeof n, "%s_sum", name);
  eim_metrics_plugin(plugin_name(h), n, 'c', v);
  snprintf(n, sizeof n, "%s_count", name);
  eim_metrics_plugin(plugin_name(h), n, 'c', 1);
}

static int64_t host_now_ms(const eim_host *h) {
  (void)h;
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void fill_host(eim_host *h, eim_plugin_inst *pi) {
  memset(h, 0, sizeof *h);
  h->size = sizeof *h;
  h->abi_major = EIM_ABI_MAJOR;
  h->abi_minor = EIM_ABI_MINOR;
  h->host_ctx = pi;
  h->log = host_log;
  h->config_get = host_config_get;
  h->post = host_post;
  h->counter_add = host_counter_add;
  h->gauge_set = host_gauge_set;
  h->observe = host_observe;
  h->arena_alloc = eim_arena_alloc;
  h->arena_strndup = eim_arena_strndup;
  h->now_ms = host_now_ms;
}

/* --- Descriptor checks ------------------------------------------------- */

#define NEED(ops, fn)                                                               \
  do {                                                                              \
    if ((ops)->fn == NULL) {                                                        \
      snprintf(why, whylen, "missing mandatory %s function '%s'", kind, #fn);       \
      return -1;                                                                    \
    }                                                                               \
  } while (0)

/* Returns 0 when every mandatory member of every kind the plugin provides
 * is there, else -1 with the reason. */
static int check_kinds(const eim_plugin_desc *d, char *why, size_t whylen) {
  const char *kind;
  if (d->init == NULL || d->fini == NULL) {
    snprintf(why, whylen, "missing mandatory function '%s'", d->init ? "fini" : "init");
    return -1;
  }
  if (!d->auth && !d->store && !d->queue && !d->filter) {
    snprintf(why, whylen, "provides no kind (auth, store, queue or filter)");
    return -1;
  }
  if (d->auth) {
    kind = "auth";
    if (d->auth->version < EIM_AUTH_OPS_V1) goto old;
    NEED(d->auth, issue);
    NEED(d->auth, verify);
  }
  if (d->store) {
    kind = "store";
    if (d->store->version < EIM_STORE_OPS_V1) goto old;
    NEED(d->store, conn_open);
    NEED(d->store, conn_close);
    NEED(d->store, ping);
    NEED(d->store, user_create);
    NEED(d->store, user_by_name);
    NEED(d->store, user_by_id);
    NEED(d->store, conv_create);
    NEED(d->store, conv_get);
    NEED(d->store, conv_list);
    NEED(d->store, conv_add_members);
    NEED(d->store, conv_members);
    NEED(d->store, user_peers);
    NEED(d->store, append);
    NEED(d->store, history);
    NEED(d->store, read_set);
  }
  if (d->queue) {
    kind = "queue";
    if (d->queue->version < EIM_QUEUE_OPS_V1) goto old;
    NEED(d->queue, start);
    NEED(d->queue, publish);
    NEED(d->queue, health);
    NEED(d->queue, node_id);
  }
  if (d->filter) {
    kind = "filter";
    if (d->filter->version < EIM_FILTER_OPS_V1) goto old;
    NEED(d->filter, inspect);
  }
  return 0;
old:
  snprintf(why, whylen, "%s ops version 0 is not a released version", kind);
  return -1;
}

static int check_desc(const eim_plugin_desc *d, char *why, size_t whylen) {
  if (d == NULL) {
    snprintf(why, whylen, "eim_plugin_describe() returned NULL");
    return -1;
  }
  /* abi_major sits right after size, so it is readable even in a descriptor
   * too small for the rest: report the major mismatch first, it is the more
   * useful message. */
  if (d->abi_major != EIM_ABI_MAJOR) {
    snprintf(why, whylen, "plugin ABI major %u (plugin ABI %u.%u), server has ABI major %d (%d.%d)",
             d->abi_major, d->abi_major, d->abi_minor, EIM_ABI_MAJOR, EIM_ABI_MAJOR,
             EIM_ABI_MINOR);
    return -1;
  }
  if (d->size < EIM_PLUGIN_DESC_MIN_SIZE) {
    snprintf(why, whylen, "descriptor is %u bytes, smaller than ABI %d.0's %u", d->size,
             EIM_ABI_MAJOR, EIM_PLUGIN_DESC_MIN_SIZE);
    return -1;
  }
  if (d->name == NULL || d->version == NULL) {
    snprintf(why, whylen, "descriptor has no name or version");
    return -1;
  }
  return check_kinds(d, why, whylen);
}

/* --- Loading ------------------------------------------------------------ */

static int conf_name_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted *.conf names of dir. Returns the count, or -1. */
static int list_confs(const char *dir, char ***out, char *errbuf, size_t errlen) {
  DIR *d = opendir(dir);
  if (d == NULL) {
    snprintf(errbuf, errlen, "%s: cannot open plugins directory: %m", dir);
    return -1;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name);
    if (l < 6 || e->d_name[0] == '.' || strcmp(e->d_name + l - 5, ".conf") != 0) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      char **nn = realloc(names, cap * sizeof *nn);
      if (nn == NULL) break;
      names = nn;
    }
    names[n] = strdup(e->d_name);
    if (names[n] != NULL) n++;
  }
  closedir(d);
  if (n > 0) qsort(names, n, sizeof *names, conf_name_cmp);
  *out = names;
  return (int)n;
}

static int load_one(eim_plugin_inst *pi, const char *plugin_path,
                    char *why, size_t whylen) {
  const eim_kvfile *f = &pi->file;
  const eim_kv *pk = eim_kvfile_get(f, "plugin");
  if (pk == NULL || pk->value[0] == '\0') {
    snprintf(why, whylen, "no 'plugin = NAME' line");
    return -1;
  }
  char path[4096];
  if (strchr(pk->value, '/') != NULL)
    snprintf(path, sizeof path, "%s", pk->value);
  else
    snprintf(path, sizeof path, "%s/%s.so", plugin_path, pk->value);
  pi->so_path = strdup(path);
  pi->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (pi->dl == NULL) {
    snprintf(why, whylen, "cannot load %.300s: %.400s", path, dlerror());
    return -1;
  }
  eim_plugin_describe_fn describe;
  *(void **)&describe = dlsym(pi->dl, EIM_PLUGIN_SYMBOL);
  if (describe == NULL) {
    snprintf(why, whylen, "%.600s exports no %s() function", path, EIM_PLUGIN_SYMBOL);
    return -1;
  }
  const eim_plugin_desc *d = describe();
  if (check_desc(d, why, whylen) != 0) return -1;
  pi->desc = d;
  fill_host(&pi->host, pi);

  /* Every key but the loader's own goes to the plugin; the strings live in
   * pi->file until the plugin is unloaded. */
  pi->opts = calloc(f->n ? f->n : 1, sizeof *pi->opts);
  if (pi->opts == NULL) {
    snprintf(why, whylen, "out of memory");
    return -1;
  }
  size_t nopts = 0;
  for (size_t i = 0; i < f->n; i++) {
    if (strcmp(f->items[i].key, "plugin") == 0 || strcmp(f->items[i].key, "enabled") == 0)
      continue;
    pi->opts[nopts++] = (eim_opt){f->items[i].key, f->items[i].value, f->path, f->items[i].line};
  }
  eim_err err = {0, ""};
  int rc = d->init(&pi->state, &pi->host, pi->opts, nopts, &err);
  if (rc != EIM_OK) {
    snprintf(why, whylen, "init failed: %s", err.msg[0] ? err.msg : "no reason given");
    return -1;
  }
  pi->initialized = 1;
  return 0;
}

int eim_plugins_load(eim_plugins *p, const eim_config *cfg, char *errbuf, size_t errlen) {
  memset(p, 0, sizeof *p);
  host_cfg = cfg;
  char **names = NULL;
  int n = list_confs(cfg->plugins_dir, &names, errbuf, errlen);
  if (n < 0) return -1;
  int rc = -1;
  p->items = calloc((size_t)n + 1, sizeof *p->items);
  p->filters = calloc((size_t)n + 1, sizeof *p->filters);
  if (p->items == NULL || p->filters == NULL) {
    snprintf(errbuf, errlen, "out of memory");
    goto done;
  }
  int nauth = 0, nstore = 0, nqueue = 0;
  const char *auth_file = NULL, *store_file = NULL, *queue_file = NULL;
  for (int i = 0; i < n; i++) {
    char path[4096], why[768];
    snprintf(path, sizeof path, "%s/%s", cfg->plugins_dir, names[i]);
    eim_kvfile f;
    if (eim_kvfile_load(path, &f, errbuf, errlen) != 0) goto done;
    const eim_kv *en = eim_kvfile_get(&f, "enabled");
    int enabled = en ? eim_parse_bool(en->value) : 1;
    if (enabled < 0) {
      snprintf(errbuf, errlen, "%s:%d: enabled: expected true or false", path, en->line);
      eim_kvfile_free(&f);
      goto done;
    }
    if (!enabled) {
      eim_kvfile_free(&f);
      continue;
    }
    eim_plugin_inst *pi = &p->items[p->n++];
    pi->conf_path = strdup(path);
    pi->file = f;
    if (load_one(pi, cfg->plugin_path, why, sizeof why) != 0) {
      snprintf(errbuf, errlen, "%s: %s", path, why);
      goto done;
    }
    const eim_plugin_desc *d = pi->desc;
    if (d->auth) { nauth++; if (!p->auth) { p->auth = pi; auth_file = pi->conf_path; } }
    if (d->store) { nstore++; if (!p->store) { p->store = pi; store_file = pi->conf_path; } }
    if (d->queue) { nqueue++; if (!p->queue) { p->queue = pi; queue_file = pi->conf_path; } }
    if (d->filter) p->filters[p->nfilters++] = pi;
    const char *dup = NULL;
    if (nauth > 1) dup = "auth";
    else if (nstore > 1) dup = "store";
    else if (nqueue > 1) dup = "queue";
    if (dup) {
      const char *first = nauth > 1 ? auth_file : nstore > 1 ? store_file : queue_file;
      snprintf(errbuf, errlen, "%s: a second %s plugin is enabled (first: %s); exactly one %s plugin may be enabled",
               path, dup, first, dup);
      goto done;
    }
    EIM_LOG_I("msg=\"plugin loaded\" file=%s plugin=%s version=%s abi=%u.%u", path, d->name,
              d->version, d->abi_major, d->abi_minor);
  }
  if (nauth != 1 || nstore != 1) {
    snprintf(errbuf, errlen, "%s: exactly one %s plugin must be enabled, found none",
             cfg->plugins_dir, nauth != 1 ? "auth" : "store");
    goto done;
  }
  rc = 0;
done:
  for (int i = 0; i < n; i++) free(names[i]);
  free(names);
  if (rc != 0) eim_plugins_unload(p);
  return rc;
}

void eim_plugins_unload(eim_plugins *p) {
  for (size_t i = p->n; i-- > 0;) {
    eim_plugin_inst *pi = &p->items[i];
    if (pi->initialized) pi->desc->fini(pi->state);
    if (pi->dl) dlclose(pi->dl);
    eim_kvfile_free(&pi->file);
    free(pi->opts);
    free(pi->conf_path);
    free(pi->so_path);
  }
  free(p->items);
  free(p->filters);
  memset(p, 0, sizeof *p);
}
