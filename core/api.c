/* The HTTP API (protocol.md, HTTP API): routing, authentication, and the
 * REST handlers. Handlers validate on the loop thread, run store calls on the
 * store workers and password hashing on libuv's thread pool, and answer when
 * those are done. */
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "convcache.h"
#include "api.h"
#include "dispatch.h"
#include "errors.h"
#include "events.h"
#include "history.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "server.h"
#include "sessions.h"
#include "static.h"
#include "workers.h"

enum {
  USERNAME_MIN = 3,
  USERNAME_MAX = 32,
  PASSWORD_MIN = 8,
  PASSWORD_MAX = 128,
  ID_MAX = 128,
  NAME_MAX_ = 128,
  HISTORY_DEFAULT = 50,
  HISTORY_MAX = 200
};

/* --- Responses ------------------------------------------------------------ */

static void respond_json(eim_http_conn *c, int status, cJSON *o) {
  char *text = eim_json_print(o);
  if (text == NULL) {
    static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
    eim_http_respond(c, 500, "application/json", oom, sizeof oom - 1, NULL);
    return;
  }
  eim_http_respond(c, status, "application/json", text, strlen(text), "Cache-Control: no-store\r\n");
  cJSON_free(text);
}

void eim_api_error(eim_http_conn *c, int perr, const char *message) {
  eim_metrics_error(perr);
  if (perr == EIM_PE_INTERNAL || perr == EIM_PE_UNAVAILABLE)
    EIM_LOG_W("msg=\"request failed\" peer=%s code=%s reason=\"%s\"", eim_http_peer_ip(c),
              eim_errcode_name(perr), message);
  respond_json(c, eim_errcode_http(perr), eim_json_error(perr, message));
}

/* --- Small parsers ------------------------------------------------------ */

static int hexval(int ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/* Percent-decodes s[0..n) into out (outlen bytes, NUL-terminated); `plus`
 * turns '+' into ' ' (query strings). Returns 0, or -1 for a bad escape, a
 * decoded NUL, or no room. */
static int pct_decode(const char *s, size_t n, int plus, char *out, size_t outlen) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    int ch = (unsigned char)s[i];
    if (ch == '%') {
      if (i + 2 >= n) return -1;
      int hi = hexval((unsigned char)s[i + 1]), lo = hexval((unsigned char)s[i + 2]);
      if (hi < 0 || lo < 0) return -1;
      ch = hi * 16 + lo;
      i += 2;
      if (ch == 0) return -1;
    } else if (ch == '+' && plus) {
      ch = ' ';
    }
    if (o + 1 >= outlen) return -1;
    out[o++] = (char)ch;
  }
  out[o] = '\0';
  return 0;
}

/* Finds `name` in a raw query string and decodes its value into out.
 * Returns 1 when found, 0 when absent, -1 when malformed or too long. */
static int query_get(const char *query, const char *name, char *out, size_t outlen) {
  size_t nl = strlen(name);
  const char *p = query;
  while (p && *p) {
    const char *amp = strchr(p, '&');
    size_t seglen = amp ? (size_t)(amp - p) : strlen(p);
    if (seglen > nl && strncmp(p, name, nl) == 0 && p[nl] == '=')
      return pct_decode(p + nl + 1, seglen - nl - 1, 1, out, outlen) == 0 ? 1 : -1;
    if (seglen == nl && strncmp(p, name, nl) == 0) {
      out[0] = '\0';
      return 1;
    }
    p = amp ? amp + 1 : NULL;
  }
  return 0;
}

static int query_u64(const char *query, const char *name, uint64_t *out, int *present) {
  char buf[32];
  int rc = query_get(query, name, buf, sizeof buf);
  *present = rc == 1;
  if (rc <= 0) return rc;
  long long v;
  if (eim_parse_i64(buf, 0, (1LL << 53), &v) != 0) return -1;
  *out = (uint64_t)v;
  return 1;
}

static int valid_username(const char *u) {
  size_t n = strlen(u);
  if (n < USERNAME_MIN || n > USERNAME_MAX) return 0;
  for (size_t i = 0; i < n; i++) {
    int ch = (unsigned char)u[i];
    if (!isalnum(ch) && ch != '_' && ch != '.' && ch != '-') return 0;
  }
  return 1;
}

/* Reads the bearer token of the Authorization header, or for the WebSocket
 * upgrade also ?token=. Returns 0 with user_id set, or answers 401 and
 * returns -1. */
static int authenticate(eim_http_conn *c, const eim_http_req *req, int allow_query,
                        char *user_id, int64_t *exp) {
  char qtok[EIM_TOKEN_MAX];
  const char *token = NULL;
  const char *h = eim_http_header(req, "authorization");
  if (h != NULL) {
    while (*h == ' ') h++;
    if (strncasecmp(h, "Bearer ", 7) == 0) {
      token = h + 7;
      while (*token == ' ') token++;
    }
  } else if (allow_query && query_get(req->query, "token", qtok, sizeof qtok) == 1) {
    token = qtok;
  }
  if (token == NULL || *token == '\0') {
    eim_api_error(c, EIM_PE_UNAUTHORIZED, "missing bearer token");
    return -1;
  }
  int rc = eim_auth_check(token, user_id, exp);
  if (rc != EIM_OK) {
    eim_api_error(c, EIM_PE_UNAUTHORIZED, rc == EIM_EEXPIRED ? "token expired" : "invalid token");
    return -1;
  }
  return 0;
}

