/* WebSocket frames through the real server: eim_server_start on a private
 * loop with auth-jwt, store-sqlite and filter-sensitive (the .so files the
 * main build makes; EIM_FUZZ_PLUGIN_DIR), a data directory of its own
 * (EIM_FUZZ_WS_DIR, else a new one under /tmp), and rate limits out of
 * the way.
 * Once: two users are registered over HTTP, the first logs in and creates
 * a group with the second. Then one WebSocket stays open across inputs and
 * is reopened whenever the server closes it.
 *
 * Input format: chunks separated by the byte 0xFF (which never occurs in
 * UTF-8 text). A chunk's first byte says how to frame the rest:
 *   bits 0-3  opcode (any of the 16, reserved ones included)
 *   0x40      FIN clear (a fragment)
 *   0x20      ignored, so that printable bytes are useful: '!' is a final
 *             text frame, '(' a close, ')' a ping, 'A' a first fragment,
 *             ' ' a final continuation
 *   0x10      (without 0x80) the payload is padded with spaces to 70000
 *             bytes: over max_frame_bytes, with a 64-bit length
 *   0x80      a protocol violation: RSV1 set, or with 0x10 an unmasked frame
 * In payloads, "@C" becomes the group's conversation_id, "@U" the user's
 * own id and "@P" the other member's id.
 *
 * After the frames, a {"type":"ping"} with a fresh id is sent, and replies
 * are read until it is answered and every complete message sent has had its
 * one reply (protocol.md: every request gets exactly one), or the server
 * closes. Checked, besides memory errors: every server text frame is a
 * valid UTF-8 JSON object with a string "type"; no request gets two
 * replies or none (within a bound); the server survives and accepts a new
 * WebSocket after closing one. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "client.h"
#include "config.h"
#include "json.h"
#include "log.h"
#include "server.h"
#include "utf8.h"

#define REQUIRE(cond)                                                          \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: broken contract: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                 \
    }                                                                          \
  } while (0)

enum {
  MAX_FRAME = 1024,      /* max_frame_bytes of the server under test */
  BIG_PAYLOAD = 70000,
  HTTP_WAIT_MS = 120000, /* registration hashes passwords: slow on purpose */
  REPLY_WAIT_MS = 20000
};

static uv_loop_t loop;
static eim_config cfg;
static int started, port;
/* cl is the client of the HTTP calls and then the open WebSocket; spare is
 * the next WebSocket, its upgrade already under way, so that replacing a
 * closed one costs no round trip through the store on the input's path. */
static eim_fz_client clients[2];
static eim_fz_client *cl = &clients[0], *spare = &clients[1];
static int ws_open, spare_open;
static char token[EIM_TOKEN_MAX], user_id[EIM_ID_MAX], peer_id[EIM_ID_MAX], conv_id[EIM_ID_MAX];
static unsigned long long sync_counter;

/* --- setup ------------------------------------------------------------------ */

static void write_file(const char *dir, const char *name, const char *text) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  REQUIRE(f != NULL);
  REQUIRE(fputs(text, f) >= 0);
  REQUIRE(fclose(f) == 0);
}

static void set(const char *key, const char *value) {
  char why[256];
  if (eim_config_set(&cfg, key, value, why, sizeof why) != 0) {
    fprintf(stderr, "config %s: %s\n", key, why);
    abort();
  }
}

/* For limits newer than this harness may know: an unknown key is fine. */
static void set_if_known(const char *key, const char *value) {
  char why[256];
  if (eim_config_set(&cfg, key, value, why, sizeof why) != 0 && strncmp(why, "unknown key", 11) != 0) {
    fprintf(stderr, "config %s: %s\n", key, why);
    abort();
  }
}

static int head_done(eim_fz_client *c, void *arg) {
  (void)arg;
  return c->in_len >= 4 && memmem(c->in, c->in_len, "\r\n\r\n", 4) != NULL;
}

/* One request with Connection: close. Returns the status; the parsed JSON
 * body (or NULL) goes to *body. */
static int http_call(const char *method, const char *path, const char *json, cJSON **body) {
  char req[4096];
  int n = snprintf(req, sizeof req,
                   "%s %s HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n%s%s%s"
                   "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                   method, path, token[0] ? "Authorization: Bearer " : "", token,
                   token[0] ? "\r\n" : "", json ? strlen(json) : 0, json ? json : "");
  REQUIRE(n > 0 && (size_t)n < sizeof req);
  REQUIRE(eim_fz_connect(cl, port, HTTP_WAIT_MS) == 0);
  REQUIRE(eim_fz_write(cl, req, (size_t)n) == 0);
  REQUIRE(eim_fz_wait(cl, NULL, NULL, HTTP_WAIT_MS) == 0);
  REQUIRE(cl->in_len > 12 && memcmp(cl->in, "HTTP/1.1 ", 9) == 0);
  int status = atoi(cl->in + 9);
  const char *b = memmem(cl->in, cl->in_len, "\r\n\r\n", 4);
  REQUIRE(b != NULL);
  b += 4;
  char why[256];
  *body = eim_json_parse_object(b, (size_t)(cl->in + cl->in_len - b), why, sizeof why);
  eim_fz_close(cl);
  return status;
}

