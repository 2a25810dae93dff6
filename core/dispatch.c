/* The WebSocket side: the upgrade (token check, then the user's peers are
 * loaded before the 101 so presence is right from the first frame), the
 * request dispatcher (envelope, rate limit, per-type handlers), and closing.
 * Every request gets exactly one reply: `<type>.ack` or `error`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "convcache.h"
#include "api.h"
#include "dispatch.h"
#include "errors.h"
#include "events.h"
#include "filters.h"
#include "history.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "server.h"
#include "sessions.h"
#include "workers.h"

enum { ID_MAX = 128, CLIENT_MSG_ID_MAX = 128, CONTENT_TYPE_MAX = 64, HISTORY_MAX = 200 };

/* --- Replies ------------------------------------------------------------ */

/* Sends {"type": "<type>.ack", "id": id, "data": data}; takes data. */
static void send_ack(eim_client *cl, const char *type, const cJSON *id, cJSON *data) {
  if (cl->ws == NULL) {
    cJSON_Delete(data);
    return;
  }
  char t[64];
  snprintf(t, sizeof t, "%s.ack", type);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "type", t);
  if (id) cJSON_AddItemToObject(o, "id", cJSON_Duplicate(id, 1));
  cJSON_AddItemToObject(o, "data", data ? data : cJSON_CreateObject());
  char *text = eim_json_print(o);
  if (text) {
    eim_client_send(cl, text, strlen(text));
    cJSON_free(text);
    eim_metrics_ack();
  }
}

static void send_error(eim_client *cl, const cJSON *id, int perr, const char *message) {
  eim_metrics_error(perr);
  /* Server-side failures are worth a line; client mistakes only at debug. */
  if (perr == EIM_PE_INTERNAL || perr == EIM_PE_UNAVAILABLE)
    EIM_LOG_W("msg=\"request failed\" conn=%llu user=%s code=%s reason=\"%s\"",
              (unsigned long long)cl->conn_id, cl->user_id, eim_errcode_name(perr), message);
  else
    EIM_LOG_D("msg=\"request refused\" conn=%llu user=%s code=%s reason=\"%s\"",
              (unsigned long long)cl->conn_id, cl->user_id, eim_errcode_name(perr), message);
  if (cl->ws == NULL) return;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "type", "error");
  if (id) cJSON_AddItemToObject(o, "id", cJSON_Duplicate(id, 1));
  cJSON_AddItemToObject(o, "data", eim_json_error(perr, message));
  char *text = eim_json_print(o);
  if (text) {
    eim_client_send(cl, text, strlen(text));
    cJSON_free(text);
  }
}

/* --- Requests ----------------------------------------------------------- */

/* One request in flight. Holds a reference on the client and the parsed
 * frame (the strings the handlers use live in it). */
typedef struct wsreq {
  eim_job job;
  eim_client *cl;
  const char *type;
  cJSON *root;
  const cJSON *id;
  const cJSON *data;
  const char *conversation_id;
  char *content;            /* the filtered text, when a filter rewrote it */
  char *event;              /* push: the event's text, built once (cJSON_free) */
  uint64_t seq;
  uint32_t limit;
  eim_msg_list list;
  uint64_t read_seq, max_seq;
} wsreq;

static wsreq *req_new(eim_client *cl, cJSON *root, const char *type, const cJSON *id,
                      const cJSON *data) {
  wsreq *r = calloc(1, sizeof *r);
  if (r == NULL) return NULL;
  eim_job_init(&r->job, NULL, r);
  r->cl = cl;
  eim_client_ref(cl);
  r->root = root;
  r->type = type;
  r->id = id;
  r->data = data;
  return r;
}

static void req_free(wsreq *r) {
  eim_arena_reset(&r->job.arena);
  eim_client_unref(r->cl);
  cJSON_Delete(r->root);
  free(r->content);
  cJSON_free(r->event);
  free(r);
}

