#include "events.h"

#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "convcache.h"
#include "json.h"
#include "log.h"

typedef struct {
  char *text;
  size_t len;
  eim_client *except; /* a reference, or NULL */
  eim_metric_event ev;
} fanout;

static char *wrap_event(const char *type, cJSON *data) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "type", type);
  cJSON_AddItemToObject(o, "data", data);
  return eim_json_print(o);
}

size_t eim_event_send_to_convc(const eim_convc *c, const char *text, size_t len,
                               const eim_client *except, eim_metric_event ev) {
  /* Sending never attaches or detaches a session (a connection closed for a
   * full queue goes away in a later callback), so the pointers stay valid
   * for the whole loop; without them (out of memory) each is looked up. */
  eim_usess *const *sess = eim_convc_sessions(c);
  size_t n = 0;
  for (size_t i = 0; i < c->n; i++)
    n += eim_send_to_sess(sess != NULL ? sess[i] : eim_sess_get(c->members[i]), text, len, except,
                          ev);
  return n;
}

static void fanout_to_members(void *ctx, const eim_convc *c, int rc, const char *why) {
  fanout *f = ctx;
  if (rc == EIM_OK) {
    eim_event_send_to_convc(c, f->text, f->len, f->except, f->ev);
  } else {
    EIM_LOG_W("msg=\"event not delivered\" reason=\"%s\"", why ? why : "?");
  }
  if (f->except) eim_client_unref(f->except);
  cJSON_free(f->text);
  free(f);
}

void eim_event_to_members(const char *conversation_id, char *text, const eim_client *except,
                          eim_metric_event ev) {
  fanout *f = malloc(sizeof *f);
  if (f == NULL || text == NULL) {
    free(f);
    cJSON_free(text);
    return;
  }
  /* The membership may load first: hold `except`, so its address cannot be
   * taken over by a new client meanwhile. */
  *f = (fanout){text, strlen(text), (eim_client *)except, ev};
  if (f->except) eim_client_ref(f->except);
  eim_convc_with(conversation_id, fanout_to_members, f);
}

void eim_event_chat(const eim_msg *m, const eim_client *except) {
  if (eim_cluster_enabled()) {
    eim_cluster_chat(m, except);
    return;
  }
  eim_event_to_members(m->conversation_id, wrap_event("conversation.chat", eim_json_message(m)), except,
             EIM_M_EV_CHAT);
}

void eim_event_read(const char *conversation_id, const char *user_id, uint64_t read_seq,
                    const eim_client *except) {
  cJSON *d = cJSON_CreateObject();
  cJSON_AddStringToObject(d, "conversation_id", conversation_id);
  cJSON_AddStringToObject(d, "user_id", user_id);
  cJSON_AddNumberToObject(d, "read_seq", (double)read_seq);
  char *text = wrap_event("conversation.read", d);
  if (text != NULL) eim_cluster_to_members(conversation_id, text);
  eim_event_to_members(conversation_id, text, except, EIM_M_EV_READ);
}

void eim_event_created(const eim_conv *c, const char *const *users, size_t n) {
  char *text = wrap_event("conversation.created", eim_json_conversation(c));
  if (text == NULL) return;
  size_t len = strlen(text);
  for (size_t i = 0; i < n; i++) eim_send_to_user(users[i], text, len, NULL, EIM_M_EV_CREATED);
  cJSON_free(text);
  eim_cluster_conversation(c, users, n);
}
