/* The server: one instance per process, owned by the loop thread. Holds the
 * configuration, the loaded plugins, the transport, and the in-memory state
 * (sessions and the membership cache). */
#ifndef EIM_SERVER_H
#define EIM_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "hmap.h"
#include "loader.h"
#include "net.h"

typedef struct eim_server {
  uv_loop_t *loop;
  eim_config *cfg;
  eim_plugins plugins;
  const eim_auth_ops *auth;
  void *auth_state;
  const eim_store_ops *store;
  void *store_state;
  eim_net *net;
  eim_hmap users;          /* user_id -> eim_usess (users with connections) */
  eim_hmap convs;          /* conversation_id -> eim_convc (membership cache) */
  uint64_t convs_evicted;  /* membership cache entries dropped by the sweep */
  uv_timer_t sweep;        /* token expiry of open WebSockets */
  int shutting_down;
} eim_server;

extern eim_server eim_srv;

/* Milliseconds since the Unix epoch. */
int64_t eim_now_ms(void);

/* Starts everything per cfg on loop. Returns 0 or -1 after logging why. */
int eim_server_start(uv_loop_t *loop, eim_config *cfg);
/* Graceful shutdown (SIGINT/SIGTERM): stop accepting, answer in-flight
 * work, close WebSockets with 1001, then stop the loop's handles. */
void eim_server_shutdown(void);
/* Frees what remains after the loop has run to completion. */
void eim_server_free(void);
/* Asks filters to reload their configuration (SIGHUP). */
void eim_server_reload(void);

/* WebSocket handlers for the transport, implemented in dispatch.c. */
void eim_ws_on_message(void *ctx, eim_ws *ws, int text, const char *data, size_t len);
void eim_ws_on_close(void *ctx, eim_ws *ws);

/* Verifies a bearer token with the auth plugin. Returns 0 with user_id
 * (EIM_ID_MAX bytes) and the expiry filled, or an EIM_E* code. */
int eim_auth_check(const char *token, char *user_id, int64_t *expires_at);

#endif