static void req_error(wsreq *r, int perr, const char *message) {
  send_error(r->cl, r->id, perr, message);
  req_free(r);
}

static void req_store_error(wsreq *r) {
  int perr = eim_perr_from_code(r->job.rc);
  req_error(r, perr, r->job.err.msg[0] ? r->job.err.msg : eim_errcode_name(perr));
}

/* Checks membership of r->conversation_id, then calls next(r); replies
 * not_found / forbidden itself. */
static void with_membership(wsreq *r, void (*next)(wsreq *r));

typedef struct {
  wsreq *r;
  void (*next)(wsreq *r);
} member_check;

static void on_members(void *ctx, const eim_convc *c, int rc, const char *why) {
  member_check *mc = ctx;
  wsreq *r = mc->r;
  void (*next)(wsreq *) = mc->next;
  free(mc);
  if (rc != EIM_OK) {
    int perr = eim_perr_from_code(rc);
    req_error(r, perr, rc == EIM_ENOTFOUND ? "no such conversation" : (why ? why : "store error"));
    return;
  }
  if (!eim_convc_is_member(c, r->cl->user_id)) {
    req_error(r, EIM_PE_FORBIDDEN, "you are not a member of this conversation");
    return;
  }
  next(r);
}

static void with_membership(wsreq *r, void (*next)(wsreq *r)) {
  member_check *mc = malloc(sizeof *mc);
  if (mc == NULL) {
    req_error(r, EIM_PE_INTERNAL, "out of memory");
    return;
  }
  mc->r = r;
  mc->next = next;
  eim_convc_with(r->conversation_id, on_members, mc);
}

/* --- conversation.chat -------------------------------------------------- */

/* {"type":"conversation.chat.ack","id":...,"data":{client_msg_id, msg_id,
 * seq, created_at, content}} to r's client. The ack is the one reply sent
 * for every stored message, so it is printed straight from the message
 * (eim_jbuf) rather than built as a cJSON tree first. */
static void send_chat_ack(wsreq *r, const eim_msg *m) {
  eim_client *cl = r->cl;
  if (cl->ws == NULL) return;
  eim_jbuf b = {0};
  eim_jbuf_raw(&b, "{\"type\":", 8);
  eim_jbuf_str(&b, "conversation.chat.ack");
  if (r->id != NULL) {
    eim_jbuf_raw(&b, ",\"id\":", 6);
    eim_jbuf_value(&b, r->id);
  }
  eim_jbuf_raw(&b, ",\"data\":{\"client_msg_id\":", 25);
  eim_jbuf_str(&b, m->client_msg_id);
  eim_jbuf_raw(&b, ",\"msg_id\":", 10);
  eim_jbuf_str(&b, m->msg_id);
  eim_jbuf_raw(&b, ",\"seq\":", 7);
  eim_jbuf_num(&b, (double)m->seq);
  eim_jbuf_raw(&b, ",\"created_at\":", 14);
  eim_jbuf_num(&b, (double)m->created_at);
  eim_jbuf_raw(&b, ",\"content\":", 11);
  eim_jbuf_str(&b, m->content);
  eim_jbuf_raw(&b, "}}", 2);
  char *text = eim_jbuf_finish(&b);
  if (text == NULL) return;
  eim_client_send(cl, text, strlen(text));
  eim_metrics_ack();
  cJSON_free(text);
}

static void chat_done(eim_job *j) {
  wsreq *r = j->ctx;
  if (j->rc != EIM_OK) {
    req_store_error(r);
    return;
  }
  const eim_msg *m = &j->msg;
  send_chat_ack(r, m);
  /* A retry was delivered when it was first stored. */
  if (!m->duplicate) eim_event_chat(m, r->cl);
  req_free(r);
}

