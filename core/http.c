/*
 * The listener, the connections and HTTP/1.1 (llhttp). WebSocket sessions
 * are in ws.c. See net.h for the contract and net_internal.h for the memory
 * model.
 *
 * One request at a time: when llhttp completes a request, the parser is
 * paused, reading stops and the bytes already read after it (pipelined
 * requests) wait in a buffer. Parsing resumes once the answer is written to
 * the kernel, so pipelined requests are answered in order and a client that
 * does not read its answers stops being read.
 *
 * Chunked request bodies are supported; their total is held to
 * max_body_bytes like a Content-Length body. header_timeout_ms bounds the
 * time from the first byte of a request (or from the accept) to its last
 * byte, headers and body, so a slow body is cut off like slow headers.
 */
#include "log.h"
#include "net_internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

struct eim__http {
  llhttp_t parser;
  eim__link rlink;          /* in net->resume while a resume is due */
  char *head;               /* url\0 then name\0value\0 per header */
  size_t hlen, hcap;
  size_t vstart;            /* offset of the header value being read */
  size_t nheaders;
  size_t raw;               /* bytes of the current request head read */
  char *body;
  size_t blen, bcap;
  char *pend;               /* read but unparsed: the next requests */
  size_t plen, poff;
  int limit_status;         /* 413 or 431 when a limit stopped the parser */
  unsigned started : 1, head_done : 1, paused : 1, upgrade : 1;
};

