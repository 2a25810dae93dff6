/* The WebSocket client connection: TCP from one of several loopback source
 * addresses, the HTTP upgrade read by hand, and frames through wslay in
 * client mode (which masks what it sends and answers pings). */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "lg.h"

#define HS_MAX 4096
static char rbuf[256 * 1024]; /* one read at a time: the loop is single-threaded */
static uint64_t mask_state = 0x9e3779b97f4a7c15u;

static void conn_closed(uv_handle_t *h) {
  lg_conn *c = h->data;
  if (c->ws) wslay_event_context_free(c->ws);
  c->ws = NULL;
  free(c->hbuf);
  free(c->ob);
  c->hbuf = NULL;
  c->ob = NULL;
  c->hlen = c->on = c->ocap = c->wpending = 0;
  enum lg_conn_state st = c->state;
  c->state = LG_IDLE;
  c->was_open = st == LG_OPEN || st == LG_CLOSING;
  if (!c->was_open) {
    int err = c->http_status ? LG_EHANDSHAKE : c->err ? c->err : UV_ECONNRESET;
    c->cbs->on_open(c, err);
  }
  if (c->cbs->on_close) c->cbs->on_close(c);
}

/* Ends the connection; a handshake that had not finished reports failure
 * through on_open first (from conn_closed). */
static void conn_end(lg_conn *c) {
  if (uv_is_closing((uv_handle_t *)&c->tcp)) return;
  if (c->state == LG_OPEN) c->state = LG_CLOSING;
  uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

void lg_conn_abort(lg_conn *c) {
  if (c->state == LG_IDLE) return;
  conn_end(c);
}

/* --- output ----------------------------------------------------------------- */

typedef struct wreq {
  uv_write_t req;
  lg_conn *c;
  size_t n;
  char data[];
} wreq;

static void write_done(uv_write_t *req, int status) {
  wreq *w = (wreq *)req;
  w->c->wpending -= w->n;
  if (status != 0 && status != UV_ECANCELED) conn_end(w->c);
  free(w);
}

static void flush(lg_conn *c) {
  if (c->on == 0 || uv_is_closing((uv_handle_t *)&c->tcp)) return;
  size_t off = 0;
  if (c->wpending == 0) {
    uv_buf_t b = uv_buf_init(c->ob, (unsigned)c->on);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n > 0) off = (size_t)n;
    else if (n != UV_EAGAIN) {
      conn_end(c);
      return;
    }
  }
  if (off < c->on) {
    size_t n = c->on - off;
    wreq *w = malloc(sizeof *w + n);
    if (w == NULL) lg_die("out of memory");
    memcpy(w->data, c->ob + off, n);
    w->c = c;
    w->n = n;
    c->wpending += n;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, write_done) != 0) {
      c->wpending -= n;
      free(w);
      conn_end(c);
    }
  }
  c->on = 0;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                          void *ud) {
  (void)ctx;
  (void)flags;
  lg_conn *c = ud;
  if (c->on + len > c->ocap) {
    size_t cap = c->ocap ? c->ocap : 4096;
    while (cap < c->on + len) cap *= 2;
    char *nb = realloc(c->ob, cap);
    if (nb == NULL) lg_die("out of memory");
    c->ob = nb;
    c->ocap = cap;
  }
  memcpy(c->ob + c->on, data, len);
  c->on += len;
  return (ssize_t)len;
}

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                          void *ud) {
  (void)flags;
  lg_conn *c = ud;
  if (c->rn == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  size_t n = len < c->rn ? len : c->rn;
  memcpy(buf, c->rp, n);
  c->rp += n;
  c->rn -= n;
  return (ssize_t)n;
}

static int ws_genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *ud) {
  (void)ctx;
  (void)ud;
  for (size_t i = 0; i < len; i++) {
    mask_state ^= mask_state << 13;
    mask_state ^= mask_state >> 7;
    mask_state ^= mask_state << 17;
    buf[i] = (uint8_t)mask_state;
  }
  return 0;
}