static void chat_store(wsreq *r) {
  eim_msg *m = &r->job.msg;
  char why[EIM_ERR_MSG_MAX];
  char *out = NULL;
  size_t outlen = 0;
  int perr = eim_filters_run(m->conversation_id, m->sender, m->content_type, m->content,
                             m->content_len, (size_t)eim_srv.cfg->max_content_bytes, &out,
                             &outlen, why, sizeof why);
  if (perr != 0) {
    req_error(r, perr, why);
    return;
  }
  if (out != NULL) {
    r->content = out;
    m->content = out;
    m->content_len = outlen;
  }
  m->created_at = eim_now_ms();
  r->job.done = chat_done;
  eim_workers_append(&r->job);
}

static void handle_chat(wsreq *r) {
  char why[256];
  const char *cmid = NULL, *content = NULL, *ctype = "text";
  if (eim_json_str(r->data, "conversation_id", 1, 1, ID_MAX, &r->conversation_id, why, sizeof why) ||
      eim_json_str(r->data, "client_msg_id", 1, 1, CLIENT_MSG_ID_MAX, &cmid, why, sizeof why) ||
      eim_json_str(r->data, "content", 1, 0, SIZE_MAX, &content, why, sizeof why) ||
      eim_json_str(r->data, "content_type", 0, 1, CONTENT_TYPE_MAX, &ctype, why, sizeof why)) {
    req_error(r, EIM_PE_BAD_REQUEST, why);
    return;
  }
  size_t len = strlen(content);
  if (len > (size_t)eim_srv.cfg->max_content_bytes) {
    snprintf(why, sizeof why, "content is %zu bytes, over the limit of %lld", len,
             eim_srv.cfg->max_content_bytes);
    req_error(r, EIM_PE_PAYLOAD_TOO_LARGE, why);
    return;
  }
  eim_msg *m = &r->job.msg;
  m->conversation_id = r->conversation_id;
  m->sender = r->cl->user_id;
  m->client_msg_id = cmid;
  m->content_type = ctype;
  m->content = content;
  m->content_len = len;
  with_membership(r, chat_store);
}

/* --- push ----------------------------------------------------------------- */

/* The push event, {"type":"push","data":{"from","conversation_id"?,
 * "payload"}}, printed straight from the request (the payload is not
 * copied); *payload_len gets the length of the payload's text, which the
 * size limit applies to. NULL when out of memory. */
static char *push_event(wsreq *r, const cJSON *payload, size_t *payload_len) {
  static const char head[] = "{\"type\":\"push\",\"data\":{\"from\":";
  static const char conv[] = ",\"conversation_id\":", pay[] = ",\"payload\":";
  eim_jbuf b = {0};
  eim_jbuf_raw(&b, head, sizeof head - 1);
  eim_jbuf_str(&b, r->cl->user_id);
  if (r->conversation_id != NULL) {
    eim_jbuf_raw(&b, conv, sizeof conv - 1);
    eim_jbuf_str(&b, r->conversation_id);
  }
  eim_jbuf_raw(&b, pay, sizeof pay - 1);
  size_t start = b.len;
  eim_jbuf_value(&b, payload);
  *payload_len = b.len - start;
  eim_jbuf_raw(&b, "}}", 2);
  return eim_jbuf_finish(&b);
}

static void push_ack(wsreq *r, size_t delivered) {
  cJSON *d = cJSON_CreateObject();
  cJSON_AddNumberToObject(d, "delivered", (double)delivered);
  send_ack(r->cl, r->type, r->id, d);
  req_free(r);
}

static void push_to_conversation(wsreq *r) {
  const char *text = r->event;
  const eim_convc *c = eim_hmap_get(&eim_srv.convs, r->conversation_id);
  size_t delivered = 0;
  if (c != NULL) {
    delivered = eim_event_send_to_convc(c, text, strlen(text), r->cl, EIM_M_EV_PUSH);
    for (size_t i = 0; i < c->n; i++) delivered += eim_cluster_remote_count(c->members[i]);
  }
  eim_cluster_to_members(r->conversation_id, text);
  push_ack(r, delivered);
}