static const char *status_text(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

void eim_net_limits_default(eim_net_limits *lim) {
  lim->max_header_bytes = 16384;
  lim->max_body_bytes = 65536;
  lim->header_timeout_ms = 10000;
  lim->keepalive_timeout_ms = 60000;
  lim->max_frame_bytes = 65536;
  lim->ws_ping_interval_ms = 30000;
  lim->ws_idle_timeout_ms = 90000;
  lim->ws_send_queue_bytes = 4u << 20;
  lim->ws_coalesce_ms = 0;
  lim->max_connections = 20000;
  lim->max_connections_per_ip = 0;
}

/* --- peer addresses ------------------------------------------------------ */

static size_t ip_hash(const char *s) {
  size_t h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

static int ip_grow(eim_net *net) {
  size_t n = net->nips_buckets ? net->nips_buckets * 2 : 256;
  eim__ip **b = calloc(n, sizeof *b);
  if (b == NULL) return UV_ENOMEM;
  for (size_t i = 0; i < net->nips_buckets; i++) {
    while (net->ips[i] != NULL) {
      eim__ip *e = net->ips[i];
      net->ips[i] = e->next;
      size_t k = ip_hash(e->addr) & (n - 1);
      e->next = b[k];
      b[k] = e;
    }
  }
  free(net->ips);
  net->ips = b;
  net->nips_buckets = n;
  return 0;
}

/* Returns the entry of addr, created with count 0 when new; NULL without
 * memory. */
static eim__ip *ip_get(eim_net *net, const char *addr) {
  if (net->nips >= net->nips_buckets * 2 && ip_grow(net) != 0 && net->nips_buckets == 0)
    return NULL;
  size_t k = ip_hash(addr) & (net->nips_buckets - 1);
  for (eim__ip *e = net->ips[k]; e != NULL; e = e->next)
    if (strcmp(e->addr, addr) == 0) return e;
  eim__ip *e = calloc(1, sizeof *e);
  if (e == NULL) return NULL;
  snprintf(e->addr, sizeof e->addr, "%s", addr);
  e->tokens = 2.0 * net->lim.new_connections_per_ip_per_sec;
  e->at = uv_now(net->loop);
  e->next = net->ips[k];
  net->ips[k] = e;
  net->nips++;
  return e;
}

/* The new-connection bucket of e, refilled up to now. */
static double ip_tokens(const eim_net *net, const eim__ip *e, uint64_t now) {
  double rate = net->lim.new_connections_per_ip_per_sec, burst = 2 * rate;
  double t = e->tokens + (double)(now - e->at) * rate / 1000.0;
  return t > burst ? burst : t;
}

/* Drops e from the table once no connection uses it and its new-connection
 * bucket is full again (until then it remembers the address's rate). */
static void ip_put(eim_net *net, eim__ip *e) {
  if (e == NULL || e->count > 0) return;
  unsigned rate = net->lim.new_connections_per_ip_per_sec;
  if (rate > 0 && ip_tokens(net, e, uv_now(net->loop)) < 2.0 * rate) return;
  eim__ip **pp = &net->ips[ip_hash(e->addr) & (net->nips_buckets - 1)];
  while (*pp != e) pp = &(*pp)->next;
  *pp = e->next;
  free(e);
  net->nips--;
}

/* Forgets idle addresses whose bucket has refilled. */
static void ip_sweep(eim_net *net) {
  if (net->lim.new_connections_per_ip_per_sec == 0) return;
  for (size_t i = 0; i < net->nips_buckets; i++) {
    eim__ip *e = net->ips[i];
    while (e != NULL) {
      eim__ip *next = e->next;
      ip_put(net, e);
      e = next;
    }
  }
}

/* Takes one new-connection token for e; 0 when the address is over its
 * rate. */
static int ip_admit(eim_net *net, eim__ip *e) {
  unsigned rate = net->lim.new_connections_per_ip_per_sec;
  if (rate == 0) return 1;
  uint64_t now = uv_now(net->loop);
  e->tokens = ip_tokens(net, e, now);
  e->at = now;
  if (e->tokens < 1.0) return 0;
  e->tokens -= 1.0;
  return 1;
}

/* --- handles and lists ---------------------------------------------------- */

static void net_handle_closed(eim_net *net) {
  if (--net->handles > 0 || !net->closing) return;
  void (*done)(void *) = net->done;
  void *arg = net->done_arg;
  for (size_t i = 0; i < net->nips_buckets; i++) {
    while (net->ips[i] != NULL) {
      eim__ip *e = net->ips[i];
      net->ips[i] = e->next;
      free(e);
    }
  }
  free(net->ips);
  free(net->dirty.v);
  free(net->held.v);
  free(net);
  if (done != NULL) done(arg);
}

static void on_handle_closed(uv_handle_t *h) {
  eim_net *net = h->data;
  net_handle_closed(net);
}

void eim__conn_set_list(eim_http_conn *c, int list) {
  eim__list_remove(&c->link);
  c->mark = uv_now(c->net->loop);
  c->list = (uint8_t)list;
  eim__list_push(&c->net->lists[list], &c->link);
}

static void http_free(eim_http_conn *c) {
  eim__http *h = c->http;
  if (h == NULL) return;
  eim__list_remove(&h->rlink);
  free(h->head);
  free(h->body);
  free(h->pend);
  free(h);
  c->http = NULL;
}

static void conn_unref(eim_http_conn *c) {
  if (--c->refs == 0) free(c);
}

static void on_conn_closed(uv_handle_t *handle) {
  eim_http_conn *c = (eim_http_conn *)handle;
  eim_net *net = c->net;
  if (c->flags & EIM__F_WS) eim__ws_on_closed(c);
  http_free(c);
  free(c->obuf);
  c->obuf = NULL;
  c->olen = c->ocap = 0;
  if (c->ip != NULL) {
    c->ip->count--;
    ip_put(net, c->ip);
    c->ip = NULL;
    net->stats.http_connections--;
  }
  conn_unref(c);
  net_handle_closed(net);
}

void eim__conn_close(eim_http_conn *c) {
  if (c->flags & EIM__F_CLOSED) return;
  c->flags |= EIM__F_CLOSED;
  eim__list_remove(&c->link);
  if (c->http != NULL) eim__list_remove(&c->http->rlink);
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

/* --- reading --------------------------------------------------------------- */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  eim_http_conn *c = (eim_http_conn *)handle;
  /* libuv calls read_cb right after alloc_cb, and every read_cb consumes or
   * copies what it got, so one buffer serves all connections. */
  *buf = uv_buf_init(c->net->rbuf, sizeof c->net->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void read_start(eim_http_conn *c) {
  if (c->flags & (EIM__F_READING | EIM__F_CLOSED | EIM__F_EOF)) return;
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
    eim__conn_close(c);
    return;
  }
  c->flags |= EIM__F_READING;
}

static void read_stop(eim_http_conn *c) {
  if (!(c->flags & EIM__F_READING)) return;
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->flags &= ~(uint32_t)EIM__F_READING;
}

/* --- writing ---------------------------------------------------------------- */

typedef struct eim__wreq {
  uv_write_t req;
  char *base;
} eim__wreq;

size_t eim__conn_queued(const eim_http_conn *c) { return c->olen + c->inflight; }

static void conn_drained(eim_http_conn *c);
static void schedule_resume(eim_http_conn *c);

static void on_write(uv_write_t *req, int status) {
  eim__wreq *w = (eim__wreq *)req;
  eim_http_conn *c = (eim_http_conn *)req->handle;
  free(w->base);
  free(w);
  c->inflight = 0;
  if (c->flags & EIM__F_CLOSED) return;
  if (status < 0) {
    eim__conn_close(c);
    return;
  }
  if (c->olen > 0)
    eim__conn_flush(c);
  else
    conn_drained(c);
}

/* Hands obuf from offset off to libuv; the write request owns it after. */
static void submit(eim_http_conn *c, size_t off) {
  eim__wreq *w = malloc(sizeof *w);
  if (w == NULL) {
    eim__conn_close(c);
    return;
  }
  w->base = c->obuf;
  uv_buf_t b = uv_buf_init(c->obuf + off, (unsigned)(c->olen - off));
  c->inflight = c->olen - off;
  c->obuf = NULL;
  c->olen = c->ocap = 0;
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
    free(w->base);
    free(w);
    c->inflight = 0;
    eim__conn_close(c);
  }
}

int eim__conn_append(eim_http_conn *c, const void *data, size_t len) {
  if (c->flags & EIM__F_CLOSED) return UV_EPIPE;
  if (c->olen + len > c->ocap) {
    size_t cap = c->ocap ? c->ocap : 256;
    while (cap < c->olen + len) cap *= 2;
    char *p = realloc(c->obuf, cap);
    if (p == NULL) {
      eim__conn_close(c);
      return UV_ENOMEM;
    }
    c->obuf = p;
    c->ocap = cap;
  }
  memcpy(c->obuf + c->olen, data, len);
  c->olen += len;
  return 0;
}

void eim__conn_flush(eim_http_conn *c) {
  if ((c->flags & EIM__F_CLOSED) || c->inflight > 0 || c->olen == 0) return;
  c->last_write = uv_now(c->net->loop);
  uv_buf_t b = uv_buf_init(c->obuf, (unsigned)c->olen);
  int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (n == UV_EAGAIN) n = 0;
  if (n < 0) {
    eim__conn_close(c);
    return;
  }
  if ((size_t)n < c->olen) {
    submit(c, (size_t)n);
    return;
  }
  free(c->obuf);
  c->obuf = NULL;
  c->olen = c->ocap = 0;
  conn_drained(c);
}

int eim__conn_write(eim_http_conn *c, const uv_buf_t *bufs, unsigned nbufs) {
  if (c->flags & EIM__F_CLOSED) return UV_EPIPE;
  size_t done = 0;
  if (c->inflight == 0 && c->olen == 0) {
    c->last_write = uv_now(c->net->loop);
    int n = uv_try_write((uv_stream_t *)&c->tcp, bufs, nbufs);
    if (n == UV_EAGAIN) n = 0;
    if (n < 0) {
      eim__conn_close(c);
      return n;
    }
    done = (size_t)n;
  }
  size_t total = 0;
  for (unsigned i = 0; i < nbufs; i++) total += bufs[i].len;
  if (done == total) {
    if (c->inflight == 0 && c->olen == 0) conn_drained(c);
    return 0;
  }
  for (unsigned i = 0; i < nbufs; i++) {
    size_t len = bufs[i].len;
    if (done >= len) {
      done -= len;
      continue;
    }
    int r = eim__conn_append(c, bufs[i].base + done, len - done);
    if (r < 0) return r;
    done = 0;
  }
  if (c->inflight == 0) submit(c, 0);
  return (c->flags & EIM__F_CLOSED) ? UV_EPIPE : 0;
}

static void on_kick(uv_idle_t *idle);
static void on_coalesce(uv_timer_t *t);

/* Adds c to l, marked with flag and holding a reference. Returns 0, or -1
 * when out of memory. */
static int flush_list_add(eim__flush_list *l, eim_http_conn *c, uint32_t flag) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    eim_http_conn **v = realloc(l->v, cap * sizeof *v);
    if (v == NULL) return -1;
    l->v = v;
    l->cap = cap;
  }
  c->flags |= flag;
  c->refs++;
  l->v[l->n++] = c;
  return 0;
}