static void ws_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
                      void *ud) {
  (void)ctx;
  lg_conn *c = ud;
  if (a->opcode == WSLAY_TEXT_FRAME || a->opcode == WSLAY_BINARY_FRAME) {
    lg_last_msg_ns = lg_now_ns();
    c->cbs->on_msg(c, (const char *)a->msg, a->msg_length);
  } else if (a->opcode == WSLAY_CONNECTION_CLOSE) {
    c->close_code = a->status_code ? a->status_code : 1005;
  }
}

static const struct wslay_event_callbacks ws_cbs = {
    ws_recv_cb, ws_send_cb, ws_genmask_cb, NULL, NULL, NULL, ws_msg_cb};

int lg_conn_send(lg_conn *c, const char *p, size_t n) {
  if (c->state != LG_OPEN) return -1;
  struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)p, n};
  if (wslay_event_queue_msg(c->ws, &m) != 0) return -1;
  if (wslay_event_send(c->ws) != 0) {
    conn_end(c);
    return -1;
  }
  flush(c);
  return 0;
}

/* --- input ------------------------------------------------------------------ */

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)h;
  (void)hint;
  *b = uv_buf_init(rbuf, sizeof rbuf);
}

static void feed_ws(lg_conn *c, const uint8_t *p, size_t n) {
  c->rp = p;
  c->rn = n;
  if (wslay_event_recv(c->ws) != 0) {
    conn_end(c);
    return;
  }
  if (c->state == LG_IDLE || uv_is_closing((uv_handle_t *)&c->tcp)) return;
  if (wslay_event_want_write(c->ws) && wslay_event_send(c->ws) != 0) {
    conn_end(c);
    return;
  }
  flush(c);
  if (c->close_code && !wslay_event_want_write(c->ws)) conn_end(c);
}

/* Reads the upgrade response; on 101 the rest of the input is frames, and
 * the server may well have sent some in the same read. */
static void feed_handshake(lg_conn *c, const char *p, size_t n) {
  if (c->hbuf == NULL && (c->hbuf = malloc(HS_MAX + 1)) == NULL) lg_die("out of memory");
  size_t old = c->hlen, take = n < HS_MAX - old ? n : HS_MAX - old;
  memcpy(c->hbuf + old, p, take);
  c->hlen += take;
  c->hbuf[c->hlen] = 0;
  char *end = strstr(c->hbuf, "\r\n\r\n");
  if (end == NULL) {
    if (c->hlen == HS_MAX) {
      c->err = LG_EPROTO;
      conn_end(c);
    }
    return;
  }
  size_t used = (size_t)(end + 4 - c->hbuf) - old; /* bytes of p in the header */
  if (sscanf(c->hbuf, "HTTP/1.1 %d", &c->http_status) != 1 || c->http_status != 101) {
    if (c->http_status == 0) c->http_status = -1;
    snprintf(c->why, sizeof c->why, "%s", end + 4);
    conn_end(c);
    return;
  }
  struct wslay_event_callbacks cbs = ws_cbs;
  if (wslay_event_context_client_init(&c->ws, &cbs, c) != 0) lg_die("out of memory");
  wslay_event_config_set_max_recv_msg_length(c->ws, 16u << 20);
  free(c->hbuf);
  c->hbuf = NULL;
  c->hlen = 0;
  c->state = LG_OPEN;
  c->cbs->on_open(c, 0);
  /* p stays valid: it is the read buffer, and nothing reads meanwhile. */
  if (used < n && c->state == LG_OPEN) feed_ws(c, (const uint8_t *)p + used, n - used);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  lg_conn *c = s->data;
  if (n < 0) {
    if (n == UV_EOF) c->got_eof = 1;
    if (!c->err) c->err = (int)n;
    conn_end(c);
    return;
  }
  if (n == 0) return;
  if (c->state == LG_UPGRADING) feed_handshake(c, b->base, (size_t)n);
  else if (c->state == LG_OPEN || c->state == LG_CLOSING) feed_ws(c, (const uint8_t *)b->base, (size_t)n);
}