static void handle_push(wsreq *r) {
  char why[256];
  const char *to_user = NULL;
  if (eim_json_str(r->data, "to_user", 0, 1, ID_MAX, &to_user, why, sizeof why) ||
      eim_json_str(r->data, "conversation_id", 0, 1, ID_MAX, &r->conversation_id, why, sizeof why)) {
    req_error(r, EIM_PE_BAD_REQUEST, why);
    return;
  }
  if ((to_user == NULL) == (r->conversation_id == NULL)) {
    req_error(r, EIM_PE_BAD_REQUEST, "give exactly one of 'to_user' and 'conversation_id'");
    return;
  }
  const cJSON *payload = cJSON_GetObjectItemCaseSensitive(r->data, "payload");
  if (payload == NULL) {
    req_error(r, EIM_PE_BAD_REQUEST, "field 'payload' is required");
    return;
  }
  size_t plen = 0;
  if ((r->event = push_event(r, payload, &plen)) == NULL) {
    req_error(r, EIM_PE_INTERNAL, "out of memory");
    return;
  }
  if (plen > (size_t)eim_srv.cfg->max_content_bytes) {
    snprintf(why, sizeof why, "payload is %zu bytes, over the limit of %lld", plen,
             eim_srv.cfg->max_content_bytes);
    req_error(r, EIM_PE_PAYLOAD_TOO_LARGE, why);
    return;
  }
  if (r->conversation_id != NULL) {
    with_membership(r, push_to_conversation);
    return;
  }
  eim_usess *s = r->cl->sess;
  int allowed = strcmp(to_user, r->cl->user_id) == 0 ||
                (s != NULL && eim_hmap_get(&s->peers, to_user) != NULL);
  if (!allowed) {
    req_error(r, EIM_PE_FORBIDDEN, "you share no conversation with this user");
    return;
  }
  const char *text = r->event;
  size_t delivered = eim_send_to_user(to_user, text, strlen(text), r->cl, EIM_M_EV_PUSH) +
                     eim_cluster_remote_count(to_user);
  eim_cluster_to_users(&to_user, 1, text);
  push_ack(r, delivered);
}

/* --- conversation.read ----------------------------------------------------- */

static void read_work(eim_job *j, void *conn) {
  wsreq *r = j->ctx;
  j->rc = eim_srv.store->read_set(conn, r->conversation_id, r->cl->user_id, r->seq, &r->read_seq,
                                  &r->max_seq, &j->err);
}

static void read_done(eim_job *j) {
  wsreq *r = j->ctx;
  if (j->rc != EIM_OK) {
    req_store_error(r);
    return;
  }
  cJSON *d = cJSON_CreateObject();
  cJSON_AddStringToObject(d, "conversation_id", r->conversation_id);
  cJSON_AddNumberToObject(d, "read_seq", (double)r->read_seq);
  cJSON_AddNumberToObject(d, "unread", (double)(r->max_seq > r->read_seq ? r->max_seq - r->read_seq : 0));
  send_ack(r->cl, r->type, r->id, d);
  eim_event_read(r->conversation_id, r->cl->user_id, r->read_seq, r->cl);
  req_free(r);
}

static void read_store(wsreq *r) {
  r->job.work = read_work;
  r->job.done = read_done;
  eim_workers_call(&r->job);
}

static void handle_read(wsreq *r) {
  char why[256];
  if (eim_json_str(r->data, "conversation_id", 1, 1, ID_MAX, &r->conversation_id, why, sizeof why) ||
      eim_json_u64(r->data, "seq", 1, (uint64_t)1 << 53, &r->seq, why, sizeof why)) {
    req_error(r, EIM_PE_BAD_REQUEST, why);
    return;
  }
  with_membership(r, read_store);
}

/* --- conversation.sync ----------------------------------------------------- */