/* Flushes and releases the connections of l. Flushing can add connections
 * to l again (a drained HTTP answer resumes parsing): those stay for the
 * next run. The array is kept for reuse. */
static void flush_list_run(eim__flush_list *l, uint32_t flag) {
  eim__flush_list taken = *l;
  *l = (eim__flush_list){NULL, 0, 0};
  for (size_t i = 0; i < taken.n; i++) {
    taken.v[i]->flags &= ~flag;
    eim__conn_flush(taken.v[i]);
    conn_unref(taken.v[i]);
  }
  if (l->v == NULL)
    *l = (eim__flush_list){taken.v, 0, taken.cap};
  else
    free(taken.v);
}

/* Releases the connections of l without flushing them (the net closes). */
static void flush_list_drop(eim__flush_list *l, uint32_t flag) {
  for (size_t i = 0; i < l->n; i++) {
    l->v[i]->flags &= ~flag;
    conn_unref(l->v[i]);
  }
  l->n = 0;
}

/* Appends bufs to c's output. Returns 1 when they are to wait for a flush,
 * 0 when they were flushed already (a big batch gains nothing by waiting),
 * or a negative libuv error. */
static int conn_append_bufs(eim_http_conn *c, const uv_buf_t *bufs, unsigned nbufs) {
  for (unsigned i = 0; i < nbufs; i++) {
    int r = eim__conn_append(c, bufs[i].base, bufs[i].len);
    if (r < 0) return r;
  }
  if (c->olen < 65536) return 1;
  eim__conn_flush(c);
  return (c->flags & EIM__F_CLOSED) ? UV_EPIPE : 0;
}

int eim__conn_write_later(eim_http_conn *c, const uv_buf_t *bufs, unsigned nbufs) {
  eim_net *net = c->net;
  int r = conn_append_bufs(c, bufs, nbufs);
  if (r <= 0 || (c->flags & EIM__F_DIRTY)) return r < 0 ? r : 0;
  if (flush_list_add(&net->dirty, c, EIM__F_DIRTY) != 0) {
    eim__conn_flush(c);
    return 0;
  }
  uv_idle_start(&net->kick, on_kick);
  return 0;
}

int eim__conn_write_coalesced(eim_http_conn *c, const uv_buf_t *bufs, unsigned nbufs) {
  eim_net *net = c->net;
  uint64_t wait = net->lim.ws_coalesce_ms;
  /* A connection quiet for that long gets its frame at the end of this
   * turn: coalescing only ever delays the output of busy connections. */
  if (wait == 0 || (c->flags & EIM__F_DIRTY) || uv_now(net->loop) - c->last_write >= wait)
    return eim__conn_write_later(c, bufs, nbufs);
  int r = conn_append_bufs(c, bufs, nbufs);
  if (r <= 0 || (c->flags & EIM__F_HELD)) return r < 0 ? r : 0;
  if (flush_list_add(&net->held, c, EIM__F_HELD) != 0) return eim__conn_write_later(c, NULL, 0);
  if (net->held.n == 1) uv_timer_start(&net->coalesce, on_coalesce, wait, 0);
  return 0;
}

static void on_coalesce(uv_timer_t *t) {
  eim_net *net = t->data;
  flush_list_run(&net->held, EIM__F_HELD);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  eim_http_conn *c = (eim_http_conn *)req->handle;
  free(req);
  if (c->flags & EIM__F_CLOSED) return;
  if (status < 0 || (c->flags & EIM__F_EOF)) eim__conn_close(c);
}

