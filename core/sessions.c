#include "sessions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "json.h"
#include "log.h"
#include "server.h"

static const char PEER_MARK = 1;
static uint64_t generation = 1;

eim_client *eim_client_new(const char *user_id, int64_t token_exp_ms) {
  eim_client *cl = calloc(1, sizeof *cl);
  if (cl == NULL) return NULL;
  snprintf(cl->user_id, sizeof cl->user_id, "%s", user_id);
  cl->token_exp_ms = token_exp_ms;
  cl->refs = 1;
  cl->tokens = (double)eim_srv.cfg->rate_burst;
  cl->refill_ms = (uint64_t)eim_now_ms();
  return cl;
}

void eim_client_ref(eim_client *cl) { cl->refs++; }

void eim_client_unref(eim_client *cl) {
  if (--cl->refs == 0) free(cl);
}

eim_usess *eim_sess_get(const char *user_id) { return eim_hmap_get(&eim_srv.users, user_id); }

uint64_t eim_sess_generation(void) { return generation; }

int eim_user_online(const char *user_id) {
  eim_usess *s = eim_sess_get(user_id);
  return (s != NULL && s->nclients > 0) || eim_cluster_remote_count(user_id) > 0;
}

void eim_client_send(eim_client *cl, const char *text, size_t len) {
  if (cl->ws != NULL) eim_ws_send_text(cl->ws, text, len);
}

size_t eim_send_to_user(const char *user_id, const char *text, size_t len,
                        const eim_client *except, eim_metric_event ev) {
  return eim_send_to_sess(eim_sess_get(user_id), text, len, except, ev);
}

size_t eim_send_to_sess(eim_usess *s, const char *text, size_t len, const eim_client *except,
                        eim_metric_event ev) {
  if (s == NULL) return 0;
  size_t n = 0;
  for (eim_client *cl = s->clients; cl != NULL; cl = cl->next) {
    if (cl == except || cl->ws == NULL) continue;
    eim_ws_send_event(cl->ws, text, len);
    n++;
  }
  if (n) eim_metrics_event_out(ev, n);
  return n;
}

static char *presence_text(const char *user_id, int online) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "type", "presence");
  cJSON *d = cJSON_AddObjectToObject(o, "data");
  cJSON_AddStringToObject(d, "user_id", user_id);
  cJSON_AddBoolToObject(d, "online", online);
  return eim_json_print(o);
}

/* Tells s's peers with connections here that s's user went online or
 * offline. */
static void announce(eim_usess *s, int online) {
  char *text = presence_text(s->user_id, online);
  if (text == NULL) return;
  size_t len = strlen(text);
  const char *peer;
  for (size_t it = 0; eim_hmap_next(&s->peers, &it, &peer, NULL);)
    eim_send_to_user(peer, text, len, NULL, EIM_M_EV_PRESENCE);
  cJSON_free(text);
}

void eim_sess_announce_peer(const char *user_id, int online) {
  char *text = NULL;
  size_t len = 0;
  eim_usess *s;
  for (size_t it = 0; eim_hmap_next(&eim_srv.users, &it, NULL, (void **)&s);) {
    if (eim_hmap_get(&s->peers, user_id) == NULL) continue;
    if (text == NULL && (text = presence_text(user_id, online)) == NULL) return;
    if (len == 0) len = strlen(text);
    eim_send_to_user(s->user_id, text, len, NULL, EIM_M_EV_PRESENCE);
  }
  cJSON_free(text);
}

int eim_sess_attach(eim_client *cl, const char *const *peers, size_t npeers) {
  eim_usess *s = eim_sess_get(cl->user_id);
  int first = 0;
  if (s == NULL) {
    s = calloc(1, sizeof *s);
    if (s == NULL) return -1;
    s->user_id = strdup(cl->user_id);
    eim_hmap_init(&s->peers);
    if (s->user_id == NULL || eim_hmap_put(&eim_srv.users, cl->user_id, s) != 0) {
      free(s->user_id);
      free(s);
      return -1;
    }
    first = 1;
    generation++;
  }
  /* A session that exists already knows its peers, kept current by
   * eim_sess_add_peers; the freshly loaded list may add to it. */
  for (size_t i = 0; i < npeers; i++)
    if (strcmp(peers[i], s->user_id) != 0) eim_hmap_put(&s->peers, peers[i], (void *)&PEER_MARK);
  cl->sess = s;
  cl->prev = NULL;
  cl->next = s->clients;
  if (s->clients) s->clients->prev = cl;
  s->clients = cl;
  s->nclients++;
  /* Online is cluster-wide: a user already connected elsewhere is not
   * announced again. */
  if (first && eim_cluster_remote_count(s->user_id) == 0) announce(s, 1);
  eim_cluster_local_count(s->user_id, s->nclients);
  return 0;
}

static void sess_free(eim_usess *s) {
  eim_hmap_free(&s->peers);
  free(s->user_id);
  free(s);
}

void eim_sess_detach(eim_client *cl) {
  eim_usess *s = cl->sess;
  if (s == NULL) return;
  if (cl->prev) cl->prev->next = cl->next;
  else s->clients = cl->next;
  if (cl->next) cl->next->prev = cl->prev;
  cl->prev = cl->next = NULL;
  cl->sess = NULL;
  eim_cluster_local_count(s->user_id, --s->nclients);
  if (s->nclients > 0) return;
  eim_hmap_del(&eim_srv.users, s->user_id);
  generation++;
  if (eim_cluster_remote_count(s->user_id) == 0) announce(s, 0);
  sess_free(s);
}

void eim_sess_add_peers(const char *const *members, size_t n) {
  for (size_t i = 0; i < n; i++) {
    eim_usess *s = eim_sess_get(members[i]);
    if (s == NULL) continue;
    for (size_t j = 0; j < n; j++)
      if (j != i && strcmp(members[j], s->user_id) != 0)
        eim_hmap_put(&s->peers, members[j], (void *)&PEER_MARK);
  }
}

void eim_sess_sweep_expired(int64_t now_ms) {
  /* Collect first: closing may detach clients and change the lists. */
  eim_client **expired = NULL;
  size_t n = 0, cap = 0;
  eim_usess *s;
  for (size_t it = 0; eim_hmap_next(&eim_srv.users, &it, NULL, (void **)&s);)
    for (eim_client *cl = s->clients; cl != NULL; cl = cl->next) {
      if (cl->ws == NULL || cl->token_exp_ms > now_ms) continue;
      if (n == cap) {
        cap = cap ? cap * 2 : 16;
        eim_client **p = realloc(expired, cap * sizeof *p);
        if (p == NULL) goto close;
        expired = p;
      }
      eim_client_ref(cl);
      expired[n++] = cl;
    }
close:
  for (size_t i = 0; i < n; i++) {
    if (expired[i]->ws != NULL) eim_ws_close(expired[i]->ws, 1008, "token expired");
    eim_client_unref(expired[i]);
  }
  free(expired);
}

size_t eim_sess_count_users(void) { return eim_srv.users.len; }

void eim_sessions_free(void) {
  eim_usess *s;
  for (size_t it = 0; eim_hmap_next(&eim_srv.users, &it, NULL, (void **)&s);) {
    for (eim_client *cl = s->clients; cl != NULL; cl = cl->next) cl->sess = NULL;
    sess_free(s);
  }
  eim_hmap_free(&eim_srv.users);
}