static void copy_field(const cJSON *o, const char *name, char *out, size_t outlen) {
  const char *s = NULL;
  char why[256];
  REQUIRE(o != NULL && eim_json_str(o, name, 1, 1, outlen - 1, &s, why, sizeof why) == 0);
  snprintf(out, outlen, "%s", s);
}

static void login(const char *name, char *id_out) {
  char body[256];
  cJSON *o = NULL;
  snprintf(body, sizeof body, "{\"username\":\"%s\",\"password\":\"fuzz-password\"}", name);
  int st = http_call("POST", "/api/v1/users", body, &o);
  REQUIRE(st == 201 || st == 409);
  cJSON_Delete(o);
  token[0] = '\0';
  REQUIRE(http_call("POST", "/api/v1/login", body, &o) == 200);
  copy_field(o, "user_id", id_out, EIM_ID_MAX);
  copy_field(o, "token", token, sizeof token);
  cJSON_Delete(o);
}

static void setup(void) {
  static char dir[4096];
  const char *env = getenv("EIM_FUZZ_WS_DIR");
  if (env != NULL && env[0] != '\0') {
    snprintf(dir, sizeof dir, "%s", env);
    REQUIRE(mkdir(dir, 0700) == 0 || errno == EEXIST);
  } else {
    snprintf(dir, sizeof dir, "/tmp/eim-fuzz-ws.XXXXXX");
    REQUIRE(mkdtemp(dir) != NULL);
  }
  char pdir[4200];
  snprintf(pdir, sizeof pdir, "%s/plugins.d", dir);
  REQUIRE(mkdir(pdir, 0700) == 0 || errno == EEXIST);
  write_file(pdir, "10-auth-jwt.conf", "plugin = auth-jwt\nttl = 864000\n");
  write_file(pdir, "20-store-sqlite.conf", "plugin = store-sqlite\nsynchronous = normal\n");
  write_file(pdir, "40-filter-sensitive.conf",
             "plugin = filter-sensitive\nwords_file = words.txt\nmode = mask\n"
             "mask_char = \xef\xbc\x8a\nskip_separators = true\n");
  write_file(pdir, "words.txt", "badword\n\xe6\x95\x8f\xe6\x84\x9f\xe8\xaf\x8d\nforbidden phrase\n");

  const char *plugins = getenv("EIM_FUZZ_PLUGIN_DIR");
  eim_config_init(&cfg);
  set("listen", "127.0.0.1:0");
  set("data_dir", dir);
  set("plugins_dir", pdir);
  set("plugin_path", plugins != NULL && plugins[0] != '\0' ? plugins : EIM_FUZZ_PLUGIN_DIR);
  set("log_level", "error");
  set("store_workers", "2");
  set("max_frame_bytes", "1024");
  set("max_content_bytes", "256");
  set("rate_messages_per_sec", "1000000");
  set("rate_burst", "1000000");
  /* Reopening WebSockets after each close exceeds any sane per-address
   * connection rate. */
  set_if_known("new_connections_per_ip_per_sec", "0");
  eim_log_set_level(cfg.log_level);
  REQUIRE(uv_loop_init(&loop) == 0);
  REQUIRE(eim_server_start(&loop, &cfg) == 0);
  port = eim_net_port(eim_srv.net);
  eim_fz_init(cl, &loop);
  eim_fz_init(spare, &loop);

  login("fuzzpeer", peer_id);
  login("fuzzer", user_id);
  char body[512];
  cJSON *o = NULL;
  snprintf(body, sizeof body, "{\"type\":\"group\",\"name\":\"fuzz\",\"members\":[\"%s\"]}", peer_id);
  REQUIRE(http_call("POST", "/api/v1/conversations", body, &o) == 201);
  copy_field(o, "conversation_id", conv_id, sizeof conv_id);
  cJSON_Delete(o);
  started = 1;
}

static void start_spare(void) {
  char req[4096];
  int n = snprintf(req, sizeof req,
                   "GET /ws HTTP/1.1\r\nHost: fuzz\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Authorization: Bearer %s\r\n\r\n",
                   token);
  REQUIRE(eim_fz_connect_start(spare, port) == 0);
  REQUIRE(eim_fz_write(spare, req, (size_t)n) == 0);
  spare_open = 1;
}

