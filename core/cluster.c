#include "cluster.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "convcache.h"
#include "events.h"
#include "history.h"
#include "json.h"
#include "log.h"
#include "server.h"
#include "workers.h"

enum {
  TICK_MS = 1000,
  HEARTBEAT_MS = 3000,
  NODE_TIMEOUT_MS = 10000, /* a dead node's users go offline within ~11 s */
  GAP_WAIT_MS = 300,       /* how long a seq gap may wait for its record */
  GAP_FETCH_LIMIT = 200
};

/* Another node, as last heard of. */
typedef struct rnode {
  int64_t last_seen;
  eim_hmap users; /* user_id -> (uintptr_t) connections there */
} rnode;

/* A conversation.chat waiting for the seqs before it. */
typedef struct pend {
  struct pend *next;
  uint64_t seq;
  char *text;
  eim_client *except; /* a reference, or NULL */
} pend;

/* Delivery progress of one conversation on this node. */
typedef struct seqstate {
  char *conv;
  uint64_t delivered; /* every seq up to here went to the local members */
  pend *pending;      /* ascending seq, all > delivered + 1 */
  uv_timer_t gap;
  int gap_armed;
  int fetching;
} seqstate;

static struct {
  eim_plugin_inst *q;
  const char *node;
  uv_timer_t tick;
  int64_t last_hb;
  eim_hmap nodes;  /* node_id -> rnode */
  eim_hmap remote; /* user_id -> (uintptr_t) connections on other nodes */
  eim_hmap seqs;   /* conversation_id -> seqstate */
} cl;

int eim_cluster_enabled(void) { return cl.q != NULL; }

/* --- Publishing ---------------------------------------------------------- */

/* Adds the node id, renders and publishes; takes o. A queue that is down
 * loses ephemeral records: the store stays the source of truth and clients
 * fill gaps by sync. */
static void publish(int topic, const char *key, cJSON *o) {
  cJSON_AddStringToObject(o, "n", cl.node);
  char *text = eim_json_print(o);
  if (text == NULL) return;
  eim_err err = {0, ""};
  if (cl.q->desc->queue->publish(cl.q->state, topic, key, text, strlen(text), &err) != EIM_OK)
    EIM_LOG_D("msg=\"queue publish failed\" reason=\"%s\"", err.msg);
  cJSON_free(text);
}

/* --- Presence view ------------------------------------------------------- */

unsigned eim_cluster_remote_count(const char *user_id) {
  if (cl.q == NULL) return 0;
  return (unsigned)(uintptr_t)eim_hmap_get(&cl.remote, user_id);
}

/* Sets node's count for user and announces a cluster-wide change. user may
 * be a key of n->users, which this frees: it works on a copy. */
static void remote_set(rnode *n, const char *user_key, unsigned k) {
  char user[EIM_ID_MAX];
  if (snprintf(user, sizeof user, "%s", user_key) >= (int)sizeof user) return;
  unsigned old = (unsigned)(uintptr_t)eim_hmap_get(&n->users, user);
  if (old == k) return;
  if (k) eim_hmap_put(&n->users, user, (void *)(uintptr_t)k);
  else eim_hmap_del(&n->users, user);
  unsigned before = eim_cluster_remote_count(user);
  unsigned after = before - old + k;
  if (after) eim_hmap_put(&cl.remote, user, (void *)(uintptr_t)after);
  else eim_hmap_del(&cl.remote, user);
  eim_usess *local = eim_sess_get(user);
  int local_online = local != NULL && local->nclients > 0;
  if (!local_online && (before == 0) != (after == 0)) eim_sess_announce_peer(user, after > 0);
}

static void node_clear(rnode *n) {
  const char *user;
  for (size_t it = 0; eim_hmap_next(&n->users, &it, &user, NULL);) remote_set(n, user, 0);
}

static rnode *node_get(const char *id, int *created) {
  rnode *n = eim_hmap_get(&cl.nodes, id);
  *created = 0;
  if (n == NULL) {
    n = calloc(1, sizeof *n);
    if (n == NULL) return NULL;
    eim_hmap_init(&n->users);
    if (eim_hmap_put(&cl.nodes, id, n) != 0) {
      free(n);
      return NULL;
    }
    *created = 1;
  }
  n->last_seen = eim_now_ms();
  return n;
}