/* --- Request state -------------------------------------------------------- */

typedef struct api_op {
  eim_job job;
  eim_http_conn *c;
  char user_id[EIM_ID_MAX];
  char conv_id[ID_MAX + 1];
  char username[USERNAME_MAX + 1];
  char peer_ip[64];
  cJSON *body;
  /* inputs */
  const char *login_name, *password;
  char hash[crypto_pwhash_STRBYTES];
  eim_conv_new cnew;
  const char **ids;
  size_t nids;
  eim_page_dir dir;
  uint64_t page_seq;
  uint32_t limit;
  uint64_t seq;
  /* outputs */
  eim_user user;
  eim_conv conv;
  int existed;
  eim_conv_list convs;
  eim_msg_list msgs;
  uint64_t read_seq, max_seq;
  int pw_ok;
  uv_work_t work;
  int64_t now;
} api_op;

/* A request's state, holding the connection until op_free. Takes body
 * (may be NULL) and copies user_id (the caller, or NULL). On failure answers
 * 500, frees body and returns NULL. */
static api_op *op_new(eim_http_conn *c, void (*done)(eim_job *), cJSON *body, const char *user_id) {
  api_op *op = calloc(1, sizeof *op);
  if (op == NULL) {
    eim_api_error(c, EIM_PE_INTERNAL, "out of memory");
    cJSON_Delete(body);
    return NULL;
  }
  eim_job_init(&op->job, done, op);
  op->c = c;
  op->body = body;
  if (user_id) snprintf(op->user_id, sizeof op->user_id, "%s", user_id);
  op->now = eim_now_ms();
  eim_http_hold(c);
  return op;
}

static void op_free(api_op *op) {
  eim_http_release(op->c);
  eim_arena_reset(&op->job.arena);
  cJSON_Delete(op->body);
  free(op->ids);
  sodium_memzero(op->hash, sizeof op->hash);
  free(op);
}

static void op_store_error(api_op *op) {
  int perr = eim_perr_from_code(op->job.rc);
  eim_api_error(op->c, perr, op->job.err.msg[0] ? op->job.err.msg : eim_errcode_name(perr));
  op_free(op);
}

/* Answers a failed job and frees op: the store code `special` with perr and
 * message, any other failure as the store said. Returns 1 when it answered,
 * 0 when the job succeeded. */
static int op_failed(api_op *op, int special, int perr, const char *message) {
  if (op->job.rc == EIM_OK) return 0;
  if (op->job.rc == special) {
    eim_api_error(op->c, perr, message);
    op_free(op);
  } else {
    op_store_error(op);
  }
  return 1;
}

static void op_call(api_op *op, eim_job_fn work) {
  op->job.work = work;
  eim_workers_call(&op->job);
}

/* Parses the JSON object body; answers 400 and returns NULL when it is not
 * one. */
static cJSON *parse_body(eim_http_conn *c, const eim_http_req *req) {
  char why[128];
  cJSON *o = eim_json_parse_object(req->body, req->body_len, why, sizeof why);
  if (o == NULL) eim_api_error(c, EIM_PE_BAD_REQUEST, why);
  return o;
}

static int is_member(const eim_conv *cv, const char *user_id) {
  for (size_t i = 0; i < cv->nmembers; i++)
    if (strcmp(cv->members[i], user_id) == 0) return 1;
  return 0;
}

/* --- Users and login ------------------------------------------------------ */

/* A hash of a random password: login verifies against it when the username
 * is unknown, so both failures cost the same time. */
static char dummy_hash[crypto_pwhash_STRBYTES];

/* Failed logins, per client address and per username: a bucket empties
 * after the configured number of failures and refills over a minute. */
static eim_ratelimit login_fail_ip, login_fail_user;

static int hash_password(const char *pw, char *out) {
  return crypto_pwhash_str(out, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                           crypto_pwhash_MEMLIMIT_INTERACTIVE);
}

void eim_api_sweep(int64_t now_ms) {
  eim_ratelimit_sweep(&login_fail_ip, now_ms);
  eim_ratelimit_sweep(&login_fail_user, now_ms);
}

void eim_api_free(void) {
  eim_ratelimit_free(&login_fail_ip);
  eim_ratelimit_free(&login_fail_user);
}

int eim_api_init(void) {
  double ip = (double)eim_srv.cfg->login_failures_per_ip_per_min;
  double user = (double)eim_srv.cfg->login_failures_per_user_per_min;
  eim_ratelimit_init(&login_fail_ip, ip, ip);
  eim_ratelimit_init(&login_fail_user, user, user);
  unsigned char pw[16];
  char hex[33];
  randombytes_buf(pw, sizeof pw);
  sodium_bin2hex(hex, sizeof hex, pw, sizeof pw);
  return hash_password(hex, dummy_hash);
}

static void register_created(eim_job *j) {
  api_op *op = j->ctx;
  if (op_failed(op, EIM_ECONFLICT, EIM_PE_CONFLICT, "username is taken")) return;
  respond_json(op->c, 201, eim_json_user(&op->user));
  op_free(op);
}