static void conn_drained(eim_http_conn *c) {
  if (c->flags & EIM__F_LINGER) {
    if (c->flags & (EIM__F_EOF | EIM__W_CLOSE_RCVD)) {
      eim__conn_close(c);
      return;
    }
    if (c->flags & EIM__F_SHUT) return;
    uv_shutdown_t *s = malloc(sizeof *s);
    if (s == NULL || uv_shutdown(s, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
      free(s);
      eim__conn_close(c);
      return;
    }
    c->flags |= EIM__F_SHUT;
    if (!(c->flags & EIM__F_WS)) eim__conn_set_list(c, EIM__L_LINGER);
    return;
  }
  if (!(c->flags & EIM__F_WS)) schedule_resume(c);
}

void eim__conn_linger(eim_http_conn *c) {
  if (c->flags & (EIM__F_CLOSED | EIM__F_LINGER)) return;
  c->flags |= EIM__F_LINGER;
  c->flags &= ~(uint32_t)EIM__F_KEEPALIVE;
  if (c->http != NULL) eim__list_remove(&c->http->rlink);
  /* An HTTP answer still being written gets the keep-alive timeout to
   * finish (a slow reader is not cut off after one second); the grace
   * period starts once it is written. A WebSocket's close is bounded by
   * the grace period from the start. */
  eim__conn_set_list(c, (c->flags & EIM__F_WS) || eim__conn_queued(c) == 0 ? EIM__L_LINGER
                                                                           : EIM__L_IDLE);
  /* Keep reading: the peer's EOF (or last frames) ends the linger, and
   * reading keeps the kernel from answering unread bytes with a reset that
   * could destroy our last answer. */
  read_start(c);
  if (!(c->flags & EIM__F_CLOSED) && eim__conn_queued(c) == 0) conn_drained(c);
}

/* --- HTTP answers ----------------------------------------------------------- */

/* Writes a complete response; keep_alive chooses the Connection header and
 * whether the connection lingers to its close afterwards. */
static void http_write(eim_http_conn *c, int status, const char *ctype, const char *body,
                       size_t len, const char *extra, int keep_alive) {
  char head[512];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                   "Connection: %s\r\n",
                   status, status_text(status), ctype ? ctype : "application/octet-stream", len,
                   keep_alive ? "keep-alive" : "close");
  if (n < 0 || (size_t)n >= sizeof head) n = 0;
  uv_buf_t bufs[4];
  unsigned nb = 0;
  bufs[nb++] = uv_buf_init(head, (unsigned)n);
  if (extra != NULL && *extra) bufs[nb++] = uv_buf_init((char *)extra, (unsigned)strlen(extra));
  bufs[nb++] = uv_buf_init("\r\n", 2);
  if (len > 0 && !(c->flags & EIM__F_HEADREQ)) bufs[nb++] = uv_buf_init((char *)body, (unsigned)len);
  if (eim__conn_write(c, bufs, nb) < 0) return;
  if (!keep_alive) eim__conn_linger(c);
}

/* A transport error: JSON body, Connection: close, then a lingering close. */
static void http_fail(eim_http_conn *c, int status, const char *code, const char *msg) {
  char body[256];
  int n = snprintf(body, sizeof body, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, msg);
  read_stop(c);
  c->flags &= ~(uint32_t)(EIM__F_PENDING | EIM__F_HEADREQ);
  http_write(c, status, "application/json", body, (size_t)n, NULL, 0);
}

void eim_http_respond(eim_http_conn *c, int status, const char *content_type, const char *body,
                      size_t len, const char *extra_headers) {
  if (c == NULL || (c->flags & (EIM__F_CLOSED | EIM__F_WS)) || !(c->flags & EIM__F_PENDING))
    return;
  eim_net *net = c->net;
  c->flags &= ~(uint32_t)EIM__F_PENDING;
  net->stats.http_requests_total++;
  int keep = (c->flags & EIM__F_KEEPALIVE) && !net->stopping && !(c->flags & EIM__F_EOF) &&
             c->http != NULL && !c->http->upgrade;
  http_write(c, status, content_type, body ? body : "", body ? len : 0, extra_headers, keep);
  c->flags &= ~(uint32_t)EIM__F_HEADREQ;
  /* Until the answer is written the keep-alive timeout bounds a client
   * that does not read. */
  if (keep && !(c->flags & EIM__F_CLOSED) && eim__conn_queued(c) > 0)
    eim__conn_set_list(c, EIM__L_IDLE);
}

void eim_http_hold(eim_http_conn *c) { c->refs++; }

void eim_http_release(eim_http_conn *c) { conn_unref(c); }

const char *eim_http_peer_ip(const eim_http_conn *c) { return c->ip ? c->ip->addr : ""; }

const char *eim_http_header(const eim_http_req *req, const char *name) {
  for (size_t i = 0; i < req->nheaders; i++)
    if (strcasecmp(req->header_names[i], name) == 0) return req->header_values[i];
  return NULL;
}

/* --- HTTP parsing ------------------------------------------------------------ */

static eim_http_conn *conn_of(llhttp_t *p) { return p->data; }