static void node_drop(const char *id) {
  rnode *n = eim_hmap_get(&cl.nodes, id);
  if (n == NULL) return;
  node_clear(n);
  eim_hmap_free(&n->users);
  free(eim_hmap_del(&cl.nodes, id));
}

void eim_cluster_local_count(const char *user_id, unsigned count) {
  if (cl.q == NULL) return;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "t", "p");
  cJSON_AddStringToObject(o, "u", user_id);
  cJSON_AddNumberToObject(o, "k", count);
  publish(EIM_TOPIC_PRESENCE, user_id, o);
}

static void publish_snapshot(void) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "t", "snap");
  cJSON *users = cJSON_AddObjectToObject(o, "users");
  eim_usess *s;
  for (size_t it = 0; eim_hmap_next(&eim_srv.users, &it, NULL, (void **)&s);)
    if (s->nclients > 0) cJSON_AddNumberToObject(users, s->user_id, s->nclients);
  publish(EIM_TOPIC_PRESENCE, cl.node, o);
}

static void publish_hello(void) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "t", "hello");
  publish(EIM_TOPIC_PRESENCE, cl.node, o);
}

static void apply_snapshot(rnode *n, const cJSON *users) {
  /* Users the snapshot no longer lists went to 0 there. */
  const char *user;
  for (size_t it = 0; eim_hmap_next(&n->users, &it, &user, NULL);)
    if (cJSON_GetObjectItemCaseSensitive(users, user) == NULL) remote_set(n, user, 0);
  const cJSON *u;
  cJSON_ArrayForEach(u, users) if (cJSON_IsNumber(u) && u->valuedouble >= 0 && u->string)
      remote_set(n, u->string, (unsigned)u->valuedouble);
}

/* --- Sequencer ----------------------------------------------------------- */


static void pend_free(pend *p) {
  if (p->except) eim_client_unref(p->except);
  cJSON_free(p->text);
  free(p);
}

static seqstate *seq_get(const char *conv, uint64_t start, int create) {
  seqstate *st = eim_hmap_get(&cl.seqs, conv);
  if (st != NULL || !create) return st;
  st = calloc(1, sizeof *st);
  if (st == NULL) return NULL;
  st->conv = strdup(conv);
  if (st->conv == NULL || eim_hmap_put(&cl.seqs, conv, st) != 0) {
    free(st->conv);
    free(st);
    return NULL;
  }
  st->delivered = start;
  uv_timer_init(eim_srv.loop, &st->gap);
  st->gap.data = st;
  return st;
}

void eim_cluster_seq_baseline(const char *conversation_id, uint64_t max_seq) {
  if (cl.q != NULL) seq_get(conversation_id, max_seq, 1);
}

/* Writes out every pending event that has become next. */
static void seq_drain(seqstate *st) {
  while (st->pending != NULL && st->pending->seq <= st->delivered + 1) {
    pend *p = st->pending;
    st->pending = p->next;
    if (p->seq == st->delivered + 1) {
      eim_event_to_members(st->conv, p->text, p->except, EIM_M_EV_CHAT);
      p->text = NULL;
      st->delivered = p->seq;
    }
    pend_free(p);
  }
}

static void gap_fire(uv_timer_t *t);

static void seq_arm(seqstate *st) {
  if (st->pending != NULL && !st->gap_armed && !st->fetching) {
    st->gap_armed = 1;
    uv_timer_start(&st->gap, gap_fire, GAP_WAIT_MS, 0);
  }
}

/* Offers event `seq` (text owned by the callee) for delivery. */
static void seq_offer(seqstate *st, uint64_t seq, char *text, const eim_client *except) {
  if (seq <= st->delivered) {
    cJSON_free(text);
    return;
  }
  if (seq == st->delivered + 1) {
    eim_event_to_members(st->conv, text, except, EIM_M_EV_CHAT);
    st->delivered = seq;
    seq_drain(st);
    return;
  }
  pend **pp = &st->pending;
  while (*pp != NULL && (*pp)->seq < seq) pp = &(*pp)->next;
  if (*pp != NULL && (*pp)->seq == seq) {
    cJSON_free(text);
    return;
  }
  pend *p = calloc(1, sizeof *p);
  if (p == NULL) {
    cJSON_free(text);
    return;
  }
  p->seq = seq;
  p->text = text;
  if (except != NULL) {
    p->except = (eim_client *)except;
    eim_client_ref(p->except);
  }
  p->next = *pp;
  *pp = p;
  seq_arm(st);
}