static void register_store(eim_job *j, void *conn) {
  api_op *op = j->ctx;
  j->rc = eim_srv.store->user_create(conn, op->login_name, op->hash, op->now, &op->user, &j->arena, &j->err);
}

static void hash_work(uv_work_t *w) {
  api_op *op = w->data;
  op->pw_ok = hash_password(op->password, op->hash) == 0;
}

static void hash_done(uv_work_t *w, int status) {
  api_op *op = w->data;
  if (status != 0 || !op->pw_ok) {
    eim_api_error(op->c, EIM_PE_INTERNAL, "password hashing failed");
    op_free(op);
    return;
  }
  op_call(op, register_store);
}

/* Parses {"username", "password"}, strings of at most max bytes each.
 * Returns the body, which owns both strings, or NULL after answering 400. */
static cJSON *parse_credentials(eim_http_conn *c, const eim_http_req *req, size_t max,
                                const char **u, const char **p) {
  cJSON *body = parse_body(c, req);
  if (body == NULL) return NULL;
  char why[128];
  if (eim_json_str(body, "username", 1, 0, max, u, why, sizeof why) ||
      eim_json_str(body, "password", 1, 0, max, p, why, sizeof why)) {
    eim_api_error(c, EIM_PE_BAD_REQUEST, why);
    cJSON_Delete(body);
    return NULL;
  }
  return body;
}

static void route_register(eim_http_conn *c, const eim_http_req *req) {
  const char *u, *p;
  cJSON *body = parse_credentials(c, req, SIZE_MAX, &u, &p);
  if (body == NULL) return;
  if (!valid_username(u)) {
    eim_api_error(c, EIM_PE_BAD_REQUEST, "username must be 3 to 32 of A-Z a-z 0-9 _ . -");
    cJSON_Delete(body);
    return;
  }
  size_t pl = strlen(p);
  if (pl < PASSWORD_MIN || pl > PASSWORD_MAX) {
    eim_api_error(c, EIM_PE_BAD_REQUEST, "password must be 8 to 128 bytes");
    cJSON_Delete(body);
    return;
  }
  api_op *op = op_new(c, register_created, body, NULL);
  if (op == NULL) return;
  op->login_name = u;
  op->password = p;
  op->work.data = op;
  uv_queue_work(eim_srv.loop, &op->work, hash_work, hash_done);
}

static void verify_work(uv_work_t *w) {
  api_op *op = w->data;
  const char *hash = op->job.rc == EIM_OK && op->user.password_hash ? op->user.password_hash : dummy_hash;
  int ok = crypto_pwhash_str_verify(hash, op->password, strlen(op->password)) == 0;
  op->pw_ok = ok && op->job.rc == EIM_OK && hash != dummy_hash;
}

static void verify_done(uv_work_t *w, int status) {
  api_op *op = w->data;
  if (status != 0 || !op->pw_ok) {
    int64_t now = eim_now_ms();
    eim_ratelimit_take(&login_fail_ip, op->peer_ip, now);
    eim_ratelimit_take(&login_fail_user, op->login_name, now);
    eim_api_error(op->c, EIM_PE_UNAUTHORIZED, "invalid username or password");
    op_free(op);
    return;
  }
  char token[EIM_TOKEN_MAX];
  int64_t exp = 0;
  eim_err err = {0, ""};
  if (eim_srv.auth->issue(eim_srv.auth_state, op->user.user_id, token, &exp, &err) != EIM_OK) {
    EIM_LOG_E("msg=\"token issue failed\" reason=\"%s\"", err.msg);
    eim_api_error(op->c, EIM_PE_INTERNAL, "could not issue a token");
    op_free(op);
    return;
  }
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "token", token);
  cJSON_AddStringToObject(o, "user_id", op->user.user_id);
  cJSON_AddNumberToObject(o, "expires_at", (double)exp);
  sodium_memzero(token, sizeof token);
  respond_json(op->c, 200, o);
  op_free(op);
}

static void login_found(eim_job *j) {
  api_op *op = j->ctx;
  if (j->rc != EIM_OK && j->rc != EIM_ENOTFOUND) {
    op_store_error(op);
    return;
  }
  op->work.data = op;
  uv_queue_work(eim_srv.loop, &op->work, verify_work, verify_done);
}

static void login_store(eim_job *j, void *conn) {
  api_op *op = j->ctx;
  j->rc = eim_srv.store->user_by_name(conn, op->login_name, &op->user, &j->arena, &j->err);
}