static int head_append(eim__http *h, eim_net *net, const char *at, size_t len, int lower) {
  if (h->hlen + len + 1 > net->lim.max_header_bytes) {
    h->limit_status = 431;
    return -1;
  }
  if (h->hlen + len + 1 > h->hcap) {
    size_t cap = h->hcap ? h->hcap : 512;
    while (cap < h->hlen + len + 1) cap *= 2;
    char *p = realloc(h->head, cap);
    if (p == NULL) return -1;
    h->head = p;
    h->hcap = cap;
  }
  for (size_t i = 0; i < len; i++) {
    char ch = at[i];
    h->head[h->hlen++] = (lower && ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
  }
  return 0;
}

static int on_message_begin(llhttp_t *p) {
  eim_http_conn *c = conn_of(p);
  eim__http *h = c->http;
  h->hlen = h->nheaders = h->raw = 0;
  h->blen = 0;
  h->limit_status = 0;
  h->started = 1;
  h->head_done = 0;
  if (c->list != EIM__L_HEAD) eim__conn_set_list(c, EIM__L_HEAD);
  return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len) {
  eim_http_conn *c = conn_of(p);
  return head_append(c->http, c->net, at, len, 0);
}

static int on_field(llhttp_t *p, const char *at, size_t len) {
  eim_http_conn *c = conn_of(p);
  return head_append(c->http, c->net, at, len, 1);
}

static int on_value(llhttp_t *p, const char *at, size_t len) {
  eim_http_conn *c = conn_of(p);
  return head_append(c->http, c->net, at, len, 0);
}

static int on_url_complete(llhttp_t *p) {
  eim_http_conn *c = conn_of(p);
  eim__http *h = c->http;
  if (head_append(h, c->net, "", 0, 0) != 0) return -1;
  h->head[h->hlen++] = 0;
  return 0;
}

static int on_field_complete(llhttp_t *p) {
  eim_http_conn *c = conn_of(p);
  eim__http *h = c->http;
  if (head_append(h, c->net, "", 0, 0) != 0) return -1;
  h->head[h->hlen++] = 0;
  h->nheaders++;
  h->vstart = h->hlen;
  return 0;
}

static int on_value_complete(llhttp_t *p) {
  eim_http_conn *c = conn_of(p);
  eim__http *h = c->http;
  if (head_append(h, c->net, "", 0, 0) != 0) return -1;
  while (h->hlen > h->vstart && (h->head[h->hlen - 1] == ' ' || h->head[h->hlen - 1] == '\t'))
    h->hlen--;
  h->head[h->hlen++] = 0;
  return 0;
}

static const char *head_find(const eim__http *h, const char *name) {
  if (h->head == NULL) return NULL;
  const char *s = h->head + strlen(h->head) + 1;
  for (size_t i = 0; i < h->nheaders; i++) {
    const char *v = s + strlen(s) + 1;
    if (strcmp(s, name) == 0) return v;
    s = v + strlen(v) + 1;
  }
  return NULL;
}

static int on_headers_complete(llhttp_t *p) {
  eim_http_conn *c = conn_of(p);
  eim__http *h = c->http;
  eim_net *net = c->net;
  h->head_done = 1;
  h->upgrade = p->upgrade ? 1 : 0;
  if (llhttp_should_keep_alive(p))
    c->flags |= EIM__F_KEEPALIVE;
  else
    c->flags &= ~(uint32_t)EIM__F_KEEPALIVE;
  if (!(p->flags & F_CHUNKED) && p->content_length > 0) {
    if (p->content_length > net->lim.max_body_bytes) {
      h->limit_status = 413;
      return -1;
    }
    if (p->content_length + 1 > h->bcap) {
      char *b = realloc(h->body, (size_t)p->content_length + 1);
      if (b == NULL) return -1;
      h->body = b;
      h->bcap = (size_t)p->content_length + 1;
    }
  }
  const char *expect = head_find(h, "expect");
  if (expect != NULL && strcasecmp(expect, "100-continue") == 0 && p->http_minor >= 1) {
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    uv_buf_t b = uv_buf_init((char *)cont, sizeof cont - 1);
    if (eim__conn_write(c, &b, 1) < 0) return -1;
  }
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len) {
  eim_http_conn *c = conn_of(p);
  eim__http *h = c->http;
  if (h->blen + len > c->net->lim.max_body_bytes) {
    h->limit_status = 413;
    return -1;
  }
  if (h->blen + len + 1 > h->bcap) {
    size_t cap = h->bcap ? h->bcap : 1024;
    while (cap < h->blen + len + 1) cap *= 2;
    if (cap > c->net->lim.max_body_bytes + 1) cap = c->net->lim.max_body_bytes + 1;
    char *b = realloc(h->body, cap);
    if (b == NULL) return -1;
    h->body = b;
    h->bcap = cap;
  }
  memcpy(h->body + h->blen, at, len);
  h->blen += len;
  return 0;
}

static int on_message_complete(llhttp_t *p) {
  /* Stop here: the next pipelined request waits until this one is
   * answered. */
  return HPE_PAUSED;
}

static const llhttp_settings_t http_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_url_complete = on_url_complete,
    .on_header_field_complete = on_field_complete,
    .on_header_value_complete = on_value_complete,
};

static int token_list_has(const char *list, const char *token) {
  size_t tl = strlen(token);
  const char *s = list;
  while (s != NULL && *s) {
    while (*s == ' ' || *s == '\t' || *s == ',') s++;
    const char *e = s;
    while (*e && *e != ',') e++;
    const char *t = e;
    while (t > s && (t[-1] == ' ' || t[-1] == '\t')) t--;
    if ((size_t)(t - s) == tl && strncasecmp(s, token, tl) == 0) return 1;
    s = e;
  }
  return 0;
}

/* RFC 6455 4.2.1: what makes a request an acceptable opening handshake. */
static int is_websocket(const eim_http_req *req, const eim__http *h) {
  if (!h->upgrade || strcmp(req->method, "GET") != 0) return 0;
  if (h->parser.http_major != 1 || h->parser.http_minor < 1) return 0;
  const char *up = eim_http_header(req, "upgrade");
  const char *conn = eim_http_header(req, "connection");
  const char *ver = eim_http_header(req, "sec-websocket-version");
  const char *key = eim_http_header(req, "sec-websocket-key");
  if (up == NULL || conn == NULL || ver == NULL || key == NULL) return 0;
  if (!token_list_has(up, "websocket") || !token_list_has(conn, "upgrade")) return 0;
  if (strcmp(ver, "13") != 0) return 0;
  /* The key is 16 random bytes in base64: 22 characters and "==". */
  if (strlen(key) != 24 || strcmp(key + 22, "==") != 0) return 0;
  for (int i = 0; i < 22; i++) {
    char ch = key[i];
    if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
          ch == '+' || ch == '/'))
      return 0;
  }
  return 1;
}

/* Hands the parsed request to the application. The request's buffers live
 * until on_request returns. */
