/*
 * The transport driven over real loopback sockets. The server (eim_net with
 * a tiny application) runs its libuv loop in a second thread; the tests are
 * blocking socket clients in the main thread that build requests and
 * WebSocket frames by hand. Server-side actions (start, stop, close_all_ws,
 * stats) are run on the loop thread through a uv_async; server-side events
 * (a ws closed, a flood stopped) are waited for on a condition variable,
 * never by sleeping.
 */
#include "net.h"
#include "net_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

/* --- the loop thread and its test application ------------------------------- */

static uv_loop_t loop;
static uv_async_t wake;
static pthread_t loop_thread;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static void (*cmd_fn)(void *);
static void *cmd_arg;
static int cmd_done;

static eim_net *net;
static int port;
/* Server-side observations, under mu. */
static int ws_closed;        /* on_ws_close calls */
static int ws_open_now;      /* accepted minus closed */
static int flood_result = -2; /* messages queued before send_text refused */
static int net_done;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits until *v >= want (under mu), at most ms; returns the last value. */
static int wait_at_least(int *v, int want, int ms) {
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += ms / 1000;
  dl.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (dl.tv_nsec >= 1000000000L) {
    dl.tv_sec++;
    dl.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&mu);
  while (*v < want && pthread_cond_timedwait(&cv, &mu, &dl) == 0) {
  }
  int r = *v;
  pthread_mutex_unlock(&mu);
  return r;
}