static void route_login(eim_http_conn *c, const eim_http_req *req) {
  /* Over the registration sizes a login is malformed whoever asks: 400 at
   * once reveals nothing about which users exist, and costs no hash and no
   * failed-login bucket keyed by a huge name. */
  const char *u, *p;
  cJSON *body = parse_credentials(c, req, PASSWORD_MAX, &u, &p);
  if (body == NULL) return;
  if (strlen(u) > USERNAME_MAX) {
    eim_api_error(c, EIM_PE_BAD_REQUEST, "username must be 3 to 32 of A-Z a-z 0-9 _ . -");
    cJSON_Delete(body);
    return;
  }
  int64_t now = eim_now_ms();
  const char *ip = eim_http_peer_ip(c);
  if (!eim_ratelimit_check(&login_fail_ip, ip, now) || !eim_ratelimit_check(&login_fail_user, u, now)) {
    eim_api_error(c, EIM_PE_RATE_LIMITED, "too many failed logins; try again later");
    cJSON_Delete(body);
    return;
  }
  api_op *op = op_new(c, login_found, body, NULL);
  if (op == NULL) return;
  op->login_name = u;
  op->password = p;
  snprintf(op->peer_ip, sizeof op->peer_ip, "%s", ip);
  /* An impossible username is not looked up, but still costs one hash. */
  if (!valid_username(u)) {
    op->job.rc = EIM_ENOTFOUND;
    login_found(&op->job);
    return;
  }
  op_call(op, login_store);
}

static void user_done(eim_job *j) {
  api_op *op = j->ctx;
  if (op_failed(op, EIM_ENOTFOUND, EIM_PE_NOT_FOUND, "no such user")) return;
  respond_json(op->c, 200, eim_json_user(&op->user));
  op_free(op);
}

/* A user by id: /users/me and /users/{id} alike. */
static void me_store(eim_job *j, void *conn) {
  api_op *op = j->ctx;
  j->rc = eim_srv.store->user_by_id(conn, op->user_id, &op->user, &j->arena, &j->err);
}

static void route_user(eim_http_conn *c, const char *user_id) {
  size_t n = strlen(user_id);
  if (n >= EIM_ID_MAX) { /* no store mints ids that long */
    eim_api_error(c, EIM_PE_NOT_FOUND, "no such user");
    return;
  }
  api_op *op = op_new(c, user_done, NULL, user_id);
  if (op == NULL) return;
  op_call(op, me_store);
}

static void lookup_store(eim_job *j, void *conn) {
  api_op *op = j->ctx;
  j->rc = eim_srv.store->user_by_name(conn, op->username, &op->user, &j->arena, &j->err);
}

static void route_user_lookup(eim_http_conn *c, const eim_http_req *req) {
  char name[USERNAME_MAX * 3 + 1];
  int rc = query_get(req->query, "username", name, sizeof name);
  if (rc != 1) {
    eim_api_error(c, EIM_PE_BAD_REQUEST, "query parameter 'username' is required");
    return;
  }
  if (!valid_username(name)) {
    eim_api_error(c, EIM_PE_NOT_FOUND, "no such user");
    return;
  }
  api_op *op = op_new(c, user_done, NULL, NULL);
  if (op == NULL) return;
  memcpy(op->username, name, strlen(name) + 1); /* valid_username: <= USERNAME_MAX */
  op_call(op, lookup_store);
}

/* --- Conversations ----------------------------------------------------------- */

/* After a create or an addition: the cache, the peers and the events. */
static void conversation_changed(const eim_conv *cv, const char *const *notify, size_t n) {
  eim_convc_put(cv->conversation_id, cv->members, cv->nmembers);
  eim_sess_add_peers(cv->members, cv->nmembers);
  eim_event_created(cv, notify, n);
}

static void create_done(eim_job *j) {
  api_op *op = j->ctx;
  if (op_failed(op, EIM_ENOTFOUND, EIM_PE_NOT_FOUND, "a member is not a known user")) return;
  if (!op->existed) conversation_changed(&op->conv, op->conv.members, op->conv.nmembers);
  respond_json(op->c, op->existed ? 200 : 201, eim_json_conversation(&op->conv));
  op_free(op);
}

static void create_store(eim_job *j, void *conn) {
  api_op *op = j->ctx;
  j->rc = eim_srv.store->conv_create(conn, &op->cnew, &op->conv, &op->existed, &j->arena, &j->err);
}

/* Collects a JSON array of user ids into op->ids. Returns 0, or -1 with why. */
static int collect_ids(api_op *op, const cJSON *arr, const char *field, size_t min, char *why,
                       size_t whylen) {
  if (!cJSON_IsArray(arr)) {
    snprintf(why, whylen, "field '%s' must be an array of user ids", field);
    return -1;
  }
  size_t n = (size_t)cJSON_GetArraySize(arr);
  if (n < min || n > (size_t)eim_srv.cfg->max_group_members) {
    snprintf(why, whylen, "field '%s' must hold %zu to %lld user ids", field, min,
             eim_srv.cfg->max_group_members);
    return -1;
  }
  op->ids = calloc(n + 1, sizeof *op->ids);
  if (op->ids == NULL) {
    snprintf(why, whylen, "out of memory");
    return -1;
  }
  const cJSON *it;
  cJSON_ArrayForEach(it, arr) {
    if (!cJSON_IsString(it) || it->valuestring[0] == '\0' || strlen(it->valuestring) > ID_MAX) {
      snprintf(why, whylen, "field '%s' must hold user id strings", field);
      return -1;
    }
    op->ids[op->nids++] = it->valuestring;
  }
  return 0;
}