static void http_dispatch(eim_http_conn *c) {
  eim__http *h = c->http;
  eim_net *net = c->net;
  eim_http_req req;
  const char **names = NULL;
  if (h->head == NULL || h->hlen == 0) {
    http_fail(c, 400, "bad_request", "malformed HTTP request");
    return;
  }
  if (h->nheaders > 0) {
    names = malloc(2 * h->nheaders * sizeof *names);
    if (names == NULL) {
      http_fail(c, 500, "internal", "out of memory");
      return;
    }
  }
  char *url = h->head;
  const char *s = url + strlen(url) + 1;
  for (size_t i = 0; i < h->nheaders; i++) {
    names[i] = s;
    s += strlen(s) + 1;
    names[h->nheaders + i] = s;
    s += strlen(s) + 1;
  }
  char *q = strchr(url, '?');
  if (q != NULL) *q++ = 0;
  char *frag = strchr(q ? q : url, '#');
  if (frag != NULL) *frag = 0;
  if (h->body != NULL) h->body[h->blen] = 0;
  req.method = llhttp_method_name((llhttp_method_t)h->parser.method);
  req.path = url;
  req.query = q ? q : "";
  req.body = h->body ? h->body : "";
  req.body_len = h->blen;
  req.peer_ip = c->ip->addr;
  req.nheaders = h->nheaders;
  req.header_names = names;
  req.header_values = names ? names + h->nheaders : NULL;
  req.websocket = is_websocket(&req, h);
  if (h->parser.method == HTTP_HEAD) c->flags |= EIM__F_HEADREQ;
  c->flags |= EIM__F_PENDING | EIM__F_DISPATCH;
  eim__conn_set_list(c, EIM__L_BUSY);
  net->h.on_request(net->h.ctx, c, &req);
  c->flags &= ~(uint32_t)EIM__F_DISPATCH;
  free(names);
  if (c->http != NULL) {
    h->hlen = h->blen = 0;
    h->started = 0;
    if (h->bcap > 4096) {
      free(h->body);
      h->body = NULL;
      h->bcap = 0;
    }
  }
}

void eim__http_upgraded(eim_http_conn *c) {
  eim__http *h = c->http;
  char *pend = h->pend;
  size_t off = h->poff, len = h->plen;
  h->pend = NULL;
  http_free(c);
  eim__conn_set_list(c, EIM__L_WS);
  read_start(c);
  if (pend != NULL && !(c->flags & EIM__F_CLOSED)) eim__ws_on_read(c, pend + off, len - off);
  free(pend);
}

static void http_parse_error(eim_http_conn *c, llhttp_errno_t err) {
  eim__http *h = c->http;
  if (h->limit_status == 413)
    http_fail(c, 413, "payload_too_large", "request body too large");
  else if (h->limit_status == 431)
    http_fail(c, 431, "payload_too_large", "request header fields too large");
  else
    http_fail(c, 400, "bad_request", "malformed HTTP request");
  EIM_LOG_D("msg=\"http request refused\" peer=%s status=%d error=%s", c->ip->addr,
            h->limit_status ? h->limit_status : 400, llhttp_errno_name(err));
}

/* Parses data (from_pend: it is the unparsed rest in h->pend) and
 * dispatches every complete request in turn while they are answered at
 * once. Stops at a request answered later, an upgrade, an error or the end
 * of the data. */
static void http_run(eim_http_conn *c, const char *data, size_t len, int from_pend) {
  eim_net *net = c->net;
  for (;;) {
    eim__http *h = c->http;
    llhttp_errno_t err = llhttp_execute(&h->parser, data, len);
    if (err == HPE_OK) {
      if (h->started && !h->head_done) {
        h->raw += len;
        if (h->raw > net->lim.max_header_bytes) {
          h->limit_status = 431;
          http_parse_error(c, HPE_USER);
          return;
        }
      }
      if (from_pend) {
        free(h->pend);
        h->pend = NULL;
        h->plen = h->poff = 0;
      }
      read_start(c);
      return;
    }
    if (err != HPE_PAUSED && err != HPE_PAUSED_UPGRADE) {
      http_parse_error(c, err);
      return;
    }
    size_t used = (size_t)(llhttp_get_error_pos(&h->parser) - data);
    if (from_pend) {
      h->poff += used;
    } else if (used < len) {
      h->pend = malloc(len - used);
      if (h->pend == NULL) {
        eim__conn_close(c);
        return;
      }
      memcpy(h->pend, data + used, len - used);
      h->plen = len - used;
      h->poff = 0;
    }
    h->paused = 1;
    read_stop(c);
    http_dispatch(c);
    if (c->flags & EIM__F_CLOSED) return;
    if (c->flags & EIM__F_UPGRADED) {
      eim__http_upgraded(c);
      return;
    }
    if (c->flags & (EIM__F_PENDING | EIM__F_LINGER) || eim__conn_queued(c) > 0) return;
    /* Answered and written: go on with what was read after it. */
    h = c->http;
    llhttp_resume(&h->parser);
    h->paused = 0;
    if (h->pend == NULL) {
      eim__conn_set_list(c, EIM__L_IDLE);
      read_start(c);
      return;
    }
    data = h->pend + h->poff;
    len = h->plen - h->poff;
    from_pend = 1;
  }
}

static void http_resume(eim_http_conn *c) {
  eim__http *h = c->http;
  if (h == NULL || !h->paused ||
      (c->flags & (EIM__F_CLOSED | EIM__F_PENDING | EIM__F_LINGER | EIM__F_DISPATCH)) ||
      eim__conn_queued(c) > 0)
    return;
  llhttp_resume(&h->parser);
  h->paused = 0;
  if (h->pend != NULL) {
    http_run(c, h->pend + h->poff, h->plen - h->poff, 1);
    return;
  }
  eim__conn_set_list(c, EIM__L_IDLE);
  if (c->net->stopping) {
    eim__conn_close(c);
    return;
  }
  read_start(c);
}

