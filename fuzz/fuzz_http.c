/* HTTP request handling over real sockets: eim_net listens on 127.0.0.1
 * (port 0) on a private loop with a tiny application that answers every
 * request, upgrades /ws and echoes WebSocket messages. Each input is written
 * on a fresh connection and half-closed; the loop then runs until the
 * server closes. Checked, besides memory errors:
 *   - the server closes a half-closed connection (within a bound) and frees
 *     it (no connection left open afterwards);
 *   - what it sent is a sequence of complete HTTP/1.1 responses, each
 *     starting with "HTTP/1.1 " and framed by Content-Length, then, after a
 *     101, well-formed unmasked server frames;
 *   - the parsed requests keep the eim_http_req contract (lower-case header
 *     names, trimmed values, body within the limit). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client.h"
#include "net.h"

#define REQUIRE(cond)                                                          \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: broken contract: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                 \
    }                                                                          \
  } while (0)

enum { MAX_HEADER = 1024, MAX_BODY = 2048, MAX_FRAME = 1024, WAIT_MS = 5000 };

static uv_loop_t loop;
static eim_net *net;
static int port;
static eim_fz_client cl;

static void check_request(const eim_http_req *req) {
  REQUIRE(req->method != NULL && req->path != NULL && req->query != NULL && req->body != NULL);
  REQUIRE(req->body_len <= MAX_BODY && req->body[req->body_len] == '\0');
  for (size_t i = 0; i < req->nheaders; i++) {
    const char *n = req->header_names[i], *v = req->header_values[i];
    for (const char *p = n; *p; p++) REQUIRE(!(*p >= 'A' && *p <= 'Z'));
    size_t vl = strlen(v);
    REQUIRE(vl == 0 || (v[vl - 1] != ' ' && v[vl - 1] != '\t'));
    REQUIRE(eim_http_header(req, n) != NULL);
  }
}

static void app_request(void *ctx, eim_http_conn *c, const eim_http_req *req) {
  (void)ctx;
  check_request(req);
  if (strcmp(req->path, "/ws") == 0) {
    /* Not a valid handshake: eim_ws_accept answers 400 itself. */
    eim_ws_accept(c, req, NULL);
    return;
  }
  eim_http_respond(c, 200, "text/plain", "ok\n", 3, NULL);
}

static void app_ws_message(void *ctx, eim_ws *ws, int text, const char *data, size_t len) {
  (void)ctx;
  if (text && len == 5 && memcmp(data, "close", 5) == 0) {
    eim_ws_close(ws, 1000, "bye");
    return;
  }
  if (!text) {
    char buf[64];
    int n = snprintf(buf, sizeof buf, "binary:%zu", len);
    eim_ws_send_text(ws, buf, (size_t)n);
    return;
  }
  eim_ws_send_text(ws, data, len);
}

static void app_ws_close(void *ctx, eim_ws *ws) {
  (void)ctx;
  (void)ws;
}

static void setup(void) {
  REQUIRE(uv_loop_init(&loop) == 0);
  eim_net_limits lim;
  eim_net_limits_default(&lim);
  lim.max_header_bytes = MAX_HEADER;
  lim.max_body_bytes = MAX_BODY;
  lim.max_frame_bytes = MAX_FRAME;
  eim_net_handlers h = {NULL, app_request, app_ws_message, app_ws_close};
  REQUIRE(eim_net_start(&loop, "127.0.0.1", 0, &lim, &h, &net) == 0);
  port = eim_net_port(net);
  eim_fz_init(&cl, &loop);
}

static int starts_response(const char *s, size_t n) {
  return n >= 9 && memcmp(s, "HTTP/1.1 ", 9) == 0;
}

/* Content-Length of the head [s, e), or -1 when absent. */
static long long content_length(const char *s, const char *e) {
  static const char name[] = "\r\ncontent-length:";
  size_t nl = sizeof name - 1;
  for (const char *p = s; p + nl <= e; p++) {
    if (strncasecmp(p, name, nl) != 0) continue;
    char *end;
    long long v = strtoll(p + nl, &end, 10);
    REQUIRE(end > p + nl && v >= 0);
    return v;
  }
  return -1;
}

/* One server frame at s (n bytes available). Returns its size, or 0 when
 * the stream ends inside it (the server may close with frames unsent). */
static size_t check_frame(const uint8_t *s, size_t n) {
  if (n < 2) return 0;
  uint8_t op = s[0] & 0x0F;
  REQUIRE((s[0] & 0xF0) == 0x80); /* FIN, no RSV bits: the server never fragments */
  REQUIRE(op == 1 || op == 8 || op == 9 || op == 10);
  REQUIRE(!(s[1] & 0x80)); /* server frames are unmasked */
  uint64_t len = s[1] & 0x7F;
  size_t hl = 2;
  if (len == 126) {
    if (n < 4) return 0;
    len = ((uint64_t)s[2] << 8) | s[3];
    REQUIRE(len >= 126);
    hl = 4;
  } else if (len == 127) {
    if (n < 10) return 0;
    len = 0;
    for (int i = 0; i < 8; i++) len = (len << 8) | s[2 + i];
    REQUIRE(len > 65535 && !(len >> 63));
    hl = 10;
  }
  if (op >= 8) REQUIRE(len <= 125 && len != 1);
  if (n - hl < len) return 0;
  return hl + (size_t)len;
}

static void check_output(const char *s, size_t n) {
  size_t pos = 0;
  while (pos < n) {
    REQUIRE(starts_response(s + pos, n - pos));
    const char *head_end = memmem(s + pos, n - pos, "\r\n\r\n", 4);
    REQUIRE(head_end != NULL);
    size_t body = (size_t)(head_end - s) + 4;
    int status = atoi(s + pos + 9);
    REQUIRE(status >= 100 && status <= 599);
    if (status == 101) {
      for (pos = body; pos < n;) {
        size_t fl = check_frame((const uint8_t *)s + pos, n - pos);
        if (fl == 0) return;
        pos += fl;
      }
      return;
    }
    if (status == 100) {
      pos = body;
      continue;
    }
    long long cl_len = content_length(s + pos, head_end + 2);
    REQUIRE(cl_len >= 0);
    size_t next = body + (size_t)cl_len;
    /* The answer to HEAD has the length but no body. */
    if (next <= n && (next == n || starts_response(s + next, n - next)))
      pos = next;
    else if (body == n || starts_response(s + body, n - body))
      pos = body;
    else
      REQUIRE(!"a response is not followed by another or the end");
  }
}

static int server_idle(eim_fz_client *c, void *arg) {
  (void)c;
  (void)arg;
  eim_net_stats st;
  eim_net_get_stats(net, &st);
  return st.http_connections == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (net == NULL) setup();
  REQUIRE(eim_fz_connect(&cl, port, WAIT_MS) == 0);
  if (size > 0) REQUIRE(eim_fz_write(&cl, data, size) == 0);
  REQUIRE(eim_fz_shutdown(&cl) == 0);
  int r = eim_fz_wait(&cl, NULL, NULL, WAIT_MS);
  if (r < 0) {
    fprintf(stderr, "the server kept a half-closed connection open for %d ms\n", WAIT_MS);
    abort();
  }
  check_output(cl.in, cl.in_len);
  eim_fz_close(&cl);
  if (eim_fz_wait(&cl, server_idle, NULL, WAIT_MS) != 1) {
    fprintf(stderr, "the server did not free a closed connection within %d ms\n", WAIT_MS);
    abort();
  }
  return 0;
}