static void route_create(eim_http_conn *c, const eim_http_req *req, const char *user_id) {
  cJSON *body = parse_body(c, req);
  if (body == NULL) return;
  api_op *op = op_new(c, create_done, body, user_id);
  if (op == NULL) return;
  char why[160];
  const char *type = NULL, *peer = NULL, *name = NULL;
  if (eim_json_str(body, "type", 1, 1, 16, &type, why, sizeof why)) goto bad;
  op->cnew.creator = op->user_id;
  op->cnew.created_at = op->now;
  if (strcmp(type, "single") == 0) {
    if (eim_json_str(body, "peer", 1, 1, ID_MAX, &peer, why, sizeof why)) goto bad;
    if (strcmp(peer, user_id) == 0) {
      snprintf(why, sizeof why, "a single chat needs another user as 'peer'");
      goto bad;
    }
    op->ids = calloc(1, sizeof *op->ids);
    if (op->ids == NULL) goto bad;
    op->ids[0] = peer;
    op->nids = 1;
    op->cnew.type = EIM_CONV_SINGLE;
    op->cnew.name = "";
  } else if (strcmp(type, "group") == 0) {
    if (eim_json_str(body, "name", 1, 1, NAME_MAX_, &name, why, sizeof why)) goto bad;
    const cJSON *members = cJSON_GetObjectItemCaseSensitive(body, "members");
    if (members == NULL) {
      op->ids = calloc(1, sizeof *op->ids);
      if (op->ids == NULL) goto bad;
    } else if (collect_ids(op, members, "members", 0, why, sizeof why)) {
      goto bad;
    }
    op->cnew.type = EIM_CONV_GROUP;
    op->cnew.name = name;
  } else {
    snprintf(why, sizeof why, "field 'type' must be \"single\" or \"group\"");
    goto bad;
  }
  op->cnew.members = op->ids;
  op->cnew.nmembers = op->nids;
  op_call(op, create_store);
  return;
bad:
  eim_api_error(c, EIM_PE_BAD_REQUEST, why);
  op_free(op);
}

static void list_done(eim_job *j) {
  api_op *op = j->ctx;
  if (op_failed(op, EIM_OK, 0, NULL)) return;
  cJSON *o = cJSON_CreateObject();
  cJSON *arr = cJSON_AddArrayToObject(o, "conversations");
  for (size_t i = 0; i < op->convs.n; i++)
    cJSON_AddItemToArray(arr, eim_json_conversation(&op->convs.items[i]));
  respond_json(op->c, 200, o);
  op_free(op);
}

static void list_store(eim_job *j, void *conn) {
  api_op *op = j->ctx;
  j->rc = eim_srv.store->conv_list(conn, op->user_id, &op->convs, &j->arena, &j->err);
}

static void route_list(eim_http_conn *c, const char *user_id) {
  api_op *op = op_new(c, list_done, NULL, user_id);
  if (op == NULL) return;
  op_call(op, list_store);
}

/* conv_get, then membership: the common first step of the routes on one
 * conversation. */
static int get_as_member(api_op *op, void *conn) {
  eim_job *j = &op->job;
  j->rc = eim_srv.store->conv_get(conn, op->conv_id, op->user_id, &op->conv, &j->arena, &j->err);
  if (j->rc == EIM_OK && !is_member(&op->conv, op->user_id))
    j->rc = eim_err_set(&j->err, EIM_EFORBIDDEN, "you are not a member of this conversation");
  else if (j->rc == EIM_ENOTFOUND)
    eim_err_set(&j->err, EIM_ENOTFOUND, "no such conversation");
  return j->rc;
}

static void get_done(eim_job *j) {
  api_op *op = j->ctx;
  if (op_failed(op, EIM_OK, 0, NULL)) return;
  eim_convc_put(op->conv.conversation_id, op->conv.members, op->conv.nmembers);
  respond_json(op->c, 200, eim_json_conversation(&op->conv));
  op_free(op);
}

static void get_store(eim_job *j, void *conn) { get_as_member(j->ctx, conn); }

static void add_done(eim_job *j) {
  api_op *op = j->ctx;
  if (op_failed(op, EIM_OK, 0, NULL)) return;
  /* The added users, as given (store results say who is in now). */
  conversation_changed(&op->conv, op->ids, op->nids);
  respond_json(op->c, 200, eim_json_conversation(&op->conv));
  op_free(op);
}

static void add_store(eim_job *j, void *conn) {
  api_op *op = j->ctx;
  if (get_as_member(op, conn) != EIM_OK) return;
  if (op->conv.type != EIM_CONV_GROUP) {
    j->rc = eim_err_set(&j->err, EIM_EINVAL, "members can only be added to groups");
    return;
  }
  /* Users already in are neither added again nor told again. */
  size_t k = 0;
  for (size_t i = 0; i < op->nids; i++)
    if (!is_member(&op->conv, op->ids[i])) op->ids[k++] = op->ids[i];
  op->nids = k;
  if (k > 0) {
    j->rc = eim_srv.store->conv_add_members(conn, op->conv_id, op->ids, k, op->now, &j->err);
    if (j->rc == EIM_ENOTFOUND) eim_err_set(&j->err, EIM_ENOTFOUND, "a user to add is not a known user");
    if (j->rc != EIM_OK) return;
    eim_arena_reset(&j->arena);
    get_as_member(op, conn);
  }
}