static void on_kick(uv_idle_t *idle) {
  eim_net *net = idle->data;
  /* Connections dirtied again by flushing wait for the next turn, which
   * the idle handle makes come without blocking. */
  flush_list_run(&net->dirty, EIM__F_DIRTY);
  /* Resumes can queue new resumes of other connections, never of the one
   * just run (it is answered or waiting), so a snapshot bound is not needed:
   * the list only shrinks or moves on. */
  while (!eim__list_empty(&net->resume)) {
    eim__http *h = EIM__CONTAINER(net->resume.next, eim__http, rlink);
    eim__list_remove(&h->rlink);
    http_resume(h->parser.data);
  }
  if (net->dirty.n == 0) uv_idle_stop(&net->kick);
}

/* Parsing continues from the loop, not inside the caller (an application
 * answering from its own callback must not be re-entered). */
static void schedule_resume(eim_http_conn *c) {
  eim__http *h = c->http;
  if (h == NULL || !h->paused || (c->flags & (EIM__F_DISPATCH | EIM__F_PENDING))) return;
  if (!eim__list_empty(&h->rlink)) return;
  eim__list_push(&c->net->resume, &h->rlink);
  uv_idle_start(&c->net->kick, on_kick);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  eim_http_conn *c = (eim_http_conn *)s;
  if (nread == 0) return;
  if (nread < 0) {
    read_stop(c);
    if (nread != UV_EOF) {
      eim__conn_close(c);
      return;
    }
    c->flags |= EIM__F_EOF;
    /* A half-closed client still gets the answer to its last request. */
    if ((c->flags & EIM__F_PENDING) && !(c->flags & EIM__F_WS)) return;
    if ((c->flags & EIM__F_LINGER) && !(c->flags & EIM__F_SHUT) && eim__conn_queued(c) > 0) return;
    eim__conn_close(c);
    return;
  }
  if (c->flags & EIM__F_WS) {
    eim__ws_on_read(c, buf->base, (size_t)nread);
    return;
  }
  if ((c->flags & EIM__F_LINGER) || c->http == NULL) return;
  http_run(c, buf->base, (size_t)nread, 0);
}

/* --- accepting ------------------------------------------------------------------ */

static void on_refused_closed(uv_handle_t *handle) {
  eim_http_conn *c = (eim_http_conn *)handle;
  eim_net *net = c->net;
  free(c);
  net_handle_closed(net);
}

static void refuse(eim_http_conn *c, const char *why) {
  static const char resp[] =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
      "Content-Length: 72\r\nConnection: close\r\n\r\n"
      "{\"error\":{\"code\":\"unavailable\",\"message\":\"too many connections, retry\"}}";
  eim_net *net = c->net;
  net->stats.refused_total++;
  uv_buf_t b = uv_buf_init((char *)resp, sizeof resp - 1);
  uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  EIM_LOG_D("msg=\"connection refused\" reason=%s", why);
  c->flags |= EIM__F_CLOSED;
  uv_close((uv_handle_t *)&c->tcp, on_refused_closed);
}

static void on_connection(uv_stream_t *server, int status) {
  eim_net *net = server->data;
  if (status < 0) {
    EIM_LOG_W("msg=\"accept failed\" error=%s", uv_strerror(status));
    return;
  }
  eim_http_conn *c = calloc(1, sizeof(struct eim_ws));
  if (c == NULL) return;
  if (uv_tcp_init(net->loop, &c->tcp) != 0) {
    free(c);
    return;
  }
  net->handles++;
  c->net = net;
  c->refs = 1;
  eim__list_init(&c->link);
  eim__list_init(&c->wlink);
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    c->flags |= EIM__F_CLOSED;
    uv_close((uv_handle_t *)&c->tcp, on_refused_closed);
    return;
  }
  struct sockaddr_storage ss;
  int sl = sizeof ss;
  char addr[64] = "unknown";
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
    if (ss.ss_family == AF_INET6)
      uv_ip6_name((struct sockaddr_in6 *)&ss, addr, sizeof addr);
    else
      uv_ip4_name((struct sockaddr_in *)&ss, addr, sizeof addr);
  }
  if (net->stats.http_connections >= net->lim.max_connections) {
    refuse(c, "max_connections");
    return;
  }
  eim__ip *ip = ip_get(net, addr);
  if (ip == NULL) {
    refuse(c, "out_of_memory");
    return;
  }
  if (net->lim.max_connections_per_ip > 0 && ip->count >= net->lim.max_connections_per_ip) {
    ip_put(net, ip);
    refuse(c, "max_connections_per_ip");
    return;
  }
  if (!ip_admit(net, ip)) {
    ip_put(net, ip);
    refuse(c, "new_connections_per_ip_per_sec");
    return;
  }
  c->http = calloc(1, sizeof *c->http);
  if (c->http == NULL) {
    ip_put(net, ip);
    refuse(c, "out_of_memory");
    return;
  }
  ip->count++;
  c->ip = ip;
  net->stats.http_connections++;
  net->stats.accepted_total++;
  eim__list_init(&c->http->rlink);
  llhttp_init(&c->http->parser, HTTP_REQUEST, &http_settings);
  c->http->parser.data = c;
  uv_tcp_nodelay(&c->tcp, 1);
  eim__conn_set_list(c, EIM__L_HEAD);
  read_start(c);
}

/* --- timeouts ----------------------------------------------------------------- */

