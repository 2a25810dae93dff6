#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

typedef enum { K_STR, K_INT, K_LEVEL } kind_t;

typedef struct {
  const char *name;
  kind_t kind;
  size_t off;
  long long min, max;
} key_t_;

#define S(f) K_STR, offsetof(eim_config, f), 0, 0
#define I(f, lo, hi) K_INT, offsetof(eim_config, f), lo, hi

static const key_t_ keys[] = {
    {"listen", S(listen)},
    {"data_dir", S(data_dir)},
    {"plugins_dir", S(plugins_dir)},
    {"plugin_path", S(plugin_path)},
    {"web_dir", S(web_dir)},
    {"log_level", K_LEVEL, offsetof(eim_config, log_level), 0, 0},
    {"store_workers", I(store_workers, 1, 64)},
    {"max_batch", I(max_batch, 1, 4096)},
    {"append_shards", I(append_shards, 1, 64)},
    {"max_connections", I(max_connections, 1, 10000000)},
    {"max_connections_per_ip", I(max_connections_per_ip, 0, 10000000)},
    {"new_connections_per_ip_per_sec", I(new_connections_per_ip_per_sec, 0, 10000000)},
    {"max_header_bytes", I(max_header_bytes, 1024, 1 << 20)},
    {"max_body_bytes", I(max_body_bytes, 1024, 64 << 20)},
    {"header_timeout_ms", I(header_timeout_ms, 100, 3600000)},
    {"keepalive_timeout_ms", I(keepalive_timeout_ms, 100, 3600000)},
    {"max_frame_bytes", I(max_frame_bytes, 1024, 64 << 20)},
    {"ws_ping_interval_ms", I(ws_ping_interval_ms, 100, 3600000)},
    {"ws_idle_timeout_ms", I(ws_idle_timeout_ms, 100, 86400000)},
    {"ws_send_queue_bytes", I(ws_send_queue_bytes, 4096, 1LL << 32)},
    {"ws_coalesce_ms", I(ws_coalesce_ms, 0, 1000)},
    {"max_content_bytes", I(max_content_bytes, 1, 16 << 20)},
    {"max_group_members", I(max_group_members, 2, 1000000)},
    {"membership_cache_conversations", I(membership_cache_conversations, 1, 100000000)},
    {"rate_messages_per_sec", I(rate_messages_per_sec, 1, 1000000)},
    {"rate_burst", I(rate_burst, 1, 1000000)},
    {"login_failures_per_ip_per_min", I(login_failures_per_ip_per_min, 1, 1000000)},
    {"login_failures_per_user_per_min", I(login_failures_per_user_per_min, 1, 1000000)},
    {"shutdown_timeout_ms", I(shutdown_timeout_ms, 0, 600000)},
};

static char *dupstr(const char *s) {
  char *p = strdup(s);
  if (p == NULL) abort();
  return p;
}

void eim_config_init(eim_config *c) {
  memset(c, 0, sizeof *c);
  c->listen = dupstr("127.0.0.1:8080");
  c->data_dir = dupstr("./data");
  c->plugins_dir = dupstr("./plugins.d");
  c->plugin_path = dupstr("");
  c->web_dir = dupstr("");
  c->log_level = EIM_LOG_INFO;
  c->store_workers = 4;
  c->max_batch = 256;
  c->append_shards = 1;
  c->max_connections = 20000;
  c->max_connections_per_ip = 0;
  c->new_connections_per_ip_per_sec = 100;
  c->max_header_bytes = 16384;
  c->max_body_bytes = 1 << 20;
  c->header_timeout_ms = 10000;
  c->keepalive_timeout_ms = 60000;
  c->max_frame_bytes = 1 << 20;
  c->ws_ping_interval_ms = 30000;
  c->ws_idle_timeout_ms = 90000;
  c->ws_send_queue_bytes = 4 << 20;
  c->ws_coalesce_ms = 10;
  c->max_content_bytes = 8192;
  c->max_group_members = 5000;
  c->membership_cache_conversations = 100000;
  c->rate_messages_per_sec = 100;
  c->rate_burst = 400;
  c->login_failures_per_ip_per_min = 50;
  c->login_failures_per_user_per_min = 10;
  c->shutdown_timeout_ms = 10000;
}

void eim_config_free(eim_config *c) {
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (keys[i].kind == K_STR) free(*(char **)((char *)c + keys[i].off));
  eim_kvfile_free(&c->file);
  memset(c, 0, sizeof *c);
}

int eim_config_set(eim_config *c, const char *key, const char *value, char *errbuf,
                   size_t errlen) {
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    const key_t_ *k = &keys[i];
    if (strcmp(k->name, key) != 0) continue;
    void *field = (char *)c + k->off;
    switch (k->kind) {
      case K_STR:
        free(*(char **)field);
        *(char **)field = dupstr(value);
        return 0;
      case K_LEVEL: {
        int lv = eim_log_parse_level(value);
        if (lv < 0) {
          snprintf(errbuf, errlen, "%s: expected error, warn, info or debug", key);
          return -1;
        }
        *(int *)field = lv;
        return 0;
      }
      case K_INT:
        if (eim_parse_i64(value, k->min, k->max, (long long *)field) != 0) {
          snprintf(errbuf, errlen, "%s: expected an integer in [%lld, %lld], got '%s'", key,
                   k->min, k->max, value);
          return -1;
        }
        return 0;
    }
  }
  snprintf(errbuf, errlen, "unknown key '%s'", key);
  return -1;
}

int eim_config_load(eim_config *c, const char *path, char *errbuf, size_t errlen) {
  eim_kvfile f;
  if (eim_kvfile_load(path, &f, errbuf, errlen) != 0) return -1;
  for (size_t i = 0; i < f.n; i++) {
    char why[256];
    if (eim_config_set(c, f.items[i].key, f.items[i].value, why, sizeof why) != 0) {
      snprintf(errbuf, errlen, "%s:%d: %s", path, f.items[i].line, why);
      eim_kvfile_free(&f);
      return -1;
    }
  }
  eim_kvfile_free(&c->file);
  c->file = f;
  return 0;
}

const char *eim_config_get(const eim_config *c, const char *key) {
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    if (strcmp(keys[i].name, key) != 0) continue;
    if (keys[i].kind == K_STR) return *(char *const *)((const char *)c + keys[i].off);
    /* Numbers are answered from the file as written; defaults are not
     * strings, and plugins only ask for paths. */
    const eim_kv *kv = eim_kvfile_get(&c->file, key);
    return kv ? kv->value : NULL;
  }
  return NULL;
}

int eim_split_host_port(const char *s, char *host, size_t hostlen, int *port) {
  const char *colon;
  const char *h = s;
  size_t hl;
  if (*s == '[') {
    const char *rb = strchr(s, ']');
    if (rb == NULL || rb[1] != ':') return -1;
    h = s + 1;
    hl = (size_t)(rb - h);
    colon = rb + 1;
  } else {
    colon = strrchr(s, ':');
    if (colon == NULL) return -1;
    hl = (size_t)(colon - s);
  }
  if (hl == 0 || hl >= hostlen) return -1;
  long long p;
  if (eim_parse_i64(colon + 1, 0, 65535, &p) != 0) return -1;
  memcpy(host, h, hl);
  host[hl] = '\0';
  *port = (int)p;
  return 0;
}