static void route_add_members(eim_http_conn *c, const eim_http_req *req, const char *user_id,
                              const char *conv_id) {
  cJSON *body = parse_body(c, req);
  if (body == NULL) return;
  api_op *op = op_new(c, add_done, body, user_id);
  if (op == NULL) return;
  snprintf(op->conv_id, sizeof op->conv_id, "%s", conv_id);
  char why[160];
  if (collect_ids(op, cJSON_GetObjectItemCaseSensitive(body, "user_ids"), "user_ids", 1, why,
                  sizeof why)) {
    eim_api_error(c, EIM_PE_BAD_REQUEST, why);
    op_free(op);
    return;
  }
  op_call(op, add_store);
}

/* Routes that need only membership (history, read) check it in the cache. */
typedef void (*member_next)(api_op *op);
typedef struct {
  api_op *op;
  member_next next;
} member_wait;

static void on_members(void *ctx, const eim_convc *cc, int rc, const char *why) {
  member_wait *mw = ctx;
  api_op *op = mw->op;
  member_next next = mw->next;
  free(mw);
  if (rc != EIM_OK) {
    eim_api_error(op->c, eim_perr_from_code(rc), rc == EIM_ENOTFOUND ? "no such conversation" : why);
    op_free(op);
  } else if (!eim_convc_is_member(cc, op->user_id)) {
    eim_api_error(op->c, EIM_PE_FORBIDDEN, "you are not a member of this conversation");
    op_free(op);
  } else {
    next(op);
  }
}

static void with_membership(api_op *op, member_next next) {
  member_wait *mw = malloc(sizeof *mw);
  if (mw == NULL) {
    eim_api_error(op->c, EIM_PE_INTERNAL, "out of memory");
    op_free(op);
    return;
  }
  mw->op = op;
  mw->next = next;
  eim_convc_with(op->conv_id, on_members, mw);
}

static void history_done(eim_job *j) {
  api_op *op = j->ctx;
  if (op_failed(op, EIM_OK, 0, NULL)) return;
  cJSON *o = cJSON_CreateObject();
  cJSON *arr = cJSON_AddArrayToObject(o, "messages");
  for (size_t i = 0; i < op->msgs.n; i++) cJSON_AddItemToArray(arr, eim_json_message(&op->msgs.items[i]));
  cJSON_AddBoolToObject(o, "has_more", op->msgs.has_more);
  respond_json(op->c, 200, o);
  op_free(op);
}

static void history_store(eim_job *j, void *conn) {
  api_op *op = j->ctx;
  j->rc = eim_history_page(eim_srv.store, conn, op->conv_id, op->dir, op->page_seq, op->limit,
                           &op->msgs, &j->arena, &j->err);
}

static void history_member(api_op *op) { op_call(op, history_store); }

static void route_history(eim_http_conn *c, const eim_http_req *req, const char *user_id,
                          const char *conv_id) {
  uint64_t before = 0, after = 0, limit = HISTORY_DEFAULT;
  int hb, ha, hl;
  if (query_u64(req->query, "before_seq", &before, &hb) < 0 ||
      query_u64(req->query, "after_seq", &after, &ha) < 0 ||
      query_u64(req->query, "limit", &limit, &hl) < 0 || limit < 1) {
    eim_api_error(c, EIM_PE_BAD_REQUEST,
                  "before_seq and after_seq must be whole numbers, limit from 1 to 200");
    return;
  }
  if (ha && hb) {
    eim_api_error(c, EIM_PE_BAD_REQUEST, "give before_seq or after_seq, not both");
    return;
  }
  api_op *op = op_new(c, history_done, NULL, user_id);
  if (op == NULL) return;
  snprintf(op->conv_id, sizeof op->conv_id, "%s", conv_id);
  op->dir = ha ? EIM_PAGE_AFTER : hb ? EIM_PAGE_BEFORE : EIM_PAGE_LATEST;
  op->page_seq = ha ? after : before;
  op->limit = limit > HISTORY_MAX ? HISTORY_MAX : (uint32_t)limit;
  with_membership(op, history_member);
}

static void read_done(eim_job *j) {
  api_op *op = j->ctx;
  if (op_failed(op, EIM_OK, 0, NULL)) return;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "conversation_id", op->conv_id);
  cJSON_AddNumberToObject(o, "read_seq", (double)op->read_seq);
  cJSON_AddNumberToObject(o, "unread", (double)(op->max_seq > op->read_seq ? op->max_seq - op->read_seq : 0));
  respond_json(op->c, 200, o);
  eim_event_read(op->conv_id, op->user_id, op->read_seq, NULL);
  op_free(op);
}

static void read_store(eim_job *j, void *conn) {
  api_op *op = j->ctx;
  j->rc = eim_srv.store->read_set(conn, op->conv_id, op->user_id, op->seq, &op->read_seq, &op->max_seq, &j->err);
}

static void read_member(api_op *op) { op_call(op, read_store); }