static void sync_work(eim_job *j, void *conn) {
  wsreq *r = j->ctx;
  j->rc = eim_history_page(eim_srv.store, conn, r->conversation_id, EIM_PAGE_AFTER, r->seq, r->limit,
                           &r->list, &j->arena, &j->err);
}

static void sync_done(eim_job *j) {
  wsreq *r = j->ctx;
  if (j->rc != EIM_OK) {
    req_store_error(r);
    return;
  }
  cJSON *d = cJSON_CreateObject();
  cJSON *arr = cJSON_AddArrayToObject(d, "messages");
  for (size_t i = 0; i < r->list.n; i++) cJSON_AddItemToArray(arr, eim_json_message(&r->list.items[i]));
  cJSON_AddBoolToObject(d, "has_more", r->list.has_more);
  send_ack(r->cl, r->type, r->id, d);
  req_free(r);
}

static void sync_store(wsreq *r) {
  r->job.work = sync_work;
  r->job.done = sync_done;
  eim_workers_call(&r->job);
}

static void handle_sync(wsreq *r) {
  char why[256];
  uint64_t limit = 50;
  if (eim_json_str(r->data, "conversation_id", 1, 1, ID_MAX, &r->conversation_id, why, sizeof why) ||
      eim_json_u64(r->data, "after_seq", 1, (uint64_t)1 << 53, &r->seq, why, sizeof why) ||
      eim_json_u64(r->data, "limit", 0, (uint64_t)1 << 53, &limit, why, sizeof why)) {
    req_error(r, EIM_PE_BAD_REQUEST, why);
    return;
  }
  if (limit < 1) {
    req_error(r, EIM_PE_BAD_REQUEST, "field 'limit' must be at least 1");
    return;
  }
  r->limit = limit > HISTORY_MAX ? HISTORY_MAX : (uint32_t)limit;
  with_membership(r, sync_store);
}

/* --- user.online and ping ------------------------------------------------- */

static void handle_online(wsreq *r) {
  cJSON *d = cJSON_CreateObject();
  cJSON *arr = cJSON_AddArrayToObject(d, "users");
  eim_usess *s = r->cl->sess;
  const char *peer;
  for (size_t it = 0; s != NULL && eim_hmap_next(&s->peers, &it, &peer, NULL);)
    if (eim_user_online(peer)) cJSON_AddItemToArray(arr, cJSON_CreateString(peer));
  send_ack(r->cl, r->type, r->id, d);
  req_free(r);
}

static void handle_ping(wsreq *r) {
  send_ack(r->cl, r->type, r->id, cJSON_CreateObject());
  req_free(r);
}

/* --- Dispatch ------------------------------------------------------------ */

static const struct {
  const char *type;
  void (*handle)(wsreq *r);
  eim_metric_in metric;
} handlers[] = {
    {"conversation.chat", handle_chat, EIM_M_MSG_IN_CHAT},
    {"push", handle_push, EIM_M_MSG_IN_PUSH},
    {"conversation.read", handle_read, EIM_M_MSG_IN_READ},
    {"conversation.sync", handle_sync, EIM_M_MSG_IN_SYNC},
    {"user.online", handle_online, EIM_M_MSG_IN_ONLINE},
    {"ping", handle_ping, EIM_M_MSG_IN_PING},
};

/* Token bucket: rate_messages_per_sec, up to rate_burst. Returns 1 when the
 * request may proceed. A client still sending after rate_burst consecutive
 * refusals is closed with 1008. */
static int rate_allow(eim_client *cl) {
  uint64_t now = (uint64_t)eim_now_ms();
  double burst = (double)eim_srv.cfg->rate_burst;
  if (now > cl->refill_ms) {
    cl->tokens += (double)(now - cl->refill_ms) * (double)eim_srv.cfg->rate_messages_per_sec / 1000.0;
    if (cl->tokens > burst) cl->tokens = burst;
    cl->refill_ms = now;
  }
  if (cl->tokens >= 1.0) {
    cl->tokens -= 1.0;
    cl->strikes = 0;
    return 1;
  }
  if (++cl->strikes > (unsigned)eim_srv.cfg->rate_burst && cl->ws != NULL)
    eim_ws_close(cl->ws, 1008, "rate limit exceeded");
  return 0;
}

