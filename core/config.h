/* The server's own configuration: exampleim.conf, then command-line flags
 * on top. Every key has a safe default; see docs/configuration.md. */
#ifndef EIM_CONFIG_H
#define EIM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "kvfile.h"

typedef struct eim_config {
  char *listen;            /* "HOST:PORT" */
  char *data_dir;
  char *plugins_dir;       /* the plugins.d directory */
  char *plugin_path;       /* where NAME.so plugins are looked up */
  char *web_dir;           /* static web client; "" for the built-in page */
  int log_level;
  long long store_workers;
  long long max_batch;     /* messages per group commit */
  long long append_shards; /* store workers that take appends */
  /* transport limits (see net.h) */
  long long max_connections, max_connections_per_ip, new_connections_per_ip_per_sec;
  long long max_header_bytes, max_body_bytes, header_timeout_ms, keepalive_timeout_ms;
  long long max_frame_bytes, ws_ping_interval_ms, ws_idle_timeout_ms, ws_send_queue_bytes;
  long long ws_coalesce_ms;
  /* application limits */
  long long max_content_bytes;
  long long max_group_members;
  long long membership_cache_conversations;
  long long rate_messages_per_sec, rate_burst;
  long long login_failures_per_ip_per_min, login_failures_per_user_per_min;
  long long shutdown_timeout_ms;
  /* The file's pairs, for the host API's config_get. */
  eim_kvfile file;
} eim_config;

/* Fills defaults. */
void eim_config_init(eim_config *c);
void eim_config_free(eim_config *c);
/* Applies one key (from the file or a flag). Returns 0, or -1 with why in
 * errbuf ("unknown key", "not a number in [a, b]"). */
int eim_config_set(eim_config *c, const char *key, const char *value,
                   char *errbuf, size_t errlen);
/* Loads a file: every key must be known. Errors name the file and line. */
int eim_config_load(eim_config *c, const char *path, char *errbuf, size_t errlen);
/* The effective value of a key as a string (for the host API); NULL when
 * unknown. The returned string lives until the config is freed. */
const char *eim_config_get(const eim_config *c, const char *key);

/* Splits "HOST:PORT" or "[V6]:PORT". Returns 0 or -1. */
int eim_split_host_port(const char *s, char *host, size_t hostlen, int *port);

#endif