static void route_read(eim_http_conn *c, const eim_http_req *req, const char *user_id,
                       const char *conv_id) {
  cJSON *body = parse_body(c, req);
  if (body == NULL) return;
  char why[128];
  uint64_t seq;
  if (eim_json_u64(body, "seq", 1, (uint64_t)1 << 53, &seq, why, sizeof why)) {
    eim_api_error(c, EIM_PE_BAD_REQUEST, why);
    cJSON_Delete(body);
    return;
  }
  cJSON_Delete(body);
  api_op *op = op_new(c, read_done, NULL, user_id);
  if (op == NULL) return;
  snprintf(op->conv_id, sizeof op->conv_id, "%s", conv_id);
  op->seq = seq;
  with_membership(op, read_member);
}

/* --- Operations -------------------------------------------------------- */

static void health_done(eim_job *j) {
  api_op *op = j->ctx;
  int ok = j->rc == EIM_OK && !eim_srv.shutting_down;
  eim_err qerr = {0, ""};
  int qok = 1;
  if (eim_srv.plugins.queue) {
    eim_plugin_inst *q = eim_srv.plugins.queue;
    qok = q->desc->queue->health(q->state, &qerr) == EIM_OK;
  }
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "status", ok && qok ? "ok" : "unavailable");
  cJSON_AddStringToObject(o, "store", j->rc == EIM_OK ? "ok" : j->err.msg);
  if (eim_srv.plugins.queue) cJSON_AddStringToObject(o, "queue", qok ? "ok" : qerr.msg);
  if (eim_srv.shutting_down) cJSON_AddBoolToObject(o, "shutting_down", 1);
  respond_json(op->c, ok && qok ? 200 : 503, o);
  op_free(op);
}

static void health_store(eim_job *j, void *conn) { j->rc = eim_srv.store->ping(conn, &j->err); }

static void route_metrics(eim_http_conn *c) {
  eim_net_stats st;
  eim_net_get_stats(eim_srv.net, &st);
  char extra[4096];
  snprintf(extra, sizeof extra,
           "# HELP exampleim_connections Open connections, by kind.\n"
           "# TYPE exampleim_connections gauge\n"
           "exampleim_connections{kind=\"http\"} %llu\n"
           "exampleim_connections{kind=\"websocket\"} %llu\n"
           "# HELP exampleim_connections_accepted_total Connections accepted.\n"
           "# TYPE exampleim_connections_accepted_total counter\n"
           "exampleim_connections_accepted_total %llu\n"
           "# HELP exampleim_connections_refused_total Connections refused by a limit.\n"
           "# TYPE exampleim_connections_refused_total counter\n"
           "exampleim_connections_refused_total %llu\n"
           "# HELP exampleim_connections_slow_closed_total WebSockets closed for a full send queue.\n"
           "# TYPE exampleim_connections_slow_closed_total counter\n"
           "exampleim_connections_slow_closed_total %llu\n"
           "# HELP exampleim_http_requests_total HTTP requests received.\n"
           "# TYPE exampleim_http_requests_total counter\n"
           "exampleim_http_requests_total %llu\n"
           "# HELP exampleim_ws_frames_total WebSocket messages, by direction.\n"
           "# TYPE exampleim_ws_frames_total counter\n"
           "exampleim_ws_frames_total{direction=\"in\"} %llu\n"
           "exampleim_ws_frames_total{direction=\"out\"} %llu\n"
           "# HELP exampleim_ws_bytes_total WebSocket payload bytes, by direction.\n"
           "# TYPE exampleim_ws_bytes_total counter\n"
           "exampleim_ws_bytes_total{direction=\"in\"} %llu\n"
           "exampleim_ws_bytes_total{direction=\"out\"} %llu\n"
           "# HELP exampleim_ws_parsers WebSockets holding a frame parser (about 8.5 KiB each; "
           "freed a second after a connection's last input).\n"
           "# TYPE exampleim_ws_parsers gauge\n"
           "exampleim_ws_parsers %llu\n"
           "# HELP exampleim_online_users Users with at least one connection on this node.\n"
           "# TYPE exampleim_online_users gauge\n"
           "exampleim_online_users %zu\n"
           "# HELP exampleim_store_jobs_inflight Store jobs queued or running.\n"
           "# TYPE exampleim_store_jobs_inflight gauge\n"
           "exampleim_store_jobs_inflight %llu\n"
           "# HELP exampleim_membership_cache_conversations Conversations in the membership cache.\n"
           "# TYPE exampleim_membership_cache_conversations gauge\n"
           "exampleim_membership_cache_conversations %zu\n"
           "# HELP exampleim_membership_cache_evictions_total Conversations dropped from the "
           "membership cache (least recently used beyond membership_cache_conversations).\n"
           "# TYPE exampleim_membership_cache_evictions_total counter\n"
           "exampleim_membership_cache_evictions_total %llu\n",
           (unsigned long long)st.http_connections, (unsigned long long)st.ws_connections,
           (unsigned long long)st.accepted_total, (unsigned long long)st.refused_total,
           (unsigned long long)st.ws_closed_slow_total, (unsigned long long)st.http_requests_total,
           (unsigned long long)st.ws_messages_in_total, (unsigned long long)st.ws_messages_out_total,
           (unsigned long long)st.ws_bytes_in_total, (unsigned long long)st.ws_bytes_out_total,
           (unsigned long long)st.ws_parsers, eim_sess_count_users(), (unsigned long long)eim_workers_inflight(), eim_convc_count(),
           (unsigned long long)eim_srv.convs_evicted);
  size_t len = 0;
  char *text = eim_metrics_render(extra, &len);
  if (text == NULL) {
    eim_api_error(c, EIM_PE_INTERNAL, "out of memory");
    return;
  }
  eim_http_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, NULL);
  free(text);
}

