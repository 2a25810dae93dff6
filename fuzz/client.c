#include "client.h"

#include <stdlib.h>
#include <string.h>

typedef struct wreq {
  uv_write_t req;
  char data[];
} wreq;

static void on_timer(uv_timer_t *t) {
  eim_fz_client *c = t->data;
  c->timed_out = 1;
}

void eim_fz_init(eim_fz_client *c, uv_loop_t *loop) {
  memset(c, 0, sizeof *c);
  c->loop = loop;
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  eim_fz_client *c = h->data;
  (void)suggested;
  if (c->in_cap - c->in_len < 65536) {
    size_t cap = c->in_cap ? c->in_cap * 2 : 131072;
    char *p = realloc(c->in, cap);
    if (p == NULL) abort();
    c->in = p;
    c->in_cap = cap;
  }
  *buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  eim_fz_client *c = s->data;
  (void)buf;
  if (n > 0) {
    c->in_len += (size_t)n;
  } else if (n < 0) {
    c->eof = 1;
    uv_read_stop(s);
  }
}

static void on_connect(uv_connect_t *req, int status) {
  eim_fz_client *c = req->data;
  free(req);
  if (c->closing) return;
  if (status < 0) {
    c->connected = status;
    return;
  }
  c->connected = 1;
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) c->eof = 1;
}

static int wait_connected(eim_fz_client *c, void *arg) {
  (void)arg;
  return c->connected != 0;
}

int eim_fz_connect_start(eim_fz_client *c, int port) {
  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", port, &sa);
  c->in_len = 0;
  c->connected = c->eof = c->closing = 0;
  int r = uv_tcp_init(c->loop, &c->tcp);
  if (r != 0) return r;
  c->open = 1;
  c->tcp.data = c;
  uv_connect_t *req = malloc(sizeof *req);
  if (req == NULL) return UV_ENOMEM;
  req->data = c;
  r = uv_tcp_connect(req, &c->tcp, (const struct sockaddr *)&sa, on_connect);
  if (r != 0) free(req);
  return r;
}

int eim_fz_connect(eim_fz_client *c, int port, uint64_t timeout_ms) {
  int r = eim_fz_connect_start(c, port);
  if (r != 0) return r;
  if (eim_fz_wait(c, wait_connected, NULL, timeout_ms) != 1) return UV_ETIMEDOUT;
  return c->connected == 1 ? 0 : c->connected;
}

static void on_write(uv_write_t *req, int status) {
  (void)status;
  free(req);
}

int eim_fz_write(eim_fz_client *c, const void *data, size_t len) {
  if (!c->open || c->closing) return UV_EPIPE;
  wreq *w = malloc(sizeof *w + len);
  if (w == NULL) return UV_ENOMEM;
  memcpy(w->data, data, len);
  uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
  int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
  if (r != 0) free(w);
  return r;
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  free(req);
}

int eim_fz_shutdown(eim_fz_client *c) {
  if (!c->open || c->closing) return UV_EPIPE;
  uv_shutdown_t *req = malloc(sizeof *req);
  if (req == NULL) return UV_ENOMEM;
  int r = uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown);
  if (r != 0) free(req);
  return r;
}

int eim_fz_wait(eim_fz_client *c, int (*done)(eim_fz_client *c, void *arg), void *arg,
                uint64_t timeout_ms) {
  c->timed_out = 0;
  uv_update_time(c->loop);
  uv_timer_start(&c->timer, on_timer, timeout_ms, 0);
  int rc;
  for (;;) {
    if (done != NULL && done(c, arg)) {
      rc = 1;
      break;
    }
    if (c->eof || (c->connected < 0)) {
      rc = 0;
      break;
    }
    if (c->timed_out) {
      rc = -1;
      break;
    }
    uv_run(c->loop, UV_RUN_ONCE);
  }
  uv_timer_stop(&c->timer);
  return rc;
}

static void on_closed(uv_handle_t *h) {
  eim_fz_client *c = h->data;
  c->open = 0;
}

void eim_fz_close(eim_fz_client *c) {
  if (c->open && !c->closing) {
    c->closing = 1;
    /* A reset needs a connected socket; otherwise a plain close. */
    if (c->connected != 1 || uv_tcp_close_reset(&c->tcp, on_closed) != 0)
      uv_close((uv_handle_t *)&c->tcp, on_closed);
  }
  while (c->open) uv_run(c->loop, UV_RUN_ONCE);
  c->in_len = 0;
  c->connected = c->eof = c->closing = 0;
}

void eim_fz_consume(eim_fz_client *c, size_t n) {
  if (n > c->in_len) n = c->in_len;
  memmove(c->in, c->in + n, c->in_len - n);
  c->in_len -= n;
}