static char *chat_event_text(const eim_msg *m) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "type", "conversation.chat");
  cJSON_AddItemToObject(o, "data", eim_json_message(m));
  return eim_json_print(o);
}

typedef struct {
  eim_job job;
  char *conv;
  uint64_t after;
  eim_msg_list list;
} gap_job;

static void gap_work(eim_job *j, void *conn) {
  gap_job *g = (gap_job *)j;
  j->rc = eim_history_page(eim_srv.store, conn, g->conv, EIM_PAGE_AFTER, g->after, GAP_FETCH_LIMIT,
                           &g->list, &j->arena, &j->err);
}

static void gap_done(eim_job *j) {
  gap_job *g = (gap_job *)j;
  seqstate *st = cl.q ? eim_hmap_get(&cl.seqs, g->conv) : NULL;
  if (st != NULL) {
    st->fetching = 0;
    if (j->rc != EIM_OK) {
      EIM_LOG_W("msg=\"seq gap fill failed\" conversation=%s reason=\"%s\"", g->conv, j->err.msg);
    } else {
      for (size_t i = 0; i < g->list.n; i++) {
        const eim_msg *m = &g->list.items[i];
        if (m->seq != st->delivered + 1) continue;
        /* A pending record of this seq keeps its `except`. */
        if (st->pending != NULL && st->pending->seq == m->seq) {
          seq_drain(st);
          continue;
        }
        char *text = chat_event_text(m);
        if (text != NULL) seq_offer(st, m->seq, text, NULL);
      }
    }
    seq_drain(st);
    seq_arm(st);
  }
  eim_arena_reset(&j->arena);
  free(g->conv);
  free(g);
}

static void gap_fire(uv_timer_t *t) {
  seqstate *st = t->data;
  st->gap_armed = 0;
  if (st->pending == NULL || eim_srv.shutting_down) return;
  gap_job *g = calloc(1, sizeof *g);
  if (g == NULL || (g->conv = strdup(st->conv)) == NULL) {
    free(g);
    seq_arm(st);
    return;
  }
  eim_job_init(&g->job, gap_done, NULL);
  g->job.work = gap_work;
  g->after = st->delivered;
  st->fetching = 1;
  eim_workers_call(&g->job);
}

void eim_cluster_chat(const eim_msg *m, const eim_client *except) {
  char *text = chat_event_text(m);
  if (text == NULL) return;
  seqstate *st = seq_get(m->conversation_id, m->seq - 1, 1);
  if (st == NULL) {
    cJSON_free(text);
    return;
  }
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "t", "chat");
  cJSON_AddItemToObject(o, "m", eim_json_message(m));
  publish(EIM_TOPIC_CHAT, m->conversation_id, o);
  seq_offer(st, m->seq, text, except);
}

void eim_cluster_to_members(const char *conversation_id, const char *text) {
  if (cl.q == NULL) return;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "t", "conv");
  cJSON_AddStringToObject(o, "c", conversation_id);
  cJSON_AddItemToObject(o, "ev", cJSON_Parse(text));
  publish(EIM_TOPIC_EPHEMERAL, conversation_id, o);
}

void eim_cluster_to_users(const char *const *users, size_t n, const char *text) {
  if (cl.q == NULL || n == 0) return;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "t", "users");
  cJSON *arr = cJSON_AddArrayToObject(o, "u");
  for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, cJSON_CreateString(users[i]));
  cJSON_AddItemToObject(o, "ev", cJSON_Parse(text));
  publish(EIM_TOPIC_EPHEMERAL, users[0], o);
}

void eim_cluster_conversation(const eim_conv *c, const char *const *notify, size_t n) {
  if (cl.q == NULL) return;
  /* Members connected here before the conversation existed: delivery
   * starts after what it holds now. */
  eim_cluster_seq_baseline(c->conversation_id, c->max_seq);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "t", "created");
  cJSON_AddItemToObject(o, "conv", eim_json_conversation(c));
  cJSON *arr = cJSON_AddArrayToObject(o, "notify");
  for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, cJSON_CreateString(notify[i]));
  publish(EIM_TOPIC_EPHEMERAL, c->conversation_id, o);
}

/* --- Consuming ------------------------------------------------------------ */

