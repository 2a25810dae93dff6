#include "server.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "api.h"
#include "cluster.h"
#include "convcache.h"
#include "log.h"
#include "mailbox.h"
#include "metrics.h"
#include "sessions.h"
#include "static.h"
#include "workers.h"

eim_server eim_srv;


enum { SWEEP_MS = 1000, DRAIN_POLL_MS = 20 };

int64_t eim_now_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int eim_auth_check(const char *token, char *user_id, int64_t *expires_at) {
  if (strlen(token) >= EIM_TOKEN_MAX) return EIM_EAUTH;
  eim_err err = {0, ""};
  int rc = eim_srv.auth->verify(eim_srv.auth_state, token, user_id, expires_at, &err);
  if (rc == EIM_OK && (user_id[0] == '\0' || strnlen(user_id, EIM_ID_MAX) == EIM_ID_MAX)) rc = EIM_EAUTH;
  return rc;
}

static void on_sweep(uv_timer_t *t) {
  (void)t;
  int64_t now = eim_now_ms();
  eim_sess_sweep_expired(now);
  eim_api_sweep(now);
  eim_srv.convs_evicted += eim_convc_trim((size_t)eim_srv.cfg->membership_cache_conversations);
}

static int make_dir(const char *path) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, 0700) != 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  return mkdir(buf, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

int eim_server_start(uv_loop_t *loop, eim_config *cfg) {
  char err[1024];
  memset(&eim_srv, 0, sizeof eim_srv);
  eim_srv.loop = loop;
  eim_srv.cfg = cfg;
  eim_hmap_init(&eim_srv.users);
  eim_hmap_init(&eim_srv.convs);
  if (sodium_init() < 0) {
    EIM_LOG_E("msg=\"libsodium failed to initialise\"");
    return -1;
  }
  if (make_dir(cfg->data_dir) != 0) {
    EIM_LOG_E("msg=\"cannot create data directory\" dir=%s error=\"%s\"", cfg->data_dir, strerror(errno));
    return -1;
  }
  if (eim_mailbox_init(loop) != 0) {
    EIM_LOG_E("msg=\"cannot create the loop's mailbox\"");
    return -1;
  }
  if (eim_plugins_load(&eim_srv.plugins, cfg, err, sizeof err) != 0) {
    EIM_LOG_E("msg=\"plugin refused\" reason=\"%s\"", err);
    return -1;
  }
  eim_plugin_inst *a = eim_srv.plugins.auth, *s = eim_srv.plugins.store;
  eim_srv.auth = a->desc->auth;
  eim_srv.auth_state = a->state;
  eim_srv.store = s->desc->store;
  eim_srv.store_state = s->state;
  if (eim_workers_start(eim_srv.store, eim_srv.store_state, (unsigned)cfg->store_workers,
                        (unsigned)cfg->append_shards,
                        (unsigned)cfg->max_batch, err, sizeof err) != 0) {
    EIM_LOG_E("msg=\"store unavailable\" file=%s reason=\"%s\"", s->conf_path, err);
    return -1;
  }
  if (eim_api_init() != 0 || eim_static_load(cfg->web_dir) != 0 || eim_cluster_start() != 0) {
    EIM_LOG_E("msg=\"start-up failed\"");
    return -1;
  }
  char host[256];
  int port;
  if (eim_split_host_port(cfg->listen, host, sizeof host, &port) != 0) {
    EIM_LOG_E("msg=\"listen must be HOST:PORT\" listen=%s", cfg->listen);
    return -1;
  }
  eim_net_limits lim;
  eim_net_limits_default(&lim);
  lim.max_header_bytes = (size_t)cfg->max_header_bytes;
  lim.max_body_bytes = (size_t)cfg->max_body_bytes;
  lim.header_timeout_ms = (uint64_t)cfg->header_timeout_ms;
  lim.keepalive_timeout_ms = (uint64_t)cfg->keepalive_timeout_ms;
  lim.max_frame_bytes = (size_t)cfg->max_frame_bytes;
  lim.ws_ping_interval_ms = (uint64_t)cfg->ws_ping_interval_ms;
  lim.ws_idle_timeout_ms = (uint64_t)cfg->ws_idle_timeout_ms;
  lim.ws_send_queue_bytes = (size_t)cfg->ws_send_queue_bytes;
  lim.ws_coalesce_ms = (uint64_t)cfg->ws_coalesce_ms;
  lim.max_connections = (unsigned)cfg->max_connections;
  lim.max_connections_per_ip = (unsigned)cfg->max_connections_per_ip;
  lim.new_connections_per_ip_per_sec = (unsigned)cfg->new_connections_per_ip_per_sec;
  eim_net_handlers h = {NULL, eim_api_on_request, eim_ws_on_message, eim_ws_on_close};
  int rc = eim_net_start(loop, host, port, &lim, &h, &eim_srv.net);
  if (rc != 0) {
    EIM_LOG_E("msg=\"cannot listen\" addr=%s error=\"%s\"", cfg->listen, uv_strerror(rc));
    return -1;
  }
  uv_timer_init(loop, &eim_srv.sweep);
  uv_timer_start(&eim_srv.sweep, on_sweep, SWEEP_MS, SWEEP_MS);
  EIM_LOG_I("msg=\"listening\" addr=%s:%d version=%s", host, eim_net_port(eim_srv.net), EIM_VERSION);
  return 0;
}

/* --- Shutdown ----------------------------------------------------------- */

static uv_timer_t drain_timer;
static int64_t drain_deadline;

static void net_closed(void *arg) {
  (void)arg;
  eim_srv.net = NULL;
  /* Nothing is left to submit store work: stop the workers, run the
   * completions they posted, and let the loop end. */
  eim_workers_stop();
  eim_mailbox_close();
}

static void finish_shutdown(void) {
  eim_cluster_stop();
  uv_timer_stop(&eim_srv.sweep);
  uv_close((uv_handle_t *)&eim_srv.sweep, NULL);
  uv_close((uv_handle_t *)&drain_timer, NULL);
  eim_net_close(eim_srv.net, net_closed, NULL);
}

static void close_ws_then_finish(uv_timer_t *t);

/* Waits for in-flight store work (acks of messages being committed) before
 * the WebSockets close, up to shutdown_timeout_ms. */
static void on_drain(uv_timer_t *t) {
  if (eim_workers_inflight() > 0 && eim_now_ms() < drain_deadline) return;
  if (eim_workers_inflight() > 0)
    EIM_LOG_W("msg=\"shutdown timeout with store work in flight\" jobs=%llu",
              (unsigned long long)eim_workers_inflight());
  uv_timer_stop(t);
  eim_net_close_all_ws(eim_srv.net, 1001, "server shutting down");
  /* Give the close frames a moment to be written before closing handles. */
  uv_timer_start(t, close_ws_then_finish, 300, 0);
}

static void close_ws_then_finish(uv_timer_t *t) {
  (void)t;
  finish_shutdown();
}

void eim_server_shutdown(void) {
  if (eim_srv.shutting_down) return;
  eim_srv.shutting_down = 1;
  EIM_LOG_I("msg=\"shutting down\"");
  eim_net_stop_accepting(eim_srv.net);
  drain_deadline = eim_now_ms() + eim_srv.cfg->shutdown_timeout_ms;
  uv_timer_init(eim_srv.loop, &drain_timer);
  uv_timer_start(&drain_timer, on_drain, 0, DRAIN_POLL_MS);
}

void eim_server_reload(void) {
  for (size_t i = 0; i < eim_srv.plugins.nfilters; i++) {
    eim_plugin_inst *pi = eim_srv.plugins.filters[i];
    if (pi->desc->filter->reload == NULL) continue;
    eim_err err = {0, ""};
    if (pi->desc->filter->reload(pi->state, &err) != EIM_OK)
      EIM_LOG_E("msg=\"filter reload failed; keeping the old configuration\" plugin=%s reason=\"%s\"",
                pi->desc->name, err.msg);
    else
      EIM_LOG_I("msg=\"filter reloaded\" plugin=%s", pi->desc->name);
  }
}

void eim_server_free(void) {
  eim_api_free();
  eim_sessions_free();
  eim_convc_free_all();
  eim_static_free();
  eim_plugins_unload(&eim_srv.plugins);
  eim_metrics_shutdown();
}