static void sweep_list(eim_net *net, int list, uint64_t timeout, uint64_t now) {
  if (timeout == 0) return;
  while (!eim__list_empty(&net->lists[list])) {
    eim_http_conn *c = EIM__CONTAINER(net->lists[list].next, eim_http_conn, link);
    if (now - c->mark < timeout) return;
    if (list == EIM__L_HEAD && c->http != NULL && c->http->started) {
      EIM_LOG_D("msg=\"request timeout\" peer=%s", c->ip->addr);
      http_fail(c, 408, "bad_request", "request not received in time");
      if (c->list == EIM__L_HEAD) eim__conn_close(c);
    } else {
      eim__conn_close(c);
    }
  }
}

static void on_sweep(uv_timer_t *t) {
  eim_net *net = t->data;
  uint64_t now = uv_now(net->loop);
  sweep_list(net, EIM__L_HEAD, net->lim.header_timeout_ms, now);
  sweep_list(net, EIM__L_IDLE, net->lim.keepalive_timeout_ms, now);
  sweep_list(net, EIM__L_LINGER, EIM__CLOSE_GRACE_MS, now);
  eim__ws_sweep(net, now);
  ip_sweep(net);
}

static uint64_t sweep_period(const eim_net_limits *lim) {
  uint64_t t[] = {lim->header_timeout_ms, lim->keepalive_timeout_ms, lim->ws_ping_interval_ms,
                  lim->ws_idle_timeout_ms, EIM__CLOSE_GRACE_MS};
  uint64_t m = EIM__CLOSE_GRACE_MS;
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (t[i] > 0 && t[i] < m) m = t[i];
  m /= 4;
  return m < 5 ? 5 : m > 250 ? 250 : m;
}

/* --- the net ---------------------------------------------------------------- */

/* Binds and listens with plain sockets first, so that a failure leaves no
 * libuv handle behind and nothing to close asynchronously. Returns the
 * listening descriptor or a negative errno. */
static int listen_socket(const char *host, int port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
    return UV_EINVAL;
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -errno;
  int one = 1;
  socklen_t sl = ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, SOMAXCONN) != 0) {
    int err = -errno;
    close(fd);
    return err;
  }
  return fd;
}

int eim_net_start(uv_loop_t *loop, const char *host, int port, const eim_net_limits *lim,
                  const eim_net_handlers *h, eim_net **out) {
  int fd = listen_socket(host, port);
  if (fd < 0) return fd;
  eim_net *net = calloc(1, sizeof *net);
  if (net == NULL) {
    close(fd);
    return UV_ENOMEM;
  }
  net->loop = loop;
  net->lim = *lim;
  net->h = *h;
  for (int i = 0; i < EIM__L_COUNT; i++) eim__list_init(&net->lists[i]);
  eim__list_init(&net->resume);
  eim__list_init(&net->parsers);
  uv_tcp_init(loop, &net->listener);
  uv_timer_init(loop, &net->sweep);
  uv_idle_init(loop, &net->kick);
  uv_timer_init(loop, &net->coalesce);
  net->listener.data = net->sweep.data = net->kick.data = net->coalesce.data = net;
  net->handles = 4;
  net->accepting = 1;
  int r = uv_tcp_open(&net->listener, fd);
  if (r != 0) close(fd);
  if (r == 0) r = uv_listen((uv_stream_t *)&net->listener, 1024, on_connection);
  struct sockaddr_storage ss;
  int sl = sizeof ss;
  if (r == 0) r = uv_tcp_getsockname(&net->listener, (struct sockaddr *)&ss, &sl);
  if (r != 0) {
    /* The handles exist now: they close with the loop's next turn. */
    eim_net_close(net, NULL, NULL);
    return r;
  }
  net->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
  uint64_t period = sweep_period(lim);
  uv_timer_start(&net->sweep, on_sweep, period, period);
  *out = net;
  return 0;
}

int eim_net_port(const eim_net *net) { return net->port; }

void eim_net_stop_accepting(eim_net *net) {
  net->stopping = 1;
  if (net->accepting) {
    net->accepting = 0;
    uv_close((uv_handle_t *)&net->listener, on_handle_closed);
  }
  /* Idle: between requests with nothing left to write, or connected
   * without a byte sent. The others finish their request (answers now say
   * Connection: close) or their writing first. */
  for (int list = EIM__L_HEAD; list <= EIM__L_IDLE; list++) {
    eim__link *l = net->lists[list].next;
    while (l != &net->lists[list]) {
      eim_http_conn *c = EIM__CONTAINER(l, eim_http_conn, link);
      l = l->next;
      if (c->http == NULL || eim__conn_queued(c) > 0 || (c->flags & EIM__F_LINGER)) continue;
      if (list == EIM__L_IDLE ? c->http->pend == NULL : !c->http->started) eim__conn_close(c);
    }
  }
}

void eim_net_close(eim_net *net, void (*done)(void *arg), void *arg) {
  if (net->closing) return;
  net->closing = 1;
  net->stopping = 1;
  net->done = done;
  net->done_arg = arg;
  if (net->accepting) {
    net->accepting = 0;
    uv_close((uv_handle_t *)&net->listener, on_handle_closed);
  }
  uv_close((uv_handle_t *)&net->sweep, on_handle_closed);
  uv_close((uv_handle_t *)&net->kick, on_handle_closed);
  uv_close((uv_handle_t *)&net->coalesce, on_handle_closed);
  flush_list_drop(&net->dirty, EIM__F_DIRTY);
  flush_list_drop(&net->held, EIM__F_HELD);
  for (int i = 0; i < EIM__L_COUNT; i++)
    while (!eim__list_empty(&net->lists[i]))
      eim__conn_close(EIM__CONTAINER(net->lists[i].next, eim_http_conn, link));
}

void eim_net_get_stats(const eim_net *net, eim_net_stats *out) { *out = net->stats; }