static const char *str_of(const cJSON *o, const char *name) {
  const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsString(it) ? it->valuestring : NULL;
}

static void on_chat(const cJSON *m) {
  eim_msg msg;
  memset(&msg, 0, sizeof msg);
  const cJSON *seq = cJSON_GetObjectItemCaseSensitive(m, "seq");
  msg.conversation_id = str_of(m, "conversation_id");
  if (msg.conversation_id == NULL || !cJSON_IsNumber(seq) || seq->valuedouble < 1) return;
  /* Only conversations with members connected here have a sequencer. */
  seqstate *st = seq_get(msg.conversation_id, 0, 0);
  if (st == NULL) return;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "type", "conversation.chat");
  cJSON_AddItemToObject(o, "data", cJSON_Duplicate(m, 1));
  char *text = eim_json_print(o);
  if (text != NULL) seq_offer(st, (uint64_t)seq->valuedouble, text, NULL);
}

static void on_created(const cJSON *conv, const cJSON *notify) {
  const char *id = str_of(conv, "conversation_id");
  const cJSON *members = cJSON_GetObjectItemCaseSensitive(conv, "members");
  const cJSON *max_seq = cJSON_GetObjectItemCaseSensitive(conv, "max_seq");
  if (id == NULL || !cJSON_IsArray(members)) return;
  size_t n = (size_t)cJSON_GetArraySize(members), k = 0;
  const char **ids = calloc(n + 1, sizeof *ids);
  if (ids == NULL) return;
  const cJSON *it;
  cJSON_ArrayForEach(it, members) if (cJSON_IsString(it)) ids[k++] = it->valuestring;
  eim_convc_put(id, ids, k);
  eim_sess_add_peers(ids, k);
  free(ids);
  int local_member = 0;
  cJSON_ArrayForEach(it, members) if (cJSON_IsString(it) && eim_sess_get(it->valuestring)) local_member = 1;
  if (local_member) eim_cluster_seq_baseline(id, cJSON_IsNumber(max_seq) ? (uint64_t)max_seq->valuedouble : 0);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "type", "conversation.created");
  cJSON_AddItemToObject(o, "data", cJSON_Duplicate(conv, 1));
  char *text = eim_json_print(o);
  if (text == NULL) return;
  size_t len = strlen(text);
  cJSON_ArrayForEach(it, notify) if (cJSON_IsString(it))
      eim_send_to_user(it->valuestring, text, len, NULL, EIM_M_EV_CREATED);
  cJSON_free(text);
}

static eim_metric_event event_kind(const cJSON *ev) {
  const char *type = str_of(ev, "type");
  if (type && strcmp(type, "push") == 0) return EIM_M_EV_PUSH;
  if (type && strcmp(type, "conversation.read") == 0) return EIM_M_EV_READ;
  return EIM_M_EV_CREATED;
}

static void on_record(void *ctx, int topic, const void *data, size_t len) {
  (void)ctx;
  (void)topic;
  if (cl.q == NULL) return; /* stopped; the consumer may still be winding down */
  char why[64];
  cJSON *o = eim_json_parse_object(data, len, why, sizeof why);
  if (o == NULL) {
    EIM_LOG_W("msg=\"queue record dropped\" reason=\"%s\"", why);
    return;
  }
  const char *t = str_of(o, "t"), *node = str_of(o, "n");
  if (t == NULL || node == NULL || strcmp(node, cl.node) == 0 || eim_srv.shutting_down) goto done;
  int created = 0;
  rnode *rn = node_get(node, &created);
  if (rn == NULL) goto done;
  /* A node we did not know (new, or back after its heartbeat lapsed): ask
   * everybody for their presence, so views agree again. */
  if (created && strcmp(t, "hello") != 0) publish_hello();
  if (strcmp(t, "chat") == 0) {
    on_chat(cJSON_GetObjectItemCaseSensitive(o, "m"));
  } else if (strcmp(t, "conv") == 0 || strcmp(t, "users") == 0) {
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(o, "ev");
    char *text = cJSON_IsObject(ev) ? cJSON_PrintUnformatted(ev) : NULL;
    if (text == NULL) goto done;
    eim_metric_event kind = event_kind(ev);
    if (strcmp(t, "users") == 0) {
      const cJSON *u;
      size_t tl = strlen(text);
      cJSON_ArrayForEach(u, cJSON_GetObjectItemCaseSensitive(o, "u")) if (cJSON_IsString(u))
          eim_send_to_user(u->valuestring, text, tl, NULL, kind);
      cJSON_free(text);
    } else {
      const char *conv = str_of(o, "c");
      if (conv == NULL) {
        cJSON_free(text);
        goto done;
      }
      eim_event_to_members(conv, text, NULL, kind);
    }
  } else if (strcmp(t, "created") == 0) {
    on_created(cJSON_GetObjectItemCaseSensitive(o, "conv"), cJSON_GetObjectItemCaseSensitive(o, "notify"));
  } else if (strcmp(t, "p") == 0) {
    const char *u = str_of(o, "u");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "k");
    if (u != NULL && cJSON_IsNumber(k) && k->valuedouble >= 0) remote_set(rn, u, (unsigned)k->valuedouble);
  } else if (strcmp(t, "snap") == 0) {
    const cJSON *users = cJSON_GetObjectItemCaseSensitive(o, "users");
    if (cJSON_IsObject(users)) apply_snapshot(rn, users);
  } else if (strcmp(t, "hello") == 0) {
    publish_snapshot();
  } else if (strcmp(t, "bye") == 0) {
    node_drop(node);
  }
