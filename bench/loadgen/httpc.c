/* A minimal HTTP/1.1 client for the REST calls of the set-up: one
 * connection per request, the response read up to its Content-Length. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lg.h"

#define RESP_MAX (1u << 20)

typedef struct hreq {
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  char *out;
  size_t outn;
  char *in;
  size_t inn;
  lg_http_cb cb;
  void *arg;
  int status, done;
} hreq;

static void h_closed(uv_handle_t *h) {
  hreq *r = h->data;
  free(r->out);
  free(r->in);
  free(r);
}

static void h_finish(hreq *r, int status, const char *body, size_t n) {
  if (r->done) return;
  r->done = 1;
  r->cb(r->arg, status, body ? body : "", n);
  uv_close((uv_handle_t *)&r->tcp, h_closed);
}

/* Calls back once the headers and Content-Length bytes of body are in. */
static void h_check(hreq *r) {
  r->in[r->inn] = 0;
  char *end = strstr(r->in, "\r\n\r\n");
  if (end == NULL) return;
  int status = 0;
  if (sscanf(r->in, "HTTP/1.1 %d", &status) != 1) {
    h_finish(r, LG_EPROTO, NULL, 0);
    return;
  }
  size_t clen = 0;
  for (char *l = strstr(r->in, "\r\n"); l && l < end; l = strstr(l + 2, "\r\n"))
    if (strncasecmp(l + 2, "content-length:", 15) == 0) clen = strtoul(l + 17, NULL, 10);
  char *body = end + 4;
  if ((size_t)(r->in + r->inn - body) < clen) return;
  h_finish(r, status, body, clen);
}

static void h_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)hint;
  hreq *r = h->data;
  *b = uv_buf_init(r->in + r->inn, (unsigned)(RESP_MAX - r->inn));
}

static void h_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  hreq *r = s->data;
  if (n < 0) {
    h_finish(r, n, NULL, 0);
    return;
  }
  r->inn += (size_t)n;
  if (r->inn >= RESP_MAX) {
    h_finish(r, LG_EPROTO, NULL, 0);
    return;
  }
  h_check(r);
}

static void h_written(uv_write_t *w, int status) {
  hreq *r = w->data;
  if (status != 0) h_finish(r, status, NULL, 0);
}

static void h_connected(uv_connect_t *c, int status) {
  hreq *r = c->data;
  if (status != 0) {
    h_finish(r, status, NULL, 0);
    return;
  }
  uv_buf_t b = uv_buf_init(r->out, (unsigned)r->outn);
  r->wreq.data = r;
  if (uv_write(&r->wreq, (uv_stream_t *)&r->tcp, &b, 1, h_written) != 0 ||
      uv_read_start((uv_stream_t *)&r->tcp, h_alloc, h_read) != 0)
    h_finish(r, LG_EPROTO, NULL, 0);
}

int lg_http(const char *method, const char *path, const char *token, const char *body,
            lg_http_cb cb, void *arg) {
  hreq *r = calloc(1, sizeof *r);
  if (r == NULL) return -1;
  size_t blen = body ? strlen(body) : 0, cap = blen + (token ? strlen(token) : 0) + 512;
  r->out = malloc(cap);
  r->in = malloc(RESP_MAX + 1);
  if (r->out == NULL || r->in == NULL) lg_die("out of memory");
  int n = snprintf(r->out, cap,
                   "%s %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\n%s%s%s\r\n%s",
                   method, path, lg_o.host, lg_o.port, blen, token ? "Authorization: Bearer " : "",
                   token ? token : "", token ? "\r\n" : "", body ? body : "");
  r->outn = (size_t)n;
  r->cb = cb;
  r->arg = arg;
  uv_tcp_init(lg_loop, &r->tcp);
  r->tcp.data = r;
  r->creq.data = r;
  struct sockaddr_in dst;
  uv_ip4_addr(lg_o.host, lg_o.port, &dst);
  int rc = uv_tcp_connect(&r->creq, &r->tcp, (const struct sockaddr *)&dst, h_connected);
  if (rc != 0) {
    r->done = 1;
    uv_close((uv_handle_t *)&r->tcp, h_closed);
    return rc;
  }
  return 0;
}