/* Makes the spare the open WebSocket once its upgrade is answered, and
 * starts the next spare. */
static void open_ws(void) {
  if (!spare_open) start_spare();
  REQUIRE(eim_fz_wait(spare, head_done, NULL, REPLY_WAIT_MS) == 1);
  if (memcmp(spare->in, "HTTP/1.1 101 ", 13) != 0) {
    eim_net_stats st;
    eim_net_get_stats(eim_srv.net, &st);
    fprintf(stderr, "the server refused a new WebSocket (it counts %llu connections, %llu refused):\n%.*s\n",
            (unsigned long long)st.http_connections, (unsigned long long)st.refused_total,
            (int)(spare->in_len > 600 ? 600 : spare->in_len), spare->in);
    abort();
  }
  eim_fz_consume(spare, (size_t)((char *)memmem(spare->in, spare->in_len, "\r\n\r\n", 4) - spare->in) + 4);
  eim_fz_client *t = cl;
  cl = spare;
  spare = t;
  ws_open = 1;
  start_spare();
}

/* --- client frames ------------------------------------------------------- */

typedef struct outbuf {
  uint8_t *p;
  size_t len, cap;
} outbuf;

static void out_put(outbuf *o, const void *data, size_t len) {
  if (len == 0) return;
  if (o->len + len > o->cap) {
    size_t cap = o->cap ? o->cap : 4096;
    while (cap < o->len + len) cap *= 2;
    o->p = realloc(o->p, cap);
    REQUIRE(o->p != NULL);
    o->cap = cap;
  }
  memcpy(o->p + o->len, data, len);
  o->len += len;
}

/* The payload of a chunk with its placeholders replaced. */
static void expand(outbuf *o, const uint8_t *s, size_t n, int big) {
  for (size_t i = 0; i < n; i++) {
    const char *sub = NULL;
    if (s[i] == '@' && i + 1 < n)
      sub = s[i + 1] == 'C' ? conv_id : s[i + 1] == 'U' ? user_id : s[i + 1] == 'P' ? peer_id : NULL;
    if (sub != NULL) {
      out_put(o, sub, strlen(sub));
      i++;
    } else {
      out_put(o, s + i, 1);
    }
  }
  while (big && o->len < BIG_PAYLOAD) out_put(o, " ", 1);
}