static void connect_cb(uv_connect_t *req, int status) {
  lg_conn *c = req->data;
  if (status != 0) {
    if (!c->err) c->err = status;
    conn_end(c);
    return;
  }
  char req_text[4096];
  int n;
  if (lg_o.peer == LG_PEER_CENTRIFUGO)
    n = snprintf(req_text, sizeof req_text,
                 "GET /connection/websocket HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
                 lg_o.host, c->port ? c->port : lg_o.port);
  else
    n = snprintf(req_text, sizeof req_text,
                 "GET /ws?token=%s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
                 c->token, lg_o.host, c->port ? c->port : lg_o.port);
  if (n <= 0 || (size_t)n >= sizeof req_text) lg_die("token too long");
  c->state = LG_UPGRADING;
  if (ws_send_cb(NULL, (const uint8_t *)req_text, (size_t)n, 0, c) < 0) lg_die("out of memory");
  flush(c);
  if (!uv_is_closing((uv_handle_t *)&c->tcp) && !c->paused)
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

void lg_conn_init(lg_conn *c, const lg_conn_cbs *cbs, long idx) {
  memset(c, 0, sizeof *c);
  c->cbs = cbs;
  c->idx = idx;
}

int lg_conn_open(lg_conn *c, const char *token) {
  if (c->state != LG_IDLE) return -1;
  c->token = token;
  c->http_status = 0;
  c->why[0] = 0;
  c->close_code = 0;
  c->got_eof = 0;
  c->paused = 0;
  c->t_start = lg_now_ns();
  c->err = 0;
  c->was_open = 0;
  int rc = uv_tcp_init(lg_loop, &c->tcp);
  if (rc != 0) lg_die("uv_tcp_init: %s", uv_strerror(rc));
  c->tcp.data = c;
  c->creq.data = c;
  c->state = LG_CONNECTING;
  struct sockaddr_in src, dst;
  char ip[32];
  /* Source addresses 127.0.0.2.. each have their own ephemeral ports. */
  snprintf(ip, sizeof ip, "127.0.0.%ld", 2 + c->idx % (lg_o.sources > 0 ? lg_o.sources : 1));
  uv_ip4_addr(ip, 0, &src);
  uv_ip4_addr(lg_o.host, c->port ? c->port : lg_o.port, &dst);
  if ((rc = uv_tcp_bind(&c->tcp, (const struct sockaddr *)&src, 0)) == 0) {
    uv_os_fd_t fd;
    if (c->rcvbuf > 0 && uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
      uv_recv_buffer_size((uv_handle_t *)&c->tcp, &c->rcvbuf);
    uv_tcp_nodelay(&c->tcp, 1);
    rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&dst, connect_cb);
  }
  if (rc != 0) {
    c->err = rc;
    conn_end(c);
  }
  return 0;
}

void lg_conn_sweep(lg_conn *cs, long n, double timeout_s) {
  uint64_t now = lg_now_ns(), limit = (uint64_t)(timeout_s * 1e9);
  for (long i = 0; i < n; i++) {
    lg_conn *c = &cs[i];
    int waiting = c->state == LG_CONNECTING || c->state == LG_UPGRADING ||
                  (c->state == LG_OPEN && !c->ready);
    if (waiting && now - c->t_start > limit) {
      c->err = UV_ETIMEDOUT;
      conn_end(c);
    }
  }
}

void lg_conn_pause(lg_conn *c) {
  c->paused = 1;
  if (c->state != LG_IDLE && !uv_is_closing((uv_handle_t *)&c->tcp))
    uv_read_stop((uv_stream_t *)&c->tcp);
}

void lg_conn_resume(lg_conn *c) {
  c->paused = 0;
  if (c->state != LG_IDLE && !uv_is_closing((uv_handle_t *)&c->tcp))
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}