void eim_ws_on_message(void *ctx, eim_ws *ws, int text, const char *data, size_t len) {
  (void)ctx;
  eim_client *cl = eim_ws_user_data(ws);
  if (cl == NULL) return;
  if (cl->token_exp_ms <= eim_now_ms()) {
    eim_ws_close(ws, 1008, "token expired");
    return;
  }
  if (!text) {
    eim_metrics_msg_in(EIM_M_MSG_IN_OTHER);
    send_error(cl, NULL, EIM_PE_BAD_REQUEST, "binary frames are not supported; send JSON text");
    return;
  }
  char why[256];
  cJSON *root = eim_json_parse_object(data, len, why, sizeof why);
  if (root == NULL) {
    eim_metrics_msg_in(EIM_M_MSG_IN_OTHER);
    send_error(cl, NULL, EIM_PE_BAD_REQUEST, why);
    return;
  }
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "data");
  if (id != NULL && !cJSON_IsString(id) && !cJSON_IsNumber(id)) {
    send_error(cl, NULL, EIM_PE_BAD_REQUEST, "'id' must be a string or a number");
    goto bad;
  }
  if (id != NULL && cJSON_IsString(id) && strlen(id->valuestring) > ID_MAX) {
    send_error(cl, NULL, EIM_PE_BAD_REQUEST, "'id' is too long");
    goto bad;
  }
  /* Rate-limited after parsing, so the refusal can carry the request's id. */
  if (!rate_allow(cl)) {
    eim_metrics_msg_in(EIM_M_MSG_IN_OTHER);
    send_error(cl, id, EIM_PE_RATE_LIMITED, "too many messages; slow down");
    goto bad;
  }
  if (!cJSON_IsString(type)) {
    send_error(cl, id, EIM_PE_BAD_REQUEST, "'type' must be a string");
    goto bad;
  }
  if (d != NULL && !cJSON_IsObject(d)) {
    send_error(cl, id, EIM_PE_BAD_REQUEST, "'data' must be an object");
    goto bad;
  }
  for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++) {
    if (strcmp(type->valuestring, handlers[i].type) != 0) continue;
    eim_metrics_msg_in(handlers[i].metric);
    if (eim_srv.shutting_down) {
      send_error(cl, id, EIM_PE_UNAVAILABLE, "server is shutting down");
      goto bad;
    }
    if (d == NULL) {
      d = cJSON_AddObjectToObject(root, "data");
      if (d == NULL) goto bad;
    }
    wsreq *r = req_new(cl, root, handlers[i].type, id, d);
    if (r == NULL) {
      send_error(cl, id, EIM_PE_INTERNAL, "out of memory");
      goto bad;
    }
    handlers[i].handle(r);
    return;
  }
  eim_metrics_msg_in(EIM_M_MSG_IN_OTHER);
  snprintf(why, sizeof why, "unknown type '%.64s'", type->valuestring);
  send_error(cl, id, EIM_PE_BAD_REQUEST, why);
bad:
  cJSON_Delete(root);
}

void eim_ws_on_close(void *ctx, eim_ws *ws) {
  (void)ctx;
  eim_client *cl = eim_ws_user_data(ws);
  if (cl == NULL) return;
  EIM_LOG_D("msg=\"websocket closed\" conn=%llu user=%s", (unsigned long long)cl->conn_id,
            cl->user_id);
  eim_ws_set_user_data(ws, NULL);
  cl->ws = NULL;
  eim_sess_detach(cl);
  eim_client_unref(cl);
}

/* --- The upgrade ------------------------------------------------------------ */