/* --- Router ------------------------------------------------------------------ */

static int is_method(const eim_http_req *req, const char *m) { return strcmp(req->method, m) == 0; }

/* PREFIX/{id}[/rest] (conversations, users): decodes {id} into id and points
 * rest at what follows ("" when nothing). Returns 0, or -1 when malformed. */
static int split_id_path(const char *p, char *id, size_t idlen, const char **rest) {
  const char *slash = strchr(p, '/');
  size_t n = slash ? (size_t)(slash - p) : strlen(p);
  if (n == 0 || pct_decode(p, n, 0, id, idlen) != 0) return -1;
  *rest = slash ? slash : "";
  return 0;
}

void eim_api_on_request(void *ctx, eim_http_conn *c, const eim_http_req *req) {
  (void)ctx;
  const char *path = req->path;
  char user_id[EIM_ID_MAX];
  int64_t exp;

  if (strcmp(path, "/ws") == 0) {
    if (!is_method(req, "GET")) goto not_found;
    if (authenticate(c, req, 1, user_id, &exp) != 0) return;
    if (!req->websocket) {
      eim_api_error(c, EIM_PE_BAD_REQUEST, "expected a WebSocket upgrade");
      return;
    }
    if (eim_srv.shutting_down) {
      eim_api_error(c, EIM_PE_UNAVAILABLE, "server is shutting down");
      return;
    }
    eim_ws_upgrade(c, req, user_id, exp);
    return;
  }
  if (strcmp(path, "/healthz") == 0 && is_method(req, "GET")) {
    api_op *op = op_new(c, health_done, NULL, NULL);
    if (op != NULL) op_call(op, health_store);
    return;
  }
  if (strcmp(path, "/metrics") == 0 && is_method(req, "GET")) {
    route_metrics(c);
    return;
  }
  if (strncmp(path, "/api/", 5) != 0) {
    if (is_method(req, "GET") || is_method(req, "HEAD")) {
      eim_static_serve(c, req);
      return;
    }
    goto not_found;
  }
  if (strcmp(path, "/api/v1/users") == 0) {
    if (is_method(req, "POST")) {
      route_register(c, req);
      return;
    }
    if (is_method(req, "GET")) {
      if (authenticate(c, req, 0, user_id, &exp) == 0) route_user_lookup(c, req);
      return;
    }
    goto not_found;
  }
  if (strcmp(path, "/api/v1/login") == 0 && is_method(req, "POST")) {
    route_login(c, req);
    return;
  }
  if (strcmp(path, "/api/v1/users/me") == 0 && is_method(req, "GET")) {
    if (authenticate(c, req, 0, user_id, &exp) == 0) route_user(c, user_id);
    return;
  }
  static const char user_prefix[] = "/api/v1/users/";
  if (strncmp(path, user_prefix, sizeof user_prefix - 1) == 0 && is_method(req, "GET")) {
    char other[ID_MAX + 1];
    const char *rest;
    if (split_id_path(path + sizeof user_prefix - 1, other, sizeof other, &rest) != 0 || rest[0] != '\0')
      goto not_found;
    if (authenticate(c, req, 0, user_id, &exp) == 0) route_user(c, other);
    return;
  }
  if (strcmp(path, "/api/v1/conversations") == 0) {
    if (!is_method(req, "GET") && !is_method(req, "POST")) goto not_found;
    if (authenticate(c, req, 0, user_id, &exp) != 0) return;
    if (is_method(req, "GET")) route_list(c, user_id);
    else route_create(c, req, user_id);
    return;
  }
  static const char conv_prefix[] = "/api/v1/conversations/";
  if (strncmp(path, conv_prefix, sizeof conv_prefix - 1) == 0) {
    char conv_id[ID_MAX + 1];
    const char *rest;
    if (split_id_path(path + sizeof conv_prefix - 1, conv_id, sizeof conv_id, &rest) != 0)
      goto not_found;
    int get = is_method(req, "GET"), post = is_method(req, "POST");
    int known = (strcmp(rest, "") == 0 && get) || (strcmp(rest, "/members") == 0 && post) ||
                (strcmp(rest, "/messages") == 0 && get) || (strcmp(rest, "/read") == 0 && post);
    if (!known) goto not_found;
    if (authenticate(c, req, 0, user_id, &exp) != 0) return;
    if (strcmp(rest, "") == 0) {
      api_op *op = op_new(c, get_done, NULL, user_id);
      if (op == NULL) return;
      snprintf(op->conv_id, sizeof op->conv_id, "%s", conv_id);
      op_call(op, get_store);
    } else if (strcmp(rest, "/members") == 0) {
      route_add_members(c, req, user_id, conv_id);
    } else if (strcmp(rest, "/messages") == 0) {
      route_history(c, req, user_id, conv_id);
    } else {
      route_read(c, req, user_id, conv_id);
    }
    return;
  }
not_found:
  eim_api_error(c, EIM_PE_NOT_FOUND, "no such route");
}
