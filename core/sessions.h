/* Sessions: which users have WebSocket connections on this node (a user may
 * have several devices), each user's peers (users sharing a conversation,
 * loaded from the store when the user's first connection opens), presence
 * events, and sending to a user's connections. Loop thread only. */
#ifndef EIM_SESSIONS_H
#define EIM_SESSIONS_H

#include <stddef.h>
#include <stdint.h>

#include "hmap.h"
#include "metrics.h"
#include "net.h"

typedef struct eim_usess eim_usess;

typedef struct eim_client {
  eim_ws *ws;               /* NULL once the connection closed */
  eim_usess *sess;          /* NULL until attached, and after detach */
  struct eim_client *prev, *next;
  unsigned refs;            /* the connection's own + in-flight requests */
  uint64_t conn_id;         /* the transport's id, for logs */
  char user_id[128];
  int64_t token_exp_ms;
  double tokens;            /* rate limit: token bucket */
  uint64_t refill_ms;
  unsigned strikes;         /* consecutive rate-limited requests */
} eim_client;

struct eim_usess {
  char *user_id;
  eim_client *clients;
  unsigned nclients;
  eim_hmap peers;           /* user_id -> non-NULL */
};

eim_client *eim_client_new(const char *user_id, int64_t token_exp_ms);
void eim_client_ref(eim_client *cl);
/* Frees the client when the last reference goes. */
void eim_client_unref(eim_client *cl);

/* Attaches an open connection to its user's session, creating the session
 * with `peers` when it is the user's first connection on this node (then
 * announcing presence to online peers). */
int eim_sess_attach(eim_client *cl, const char *const *peers, size_t npeers);
/* Detaches a closed connection; the user's last connection going announces
 * the user offline and drops the session. */
void eim_sess_detach(eim_client *cl);

eim_usess *eim_sess_get(const char *user_id);
/* Changes whenever a session is created or dropped: a caller that keeps
 * eim_usess pointers (the membership cache) knows they are still valid
 * while this stays the same. */
uint64_t eim_sess_generation(void);
/* Online anywhere in the cluster. */
int eim_user_online(const char *user_id);
/* Tells the users here who have user_id as a peer that it went online or
 * offline (a change seen on another node). */
void eim_sess_announce_peer(const char *user_id, int online);
/* Records that the members of one conversation are now peers of each
 * other, for those that have sessions. */
void eim_sess_add_peers(const char *const *members, size_t n);

/* Sends text to every connection of user_id but `except`. Returns the
 * number of connections written to. */
size_t eim_send_to_user(const char *user_id, const char *text, size_t len,
                        const eim_client *except, eim_metric_event ev);
/* The same for a session at hand (s may be NULL: nobody connected). Events
 * go out with eim_ws_send_event, so busy connections batch them. */
size_t eim_send_to_sess(eim_usess *s, const char *text, size_t len, const eim_client *except,
                        eim_metric_event ev);
/* Sends text to one connection; no-op once it is closed. */
void eim_client_send(eim_client *cl, const char *text, size_t len);

/* Closes connections whose token expired (1008). */
void eim_sess_sweep_expired(int64_t now_ms);
size_t eim_sess_count_users(void);
void eim_sessions_free(void);

#endif