/* The handshake headers are copied, since the request is gone by the time
 * the peers are loaded. */
typedef struct upgrade_op {
  eim_job job;
  eim_http_conn *c;
  eim_client *cl;
  size_t nh;
  char **names, **values;
  eim_id_list peers;
  eim_conv_list convs; /* cluster mode: where delivery starts, per conversation */
} upgrade_op;

static void upgrade_free(upgrade_op *u) {
  for (size_t i = 0; i < u->nh; i++) {
    free(u->names[i]);
    free(u->values[i]);
  }
  free(u->names);
  free(u->values);
  eim_arena_reset(&u->job.arena);
  free(u);
}

static void upgrade_work(eim_job *j, void *conn) {
  upgrade_op *u = j->ctx;
  j->rc = eim_srv.store->user_peers(conn, u->cl->user_id, &u->peers, &j->arena, &j->err);
  if (j->rc == EIM_OK && eim_cluster_enabled())
    j->rc = eim_srv.store->conv_list(conn, u->cl->user_id, &u->convs, &j->arena, &j->err);
}

static void upgrade_done(eim_job *j) {
  upgrade_op *u = j->ctx;
  eim_client *cl = u->cl;
  if (j->rc != EIM_OK || eim_srv.shutting_down) {
    int perr = eim_srv.shutting_down ? EIM_PE_UNAVAILABLE : eim_perr_from_code(j->rc);
    eim_api_error(u->c, perr, eim_srv.shutting_down ? "server is shutting down" : j->err.msg);
    eim_client_unref(cl);
  } else {
    eim_http_req req;
    memset(&req, 0, sizeof req);
    req.method = "GET";
    req.path = "/ws";
    req.query = "";
    req.body = "";
    req.websocket = 1;
    req.nheaders = u->nh;
    req.header_names = (const char *const *)u->names;
    req.header_values = (const char *const *)u->values;
    req.peer_ip = eim_http_peer_ip(u->c);
    eim_ws *ws = eim_ws_accept(u->c, &req, cl);
    if (ws == NULL) {
      eim_client_unref(cl);
    } else {
      cl->ws = ws;
      cl->conn_id = eim_ws_id(ws);
      EIM_LOG_D("msg=\"websocket open\" conn=%llu user=%s peer=%s", (unsigned long long)cl->conn_id,
                cl->user_id, eim_ws_peer_ip(ws));
      for (size_t i = 0; i < u->convs.n; i++)
        eim_cluster_seq_baseline(u->convs.items[i].conversation_id, u->convs.items[i].max_seq);
      if (eim_sess_attach(cl, u->peers.ids, u->peers.n) != 0) eim_ws_close(ws, 1011, "out of memory");
    }
  }
  eim_http_release(u->c);
  upgrade_free(u);
}

void eim_ws_upgrade(eim_http_conn *c, const eim_http_req *req, const char *user_id,
                    int64_t expires_at) {
  upgrade_op *u = calloc(1, sizeof *u);
  if (u == NULL) goto oom;
  eim_job_init(&u->job, upgrade_done, u);
  u->job.work = upgrade_work;
  u->names = calloc(req->nheaders + 1, sizeof *u->names);
  u->values = calloc(req->nheaders + 1, sizeof *u->values);
  if (u->names == NULL || u->values == NULL) goto oom;
  for (size_t i = 0; i < req->nheaders; i++) {
    u->names[i] = strdup(req->header_names[i]);
    u->values[i] = strdup(req->header_values[i]);
    u->nh = i + 1;
    if (u->names[i] == NULL || u->values[i] == NULL) goto oom;
  }
  u->cl = eim_client_new(user_id, expires_at);
  if (u->cl == NULL) goto oom;
  u->c = c;
  eim_http_hold(c);
  eim_workers_call(&u->job);
  return;
oom:
  if (u) upgrade_free(u);
  eim_api_error(c, EIM_PE_INTERNAL, "out of memory");
}