static void put_frame(outbuf *o, uint8_t b0, int masked, const uint8_t *payload, size_t len) {
  static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
  uint8_t hdr[14];
  size_t hl = 2;
  hdr[0] = b0;
  uint8_t m = masked ? 0x80 : 0;
  if (len < 126) {
    hdr[1] = (uint8_t)(m | len);
  } else if (len <= 65535) {
    hdr[1] = m | 126;
    hdr[2] = (uint8_t)(len >> 8);
    hdr[3] = (uint8_t)len;
    hl = 4;
  } else {
    hdr[1] = m | 127;
    for (int i = 0; i < 8; i++) hdr[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    hl = 10;
  }
  if (masked) {
    memcpy(hdr + hl, key, 4);
    hl += 4;
  }
  out_put(o, hdr, hl);
  size_t at = o->len;
  out_put(o, payload, len);
  if (masked)
    for (size_t i = 0; i < len; i++) o->p[at + i] ^= key[i & 3];
}

/* What the server should do with the frames, as far as the count of
 * replies goes: complete data messages each get one; anything that breaks
 * the protocol ends the connection, after which nothing is counted. */
typedef struct model {
  unsigned messages;
  int frag_open, broken;
  size_t frag_len;
} model;

static void model_frame(model *md, uint8_t op, int fin, int anomaly, size_t len) {
  if (md->broken) return;
  if (anomaly || (op > 2 && op < 8) || op > 10) {
    md->broken = 1;
    return;
  }
  if (op >= 8) {
    if (!fin || len > 125 || op == 8) md->broken = 1;
    return;
  }
  if ((op == 0) != md->frag_open) {
    md->broken = 1;
    return;
  }
  md->frag_len = (op == 0 ? md->frag_len : 0) + len;
  if (md->frag_len > MAX_FRAME) {
    md->broken = 1;
    return;
  }
  md->frag_open = !fin;
  if (fin) md->messages++;
}

static unsigned build_frames(const uint8_t *data, size_t size, outbuf *o) {
  model md = {0, 0, 0, 0};
  outbuf payload = {NULL, 0, 0};
  size_t pos = 0;
  while (pos < size) {
    size_t end = pos;
    while (end < size && data[end] != 0xFF) end++;
    if (end > pos) {
      uint8_t ctrl = data[pos];
      uint8_t op = ctrl & 0x0F;
      int fin = !(ctrl & 0x40);
      int big = (ctrl & 0x90) == 0x10, rsv = (ctrl & 0x90) == 0x80, unmasked = (ctrl & 0x90) == 0x90;
      payload.len = 0;
      expand(&payload, data + pos + 1, end - pos - 1, big);
      put_frame(o, (uint8_t)((fin ? 0x80 : 0) | (rsv ? 0x40 : 0) | op), !unmasked, payload.p,
                payload.len);
      model_frame(&md, op, fin, rsv || unmasked, payload.len);
    }
    pos = end + 1;
  }
  free(payload.p);
  return md.messages;
}

/* --- server frames -------------------------------------------------------- */

typedef struct replies {
  char sync_id[64];
  unsigned count, expected;
  int sync_seen, close_seen;
} replies;

static void check_message(replies *r, const char *s, size_t n) {
  REQUIRE(eim_utf8_valid(s, n));
  char why[256];
  cJSON *o = eim_json_parse_object(s, n, why, sizeof why);
  if (o == NULL) {
    fprintf(stderr, "server sent a text frame that is not a JSON object (%s): %.*s\n", why,
            (int)(n > 300 ? 300 : n), s);
    abort();
  }
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
  REQUIRE(cJSON_IsString(type));
  size_t tl = strlen(type->valuestring);
  if (strcmp(type->valuestring, "error") == 0 ||
      (tl > 4 && strcmp(type->valuestring + tl - 4, ".ack") == 0)) {
    r->count++;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    if (cJSON_IsString(id) && strcmp(id->valuestring, r->sync_id) == 0) {
      REQUIRE(strcmp(type->valuestring, "ping.ack") == 0);
      r->sync_seen = 1;
    }
    if (r->count > r->expected) {
      fprintf(stderr, "server sent %u replies to %u requests; last: %.*s\n", r->count, r->expected,
              (int)(n > 300 ? 300 : n), s);
      abort();
    }
  }
  cJSON_Delete(o);
}

/* Consumes the complete server frames in c->in. */
static int read_replies(eim_fz_client *c, void *arg) {
  replies *r = arg;
  for (;;) {
    const uint8_t *s = (const uint8_t *)c->in;
    size_t n = c->in_len;
    if (n < 2) break;
    REQUIRE((s[0] & 0x70) == 0 && !(s[1] & 0x80));
    uint8_t op = s[0] & 0x0F;
    uint64_t len = s[1] & 0x7F;
    size_t hl = 2;
    if (len == 126) {
      if (n < 4) break;
      len = ((uint64_t)s[2] << 8) | s[3];
      hl = 4;
    } else if (len == 127) {
      if (n < 10) break;
      len = 0;
      for (int i = 0; i < 8; i++) len = (len << 8) | s[2 + i];
      hl = 10;
    }
    if (n - hl < len) break;
    REQUIRE(s[0] & 0x80);
    if (op == 1) check_message(r, (const char *)s + hl, (size_t)len);
    else if (op == 8) r->close_seen = 1;
    else REQUIRE(op == 9 || op == 10);
    eim_fz_consume(c, hl + (size_t)len);
  }
  return r->close_seen || (r->sync_seen && r->count == r->expected);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!started) setup();
  if (!ws_open) open_ws();
  outbuf o = {NULL, 0, 0};
  replies r;
  memset(&r, 0, sizeof r);
  r.expected = build_frames(data, size, &o) + 1;
  snprintf(r.sync_id, sizeof r.sync_id, "fuzz-sync-%llu", ++sync_counter);
  char sync[128];
  int n = snprintf(sync, sizeof sync, "{\"type\":\"ping\",\"id\":\"%s\"}", r.sync_id);
  put_frame(&o, 0x81, 1, (const uint8_t *)sync, (size_t)n);
  REQUIRE(eim_fz_write(cl, o.p, o.len) == 0);
  free(o.p);
  int w = eim_fz_wait(cl, read_replies, &r, REPLY_WAIT_MS);
  if (w < 0) {
    fprintf(stderr, "no reply within %d ms: %u of %u replies, sync %s\n", REPLY_WAIT_MS, r.count,
            r.expected, r.sync_seen ? "answered" : "unanswered");
    abort();
  }
  /* The open WebSocket, the spare and the odd one still closing: a count
   * far above that is a leak, or an underflow that would make the server
   * refuse everyone as "too many connections". */
  eim_net_stats st;
  eim_net_get_stats(eim_srv.net, &st);
  if (st.http_connections > 64) {
    fprintf(stderr, "the server counts %llu open connections (the fuzzer has 2)\n",
            (unsigned long long)st.http_connections);
    abort();
  }
  if (w == 0 || r.close_seen) {
    /* The server closed (protocol error, 1009, the peer's close): the
     * next input gets a new WebSocket, which also proves it survived. */
    eim_fz_close(cl);
    ws_open = 0;
  }
  return 0;
}