static void bump(int *v, int by) {
  pthread_mutex_lock(&mu);
  *v += by;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

static void on_wake(uv_async_t *a) {
  pthread_mutex_lock(&mu);
  void (*fn)(void *) = cmd_fn;
  void *arg = cmd_arg;
  cmd_fn = NULL;
  pthread_mutex_unlock(&mu);
  if (fn == NULL) return;
  fn(arg);
  pthread_mutex_lock(&mu);
  cmd_done = 1;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

/* Runs fn(arg) on the loop thread and waits for it. */
static void on_loop(void (*fn)(void *), void *arg) {
  pthread_mutex_lock(&mu);
  cmd_fn = fn;
  cmd_arg = arg;
  cmd_done = 0;
  pthread_mutex_unlock(&mu);
  uv_async_send(&wake);
  pthread_mutex_lock(&mu);
  while (!cmd_done) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
}

typedef struct later {
  uv_timer_t timer;
  eim_http_conn *c;
  int ws;
  char key[32];
} later;

static void later_closed(uv_handle_t *h) { free(h->data); }

static void later_fire(uv_timer_t *t) {
  later *l = t->data;
  if (l->ws) {
    const char *names[] = {"sec-websocket-key"}, *values[] = {l->key};
    eim_http_req req = {.method = "GET", .path = "/ws-later", .query = "", .body = "",
                        .websocket = 1, .nheaders = 1, .header_names = names,
                        .header_values = values};
    if (eim_ws_accept(l->c, &req, NULL) != NULL) bump(&ws_open_now, 1);
  } else {
    eim_http_respond(l->c, 200, "text/plain", "later", 5, NULL);
  }
  eim_http_release(l->c);
  uv_close((uv_handle_t *)&l->timer, later_closed);
}

static void app_request(void *ctx, eim_http_conn *c, const eim_http_req *req) {
  char buf[512];
  if (strcmp(req->path, "/hello") == 0) {
    eim_http_respond(c, 200, "text/plain", "hello", 5, NULL);
  } else if (strcmp(req->path, "/echo") == 0) {
    snprintf(buf, sizeof buf, "X-Method: %s\r\nX-Query: %s\r\n", req->method, req->query);
    eim_http_respond(c, 200, "application/octet-stream", req->body, req->body_len, buf);
  } else if (strcmp(req->path, "/headers") == 0) {
    const char *t = eim_http_header(req, "X-Test");
    const char *e = eim_http_header(req, "x-empty");
    int n = snprintf(buf, sizeof buf, "x-test=[%s] x-empty=[%s] peer=%s", t ? t : "(none)",
                     e ? e : "(none)", req->peer_ip);
    eim_http_respond(c, 200, "text/plain", buf, (size_t)n, NULL);
  } else if (strcmp(req->path, "/later") == 0) {
    later *l = calloc(1, sizeof *l);
    l->c = c;
    l->timer.data = l;
    eim_http_hold(c);
    uv_timer_init(&loop, &l->timer);
    uv_timer_start(&l->timer, later_fire, 100, 0);
  } else if (strcmp(req->path, "/ws-later") == 0 && req->websocket) {
    /* Upgrade from a timer: the key is copied, the connection held. */
    later *l = calloc(1, sizeof *l);
    l->c = c;
    l->ws = 1;
    snprintf(l->key, sizeof l->key, "%s", eim_http_header(req, "sec-websocket-key"));
    l->timer.data = l;
    eim_http_hold(c);
    uv_timer_init(&loop, &l->timer);
    uv_timer_start(&l->timer, later_fire, 50, 0);
  } else if (strcmp(req->path, "/ws") == 0) {
    if (eim_ws_accept(c, req, NULL) != NULL) bump(&ws_open_now, 1);
  } else {
    static const char nf[] = "{\"error\":{\"code\":\"not_found\",\"message\":\"no route\"}}";
    eim_http_respond(c, 404, "application/json", nf, sizeof nf - 1, NULL);
  }
}

static void app_ws_message(void *ctx, eim_ws *ws, int text, const char *data, size_t len) {
  if (text && len == 5 && memcmp(data, "flood", 5) == 0) {
    /* Writes to a client that does not read until the transport refuses. */
    static char chunk[16384];
    memset(chunk, 'x', sizeof chunk);
    int i = 0;
    while (i < 100000 && eim_ws_send_text(ws, chunk, sizeof chunk) == 0) i++;
    pthread_mutex_lock(&mu);
    flood_result = i;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    return;
  }
  if (text && len == 5 && memcmp(data, "close", 5) == 0) {
    eim_ws_close(ws, 1000, "bye");
    return;
  }
  if (text && len == 8 && memcmp(data, "events ", 7) == 0 && data[7] >= '1' && data[7] <= '9') {
    /* "events N": N events, which a busy connection holds back. */
    for (int i = 1; i <= data[7] - '0'; i++) {
      char ev[16];
      int n = snprintf(ev, sizeof ev, "event-%d", i);
      eim_ws_send_event(ws, ev, (size_t)n);
    }
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
  CHECK(eim_ws_id(ws) > 0);
  pthread_mutex_lock(&mu);
  ws_closed++;
  ws_open_now--;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

static void *loop_main(void *arg) {
  uv_run(&loop, UV_RUN_DEFAULT);
  return NULL;
}

static void do_start(void *arg) {
  eim_net_handlers h = {NULL, app_request, app_ws_message, app_ws_close};
  CHECK(eim_net_start(&loop, "127.0.0.1", 0, arg, &h, &net) == 0);
  port = eim_net_port(net);
  CHECK(port > 0);
}

static void net_closed(void *arg) { bump(&net_done, 1); }
static void do_close(void *arg) { eim_net_close(net, net_closed, NULL); }
static void do_stats(void *arg) { eim_net_get_stats(net, arg); }

typedef struct close_all_arg {
  uint16_t code;
  const char *reason;
} close_all_arg;
static void do_close_all(void *arg) {
  close_all_arg *a = arg;
  eim_net_close_all_ws(net, a->code, a->reason);
}
static void do_stop_accepting(void *arg) { eim_net_stop_accepting(net); }
static void do_close_wake(void *arg) { uv_close((uv_handle_t *)&wake, NULL); }

static void server_start(const eim_net_limits *lim) {
  pthread_mutex_lock(&mu);
  ws_closed = ws_open_now = net_done = 0;
  flood_result = -2;
  pthread_mutex_unlock(&mu);
  on_loop(do_start, (void *)lim);
}

static void server_stop(void) {
  on_loop(do_close, NULL);
  CHECK(wait_at_least(&net_done, 1, 5000) == 1);
  pthread_mutex_lock(&mu);
  int open = ws_open_now;
  pthread_mutex_unlock(&mu);
  CHECK(open == 0);
  net = NULL;
}

static eim_net_stats stats(void) {
  eim_net_stats s;
  on_loop(do_stats, &s);
  return s;
}

/* --- blocking clients ---------------------------------------------------------- */

typedef struct client {
  int fd;
  char buf[1 << 16];
  size_t len;
} client;

static client *connect_client(void) {
  client *c = calloc(1, sizeof *c);
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(c->fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(connect(c->fd, (struct sockaddr *)&a, sizeof a) == 0);
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return c;
}

static void client_free(client *c) {
  close(c->fd);
  free(c);
}

static void send_all(client *c, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
    CHECK(n > 0);
    p += n;
    len -= (size_t)n;
  }
}

static void send_str(client *c, const char *s) { send_all(c, s, strlen(s)); }

/* Reads more into c->buf within ms. Returns bytes read, 0 on EOF, -1 on
 * timeout, -2 on a reset. */
static int fill(client *c, int ms) {
  struct pollfd p = {.fd = c->fd, .events = POLLIN};
  if (poll(&p, 1, ms) <= 0) return -1;
  CHECK(c->len < sizeof c->buf);
  ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
  if (n < 0) return errno == ECONNRESET ? -2 : -1;
  c->len += (size_t)n;
  return (int)n;
}

static void consume(client *c, size_t n) {
  memmove(c->buf, c->buf + n, c->len - n);
  c->len -= n;
}

typedef struct response {
  int status;
  char head[4096];
  char body[8192];
  size_t body_len;
} response;

/* Reads one HTTP response (Content-Length framed). */
static void read_response(client *c, response *r) {
  char *end;
  uint64_t t0 = now_ms();
  for (;;) {
    c->buf[c->len] = 0;
    if (c->len > 0 && (end = strstr(c->buf, "\r\n\r\n")) != NULL) break;
    CHECK(now_ms() - t0 < 3000);
    CHECK(fill(c, 3000) > 0);
  }
  size_t hl = (size_t)(end - c->buf) + 4;
  CHECK(hl < sizeof r->head);
  memcpy(r->head, c->buf, hl);
  r->head[hl] = 0;
  CHECK(sscanf(r->head, "HTTP/1.1 %d", &r->status) == 1);
  const char *cl = strcasestr(r->head, "\r\nContent-Length: ");
  size_t blen = cl ? strtoul(cl + 18, NULL, 10) : 0;
  if (r->status == 100 || r->status == 101) blen = 0;
  CHECK(blen < sizeof r->body);
  while (c->len < hl + blen) CHECK(fill(c, 3000) > 0);
  memcpy(r->body, c->buf + hl, blen);
  r->body[blen] = 0;
  r->body_len = blen;
  consume(c, hl + blen);
}

/* The server closed: EOF (or a reset) arrives within ms, with no more data. */
static int wait_eof(client *c, int ms) {
  uint64_t t0 = now_ms();
  for (;;) {
    int left = ms - (int)(now_ms() - t0);
    if (left <= 0) return 0;
    size_t before = c->len;
    int n = fill(c, left);
    if (n == 0 || n == -2) return 1;
    if (n < 0) return 0;
    c->len = before; /* discard whatever came */
  }
}

static int still_open(client *c, int ms) {
  struct pollfd p = {.fd = c->fd, .events = POLLIN};
  return poll(&p, 1, ms) == 0;
}

/* --- WebSocket client side ------------------------------------------------------- */

static void ws_handshake(client *c) {
  send_str(c,
           "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
  response r;
  read_response(c, &r);
  CHECK(r.status == 101);
  CHECK(strcasestr(r.head, "\r\nUpgrade: websocket\r\n") != NULL);
  CHECK(strstr(r.head, "\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") != NULL);
}

/* A client frame, masked unless masked is 0. */
static void ws_send(client *c, int fin, int opcode, const void *data, size_t len, int masked) {
  uint8_t f[16 + 70000];
  size_t n = 0;
  static const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
  CHECK(len <= 70000);
  f[n++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
  uint8_t m = masked ? 0x80 : 0;
  if (len < 126) {
    f[n++] = (uint8_t)(m | len);
  } else if (len <= 65535) {
    f[n++] = m | 126;
    f[n++] = (uint8_t)(len >> 8);
    f[n++] = (uint8_t)len;
  } else {
    f[n++] = m | 127;
    for (int i = 0; i < 8; i++) f[n++] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
  }
  if (masked) {
    memcpy(f + n, key, 4);
    n += 4;
  }
  for (size_t i = 0; i < len; i++)
    f[n + i] = (uint8_t)(((const uint8_t *)data)[i] ^ (masked ? key[i % 4] : 0));
  send_all(c, f, n + len);
}

typedef struct frame {
  int fin, opcode;
  size_t len;
  char data[70000];
} frame;

/* Reads one server frame (never masked) within 3 s. Returns 0, or -1 when
 * the connection ended first. */
static int ws_recv(client *c, frame *f) {
  for (;;) {
    if (c->len >= 2) {
      const uint8_t *p = (const uint8_t *)c->buf;
      CHECK((p[1] & 0x80) == 0);
      size_t hl = 2, len = p[1] & 0x7f;
      if (len == 126) {
        hl = 4;
        if (c->len >= 4) len = (size_t)p[2] << 8 | p[3];
      } else if (len == 127) {
        hl = 10;
        if (c->len >= 10) {
          len = 0;
          for (int i = 0; i < 8; i++) len = len << 8 | p[2 + i];
        }
      }
      if (c->len >= hl && c->len >= hl + len) {
        f->fin = p[0] >> 7;
        f->opcode = p[0] & 0xf;
        f->len = len;
        CHECK(len < sizeof f->data);
        memcpy(f->data, c->buf + hl, len);
        f->data[len] = 0;
        consume(c, hl + len);
        return 0;
      }
    }
    int n = fill(c, 3000);
    CHECK(n != -1);
    if (n <= 0) return -1;
  }
}

static int close_code(const frame *f) {
  CHECK(f->opcode == 8 && f->len >= 2);
  return (uint8_t)f->data[0] << 8 | (uint8_t)f->data[1];
}

/* --- the tests -------------------------------------------------------------------- */

static eim_net_limits test_limits(void) {
  eim_net_limits lim;
  eim_net_limits_default(&lim);
  lim.max_header_bytes = 8192;
  lim.max_body_bytes = 4096;
  lim.header_timeout_ms = 200;
  lim.keepalive_timeout_ms = 300;
  lim.max_frame_bytes = 1024;
  lim.ws_ping_interval_ms = 100;
  lim.ws_idle_timeout_ms = 400;
  lim.ws_send_queue_bytes = 65536;
  return lim;
}

static void test_keepalive_and_pipelining(void) {
  client *c = connect_client();
  response r;
  send_str(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
  read_response(c, &r);
  CHECK(r.status == 200 && strcmp(r.body, "hello") == 0);
  CHECK(strcasestr(r.head, "Connection: keep-alive") != NULL);
  send_str(c, "POST /echo?x=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nping");
  read_response(c, &r);
  CHECK(r.status == 200 && strcmp(r.body, "ping") == 0);
  CHECK(strstr(r.head, "X-Method: POST\r\n") && strstr(r.head, "X-Query: x=1\r\n"));

  /* Three requests in one packet; the first is answered 100 ms later from a
   * timer (a held connection), yet the answers keep the request order. */
  send_str(c,
           "GET /later HTTP/1.1\r\nHost: t\r\n\r\n"
           "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"
           "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
  read_response(c, &r);
  CHECK(r.status == 200 && strcmp(r.body, "later") == 0);
  read_response(c, &r);
  CHECK(r.status == 200 && strcmp(r.body, "hello") == 0);
  read_response(c, &r);
  CHECK(r.status == 200 && strcmp(r.body, "abc") == 0);

  /* Header names are matched case-insensitively; an empty value is "". */
  send_str(c, "GET /headers HTTP/1.1\r\nHost: t\r\nX-TEST:  spaced value  \r\nX-Empty:\r\n\r\n");
  read_response(c, &r);
  CHECK(strcmp(r.body, "x-test=[spaced value] x-empty=[] peer=127.0.0.1") == 0);

  /* A chunked body is joined; Expect: 100-continue gets its interim answer. */
  send_str(c, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
              "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n");
  read_response(c, &r);
  CHECK(r.status == 200 && strcmp(r.body, "abcdefg") == 0);
  send_str(c, "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
  read_response(c, &r);
  CHECK(r.status == 100);
  send_str(c, "ok");
  read_response(c, &r);
  CHECK(r.status == 200 && strcmp(r.body, "ok") == 0);

  /* Connection: close is honoured. */
  send_str(c, "GET /nothing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  read_response(c, &r);
  CHECK(r.status == 404 && strstr(r.body, "\"not_found\""));
  CHECK(strcasestr(r.head, "Connection: close") != NULL);
  CHECK(wait_eof(c, 2000));
  client_free(c);
  printf("ok keep-alive, pipelining, held answers, chunked, 100-continue, close\n");
}

static void test_limits_and_errors(void) {
  response r;
  /* 413 is decided from Content-Length alone: no body is sent. */
  client *c = connect_client();
  send_str(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n");
  read_response(c, &r);
  CHECK(r.status == 413);
  CHECK(strcmp(r.body, "{\"error\":{\"code\":\"payload_too_large\",\"message\":\"request body too large\"}}") == 0);
  CHECK(wait_eof(c, 2000));
  client_free(c);

  /* A chunked body over the limit. */
  c = connect_client();
  send_str(c, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
  char chunk[2100];
  memset(chunk, 'y', sizeof chunk);
  for (int i = 0; i < 2; i++) {
    send_str(c, "834\r\n"); /* 2100 */
    send_all(c, chunk, sizeof chunk);
    send_str(c, "\r\n");
  }
  read_response(c, &r);
  CHECK(r.status == 413);
  CHECK(wait_eof(c, 2000));
  client_free(c);

  /* 431 for a head over max_header_bytes. */
  c = connect_client();
  static char big[20000];
  memset(big, 'a', sizeof big);
  memcpy(big, "GET /hello HTTP/1.1\r\nX-Big: ", 28);
  send_all(c, big, sizeof big);
  read_response(c, &r);
  CHECK(r.status == 431);
  CHECK(strstr(r.body, "\"code\":\"payload_too_large\"") && strstr(r.body, "header"));
  CHECK(wait_eof(c, 2000));
  client_free(c);

  /* 400 for garbage. */
  c = connect_client();
  send_str(c, "GARBAGE / NONSENSE\r\n\r\n");
  read_response(c, &r);
  CHECK(r.status == 400);
  CHECK(strcmp(r.body, "{\"error\":{\"code\":\"bad_request\",\"message\":\"malformed HTTP request\"}}") == 0);
  CHECK(wait_eof(c, 2000));
  client_free(c);

  /* Slowloris: half a head, then silence: 408 after header_timeout_ms. */
  c = connect_client();
  uint64_t t0 = now_ms();
  send_str(c, "GET /hello HTTP/1.1\r\nHost: t\r\n");
  read_response(c, &r);
  uint64_t waited = now_ms() - t0;
  CHECK(r.status == 408 && strstr(r.body, "\"error\""));
  CHECK(waited >= 190 && waited < 2000);
  CHECK(wait_eof(c, 2000));
  client_free(c);

  /* A connection that never sends a byte is closed silently. */
  c = connect_client();
  CHECK(wait_eof(c, 2000));
  CHECK(c->len == 0);
  client_free(c);

  /* Keep-alive idle timeout. */
  c = connect_client();
  send_str(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
  read_response(c, &r);
  t0 = now_ms();
  CHECK(still_open(c, 150));
  CHECK(wait_eof(c, 2000));
  waited = now_ms() - t0;
  CHECK(waited >= 250 && waited < 3000);
  client_free(c);

  /* The client leaves while its answer is held: the connection is still
   * released once the late answer finds it gone (ASan checks the memory). */
  uint64_t reqs = stats().http_requests_total;
  c = connect_client();
  send_str(c, "GET /later HTTP/1.1\r\nHost: t\r\n\r\n");
  client_free(c);
  uint64_t t1 = now_ms();
  while (stats().http_requests_total == reqs || stats().http_connections != 0) {
    CHECK(now_ms() - t1 < 2000);
    struct pollfd none;
    poll(&none, 0, 5);
  }

  /* An upgrade with an unsupported version is no WebSocket: eim_ws_accept
   * answers 400 itself, and the connection closes after it. */
  c = connect_client();
  send_str(c,
           "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n");
  read_response(c, &r);
  CHECK(r.status == 400 && strstr(r.body, "\"bad_request\""));
  CHECK(wait_eof(c, 2000));
  client_free(c);

  /* A non-WebSocket request to the ws route gets the application's 400. */
  c = connect_client();
  send_str(c, "GET /ws HTTP/1.1\r\nHost: t\r\n\r\n");
  read_response(c, &r);
  CHECK(r.status == 400);
  client_free(c);
  printf("ok 413, 431, 400, 408, idle keep-alive timeout\n");
}

static void test_websocket(void) {
  char key[29];
  eim__ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", key);
  CHECK(strcmp(key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);

  frame *f = malloc(sizeof *f);
  client *c = connect_client();
  ws_handshake(c);
  CHECK(stats().ws_parsers == 0); /* none before the first frame */
  ws_send(c, 1, 1, "hello", 5, 1);
  CHECK(ws_recv(c, f) == 0 && f->opcode == 1 && f->fin && strcmp(f->data, "hello") == 0);
  CHECK(stats().ws_parsers == 1); /* kept while the client sends */

  /* Fragments with a ping between them: a pong and the joined text. */
  ws_send(c, 0, 1, "hel", 3, 1);
  ws_send(c, 1, 9, "p1", 2, 1);
  ws_send(c, 1, 0, "lo w", 4, 1);
  int got_pong = 0, got_text = 0;
  for (int i = 0; i < 2; i++) {
    CHECK(ws_recv(c, f) == 0);
    if (f->opcode == 10) got_pong = strcmp(f->data, "p1") == 0;
    if (f->opcode == 1) got_text = strcmp(f->data, "hello w") == 0;
  }
  CHECK(got_pong && got_text);

  /* Binary, a frame split over two writes, and a 16-bit length. */
  ws_send(c, 1, 2, "\x01\x02\x03", 3, 1);
  CHECK(ws_recv(c, f) == 0 && strcmp(f->data, "binary:3") == 0);
  char mid[600];
  memset(mid, 'm', sizeof mid);
  ws_send(c, 1, 1, mid, sizeof mid, 1);
  CHECK(ws_recv(c, f) == 0 && f->len == sizeof mid && memcmp(f->data, mid, sizeof mid) == 0);

  /* Server pings arrive on a quiet connection; pongs keep it alive past
   * the idle limit. */
  uint64_t t0 = now_ms();
  int pings = 0;
  while (now_ms() - t0 < 700) {
    CHECK(ws_recv(c, f) == 0);
    CHECK(f->opcode == 9);
    pings++;
    ws_send(c, 1, 10, f->data, f->len, 1);
  }
  CHECK(pings >= 3);

  /* The application closes: 1000 "bye", we echo, the socket ends. */
  ws_send(c, 1, 1, "close", 5, 1);
  do CHECK(ws_recv(c, f) == 0); while (f->opcode == 9);
  CHECK(close_code(f) == 1000 && strcmp(f->data + 2, "bye") == 0);
  ws_send(c, 1, 8, "\x03\xe8", 2, 1);
  CHECK(wait_eof(c, 2000));
  CHECK(wait_at_least(&ws_closed, 1, 2000) == 1);
  client_free(c);

  /* A client-initiated close is echoed, then the server closes. */
  c = connect_client();
  ws_handshake(c);
  ws_send(c, 1, 8, "\x03\xe8" "done", 6, 1);
  CHECK(ws_recv(c, f) == 0 && close_code(f) == 1000);
  CHECK(wait_eof(c, 2000));
  CHECK(wait_at_least(&ws_closed, 2, 2000) == 2);
  client_free(c);

  /* Over max_frame_bytes: close 1009, then the socket ends. */
  c = connect_client();
  ws_handshake(c);
  static char large[2000];
  memset(large, 'L', sizeof large);
  ws_send(c, 1, 1, large, sizeof large, 1);
  CHECK(ws_recv(c, f) == 0 && close_code(f) == 1009);
  CHECK(wait_eof(c, 2000));
  CHECK(wait_at_least(&ws_closed, 3, 2000) == 3);
  client_free(c);

  /* Fragments that add up to more than the limit: 1009 as well. */
  c = connect_client();
  ws_handshake(c);
  ws_send(c, 0, 1, large, 600, 1);
  ws_send(c, 1, 0, large, 600, 1);
  CHECK(ws_recv(c, f) == 0 && close_code(f) == 1009);
  CHECK(wait_eof(c, 2000));
  client_free(c);

  /* An unmasked client frame is a protocol error: 1002. */
  c = connect_client();
  ws_handshake(c);
  ws_send(c, 1, 1, "plain", 5, 0);
  CHECK(ws_recv(c, f) == 0 && close_code(f) == 1002);
  CHECK(wait_eof(c, 2000));
  client_free(c);

  /* An upgrade accepted later, from a timer, by a held connection; a frame
   * sent before the 101 arrives waits for it. */
  c = connect_client();
  send_str(c,
           "GET /ws-later HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
  ws_send(c, 1, 1, "delayed", 7, 1);
  {
    response r0;
    read_response(c, &r0);
    CHECK(r0.status == 101);
    CHECK(strstr(r0.head, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != NULL);
  }
  CHECK(ws_recv(c, f) == 0 && strcmp(f->data, "delayed") == 0);
  ws_send(c, 1, 8, "\x03\xe8", 2, 1);
  CHECK(ws_recv(c, f) == 0 && close_code(f) == 1000);
  CHECK(wait_eof(c, 2000));
  client_free(c);

  /* Bytes sent right behind the handshake belong to the WebSocket. */
  c = connect_client();
  send_str(c,
           "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
  ws_send(c, 1, 1, "early", 5, 1);
  response r;
  read_response(c, &r);
  CHECK(r.status == 101);
  CHECK(ws_recv(c, f) == 0 && strcmp(f->data, "early") == 0);

  /* Idle: no answer to pings; closed with 1000 "idle timeout". */
  t0 = now_ms();
  do CHECK(ws_recv(c, f) == 0); while (f->opcode == 9);
  CHECK(close_code(f) == 1000 && strcmp(f->data + 2, "idle timeout") == 0);
  uint64_t waited = now_ms() - t0;
  CHECK(waited >= 350 && waited < 3000);
  CHECK(wait_eof(c, 3000));
  client_free(c);
  CHECK(wait_at_least(&ws_closed, 7, 3000) == 7);

  eim_net_stats st = stats();
  CHECK(st.ws_connections == 0);
  CHECK(st.ws_parsers == 0);
  CHECK(st.ws_messages_in_total >= 6);
  free(f);
  printf("ok websocket: echo, fragments, ping/pong, close both ways, 1009, 1002, idle\n");
}

/* Run with ws_coalesce_ms = COALESCE_MS: events to a connection written to
 * within that time wait for it, in order; a reply takes them along at once. */
#define COALESCE_MS 2000
static void test_coalesce(void) {
  frame *f = malloc(sizeof *f);
  client *c = connect_client();
  ws_handshake(c);
  /* The 101 answer was just written: the events wait for the window. */
  uint64_t t0 = now_ms();
  ws_send(c, 1, 1, "events 3", 8, 1);
  for (int i = 1; i <= 3; i++) {
    char want[16];
    snprintf(want, sizeof want, "event-%d", i);
    CHECK(ws_recv(c, f) == 0 && f->opcode == 1 && strcmp(f->data, want) == 0);
  }
  CHECK(now_ms() - t0 >= COALESCE_MS / 2);
  /* Held events, then a reply: all leave at once, in order. */
  t0 = now_ms();
  ws_send(c, 1, 1, "events 2", 8, 1);
  ws_send(c, 1, 1, "reply", 5, 1);
  CHECK(ws_recv(c, f) == 0 && strcmp(f->data, "event-1") == 0);
  CHECK(ws_recv(c, f) == 0 && strcmp(f->data, "event-2") == 0);
  CHECK(ws_recv(c, f) == 0 && strcmp(f->data, "reply") == 0);
  CHECK(now_ms() - t0 < COALESCE_MS * 3 / 4);
  /* The frame parser stays while the client sends and goes once it has been
   * quiet for EIM__PARSER_KEEP_MS (this server sends no pings). */
  CHECK(stats().ws_parsers == 1);
  t0 = now_ms();
  while (stats().ws_parsers != 0) {
    CHECK(now_ms() - t0 < 5 * EIM__PARSER_KEEP_MS);
    struct timespec nap = {0, 20 * 1000 * 1000};
    nanosleep(&nap, NULL);
  }
  CHECK(now_ms() - t0 >= EIM__PARSER_KEEP_MS / 2);
  /* Closing with events held: the close frame comes after them. */
  ws_send(c, 1, 1, "events 1", 8, 1);
  ws_send(c, 1, 1, "close", 5, 1);
  CHECK(ws_recv(c, f) == 0 && strcmp(f->data, "event-1") == 0);
  CHECK(ws_recv(c, f) == 0 && close_code(f) == 1000);
  ws_send(c, 1, 8, "\x03\xe8", 2, 1);
  CHECK(wait_eof(c, 3000));
  client_free(c);
  /* Events held for a connection that goes away are dropped with it. */
  c = connect_client();
  ws_handshake(c);
  ws_send(c, 1, 1, "events 4", 8, 1);
  ws_send(c, 1, 1, "reply", 5, 1);
  CHECK(ws_recv(c, f) == 0 && strcmp(f->data, "event-1") == 0);
  ws_send(c, 1, 1, "events 9", 8, 1);
  client_free(c);
  free(f);
  printf("ok events coalesced for %d ms on a busy connection, in order, flushed by a reply\n",
         COALESCE_MS);
}

static void test_close_all_and_overflow(void) {
  frame *f = malloc(sizeof *f);
  int base = wait_at_least(&ws_closed, 0, 0);
  client *cs[3];
  for (int i = 0; i < 3; i++) {
    cs[i] = connect_client();
    ws_handshake(cs[i]);
  }
  CHECK(wait_at_least(&ws_open_now, 3, 2000) == 3);
  close_all_arg a = {1001, "shutting down"};
  on_loop(do_close_all, &a);
  for (int i = 0; i < 3; i++) {
    CHECK(ws_recv(cs[i], f) == 0 && close_code(f) == 1001);
    CHECK(strcmp(f->data + 2, "shutting down") == 0);
    if (i < 2) ws_send(cs[i], 1, 8, "\x03\xe9", 2, 1); /* the third never answers */
  }
  uint64_t t0 = now_ms();
  CHECK(wait_eof(cs[0], 2000) && wait_eof(cs[1], 2000));
  CHECK(now_ms() - t0 < 900);
  CHECK(wait_eof(cs[2], 3000)); /* after the grace period */
  CHECK(wait_at_least(&ws_closed, base + 3, 3000) == base + 3);
  for (int i = 0; i < 3; i++) client_free(cs[i]);

  /* A client that does not read: the server's queue stops at the limit. */
  client *c = connect_client();
  ws_handshake(c);
  ws_send(c, 1, 1, "flood", 5, 1);
  CHECK(wait_at_least(&flood_result, 0, 5000) >= 0);
  CHECK(wait_at_least(&ws_closed, base + 4, 3000) == base + 4);
  eim_net_stats st = stats();
  CHECK(st.ws_closed_slow_total == 1);
  CHECK(st.ws_connections == 0);
  /* Draining what the kernel holds ends in EOF or a reset. */
  int ended = 0;
  for (int i = 0; i < 100000 && !ended; i++) {
    c->len = 0;
    int n = fill(c, 3000);
    CHECK(n != -1);
    ended = n <= 0;
  }
  CHECK(ended);
  client_free(c);
  free(f);
  printf("ok close_all_ws 1001 with grace, send queue overflow (%d messages of 16 KiB queued)\n",
         flood_result);
}

/* Random bytes (fixed seed) after a valid prefix, on HTTP and on open
 * WebSockets: whatever the server answers, it must not crash or leak and
 * must keep serving. */
static void test_garbage(void) {
  srand(12345);
  static const char *prefixes[] = {"", "GET / HTTP/1.1\r\n", "POST /echo HTTP/1.1\r\nContent-Length: 5\r\n",
                                   "GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"};
  char junk[3000];
  for (int round = 0; round < 120; round++) {
    client *c = connect_client();
    int ws = round % 3 == 0;
    if (ws) ws_handshake(c);
    else send_str(c, prefixes[round % 4]);
    size_t n = (size_t)(rand() % (int)sizeof junk);
    for (size_t i = 0; i < n; i++) junk[i] = (char)(rand() % 256);
    send(c->fd, junk, n, MSG_NOSIGNAL);
    if (round % 2 == 0) shutdown(c->fd, SHUT_WR);
    client_free(c);
  }
  client *c = connect_client();
  response r;
  send_str(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
  read_response(c, &r);
  CHECK(r.status == 200);
  client_free(c);
  printf("ok garbage input\n");
}

static void test_connection_limits(void) {
  response r;
  client *a = connect_client(), *b = connect_client();
  send_str(a, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
  read_response(a, &r);
  send_str(b, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
  read_response(b, &r);
  client *c = connect_client();
  read_response(c, &r);
  CHECK(r.status == 503 && strstr(r.body, "\"code\":\"unavailable\""));
  CHECK(wait_eof(c, 2000));
  client_free(c);
  eim_net_stats st = stats();
  CHECK(st.refused_total == 1 && st.http_connections == 2);
  client_free(a);
  /* Once one leaves, a newcomer is served. */
  for (int i = 0; i < 200 && stats().http_connections != 1; i++) {
    struct pollfd none;
    poll(&none, 0, 10);
  }
  c = connect_client();
  send_str(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
  read_response(c, &r);
  CHECK(r.status == 200);
  client_free(c);
  client_free(b);
  printf("ok connection limit: 503 and recovery\n");
}

static void test_stop_accepting(void) {
  response r;
  client *idle = connect_client();
  send_str(idle, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
  read_response(idle, &r);
  client *busy = connect_client();
  send_str(busy, "GET /later HTTP/1.1\r\nHost: t\r\n\r\n");
  client *ws = connect_client();
  ws_handshake(ws);
  CHECK(wait_at_least(&ws_open_now, 1, 2000) == 1);
  /* The request must be in the server before stopping. */
  for (int i = 0; i < 200 && stats().http_requests_total < 2; i++) {
    struct pollfd none;
    poll(&none, 0, 5);
  }
  on_loop(do_stop_accepting, NULL);
  CHECK(wait_eof(idle, 2000));
  read_response(busy, &r);
  CHECK(r.status == 200 && strcmp(r.body, "later") == 0);
  CHECK(strcasestr(r.head, "Connection: close") != NULL);
  CHECK(wait_eof(busy, 2000));
  /* The listener is gone. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0);
  close(fd);
  client_free(idle);
  client_free(busy);
  /* eim_net_close with a WebSocket still open: on_ws_close still runs. */
  server_stop();
  CHECK(wait_eof(ws, 2000));
  client_free(ws);
  printf("ok stop_accepting and close with open connections\n");
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  CHECK(uv_loop_init(&loop) == 0);
  CHECK(uv_async_init(&loop, &wake, on_wake) == 0);
  CHECK(pthread_create(&loop_thread, NULL, loop_main, NULL) == 0);

  eim_net_limits lim = test_limits();
  server_start(&lim);
  test_keepalive_and_pipelining();
  test_limits_and_errors();
  test_websocket();
  test_close_all_and_overflow();
  test_garbage();
  server_stop();

  lim = test_limits();
  lim.ws_coalesce_ms = COALESCE_MS;
  /* No pings (a ping would take held events along) nor idle closes. */
  lim.ws_ping_interval_ms = lim.ws_idle_timeout_ms = 60000;
  server_start(&lim);
  test_coalesce();
  server_stop();

  lim = test_limits();
  lim.max_connections_per_ip = 2;
  server_start(&lim);
  test_connection_limits();
  server_stop();

  lim = test_limits();
  lim.max_connections = 2;
  server_start(&lim);
  test_connection_limits();
  server_stop();

  lim = test_limits();
  server_start(&lim);
  test_stop_accepting();

  on_loop(do_close_wake, NULL);
  CHECK(pthread_join(loop_thread, NULL) == 0);
  CHECK(uv_loop_close(&loop) == 0);
  printf("all transport tests passed\n");
  return 0;
}