done:
  cJSON_Delete(o);
}

/* --- Timers and life cycle ---------------------------------------------- */

static void on_tick(uv_timer_t *t) {
  (void)t;
  int64_t now = eim_now_ms();
  if (now - cl.last_hb >= HEARTBEAT_MS) {
    cl.last_hb = now;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "t", "hb");
    publish(EIM_TOPIC_PRESENCE, cl.node, o);
  }
  const char *id;
  rnode *n;
  for (size_t it = 0; eim_hmap_next(&cl.nodes, &it, &id, (void **)&n);) {
    if (now - n->last_seen < NODE_TIMEOUT_MS) continue;
    EIM_LOG_W("msg=\"node lost: heartbeat lapsed\" node=%s", id);
    node_drop(id);
  }
}

int eim_cluster_start(void) {
  memset(&cl, 0, sizeof cl);
  eim_hmap_init(&cl.nodes);
  eim_hmap_init(&cl.remote);
  eim_hmap_init(&cl.seqs);
  eim_plugin_inst *q = eim_srv.plugins.queue;
  if (q == NULL) return 0;
  const eim_queue_ops *ops = q->desc->queue;
  cl.node = ops->node_id(q->state);
  if (cl.node == NULL || cl.node[0] == '\0') {
    EIM_LOG_E("msg=\"queue plugin gave no node id\" plugin=%s", q->desc->name);
    return -1;
  }
  static const eim_queue_sink sink = {on_record, NULL};
  eim_err err = {0, ""};
  if (ops->start(q->state, &sink, &err) != EIM_OK) {
    EIM_LOG_E("msg=\"queue start failed\" file=%s reason=\"%s\"", q->conf_path, err.msg);
    return -1;
  }
  cl.q = q;
  uv_timer_init(eim_srv.loop, &cl.tick);
  uv_timer_start(&cl.tick, on_tick, 0, TICK_MS);
  publish_hello();
  EIM_LOG_I("msg=\"cluster mode\" node=%s queue=%s", cl.node, q->desc->name);
  return 0;
}

static void seq_closed(uv_handle_t *h) {
  seqstate *st = h->data;
  while (st->pending) {
    pend *p = st->pending;
    st->pending = p->next;
    pend_free(p);
  }
  free(st->conv);
  free(st);
}

void eim_cluster_stop(void) {
  if (cl.q != NULL) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "t", "bye");
    publish(EIM_TOPIC_PRESENCE, cl.node, o);
    uv_timer_stop(&cl.tick);
    uv_close((uv_handle_t *)&cl.tick, NULL);
  }
  seqstate *st;
  for (size_t it = 0; eim_hmap_next(&cl.seqs, &it, NULL, (void **)&st);)
    uv_close((uv_handle_t *)&st->gap, seq_closed);
  eim_hmap_free(&cl.seqs);
  rnode *n;
  for (size_t it = 0; eim_hmap_next(&cl.nodes, &it, NULL, (void **)&n);) {
    eim_hmap_free(&n->users);
    free(n);
  }
  eim_hmap_free(&cl.nodes);
  eim_hmap_free(&cl.remote);
  cl.q = NULL;
}
