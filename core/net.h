/*
 * Transport: the listening socket, HTTP/1.1 connections (llhttp) and
 * WebSocket sessions (wslay). Knows nothing about the application: complete
 * requests and WebSocket messages go to the handlers in eim_net_handlers, and
 * the application answers through the functions below. Everything here runs
 * on the loop thread only.
 *
 * Limits enforced here (all from eim_net_limits):
 *   - header bytes per request: over -> 431, connection closed;
 *   - body bytes (Content-Length, or chunked total): over -> 413, closed;
 *   - time to receive a request's headers (slowloris): over -> connection
 *     closed (408 with a JSON body if nothing was answered yet);
 *   - idle keep-alive connections are closed after keepalive_timeout_ms;
 *   - WebSocket frame/message bytes: over -> close 1009;
 *   - WebSocket idle (nothing received): over -> close 1000 "idle timeout";
 *     the server pings every ws_ping_interval_ms;
 *   - a WebSocket's unsent bytes: over ws_send_queue_bytes -> the connection
 *     is closed (close 1008 "send queue full" is attempted, then the socket is
 *     closed), so a client that does not read cannot grow server memory;
 *   - total connections, connections per IP, and new connections per IP per
 *     second (a token bucket holding two seconds' worth): over -> the new
 *     socket is closed at once (HTTP 503 with a JSON body when it can be
 *     written).
 * HTTP errors written by the transport itself carry the protocol's JSON body:
 *   {"error": {"code": "payload_too_large", "message": "..."}}.
 */
#ifndef EIM_NET_H
#define EIM_NET_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct eim_net eim_net;
typedef struct eim_http_conn eim_http_conn;
typedef struct eim_ws eim_ws;

typedef struct eim_net_limits {
  size_t max_header_bytes;          /* default 16384 */
  size_t max_body_bytes;            /* default 65536 */
  uint64_t header_timeout_ms;       /* default 10000 */
  uint64_t keepalive_timeout_ms;    /* default 60000 */
  size_t max_frame_bytes;           /* default 65536 */
  uint64_t ws_ping_interval_ms;     /* default 30000 */
  uint64_t ws_idle_timeout_ms;      /* default 90000 */
  size_t ws_send_queue_bytes;       /* default 4 MiB */
  uint64_t ws_coalesce_ms;          /* default 0: events leave when the loop turn ends */
  unsigned max_connections;         /* default 20000 */
  unsigned max_connections_per_ip;  /* default 0 = unlimited */
  unsigned new_connections_per_ip_per_sec; /* default 0 = unlimited; burst of 2 s */
} eim_net_limits;

/* Fills the defaults above. */
void eim_net_limits_default(eim_net_limits *lim);

/* A parsed request. Every pointer is valid only during on_request; copy what
 * a later answer needs. Strings are NUL-terminated. */
typedef struct eim_http_req {
  const char *method;        /* "GET", "POST", ... */
  const char *path;          /* the URL path, percent-decoding NOT applied */
  const char *query;         /* the raw query without '?', "" when none */
  const char *body;          /* body bytes (NUL-terminated for convenience) */
  size_t body_len;
  const char *peer_ip;       /* textual IPv4/IPv6 address of the client */
  int websocket;             /* 1 when this is a valid WebSocket upgrade request */
  /* Header lines, names lower-cased. */
  size_t nheaders;
  const char *const *header_names;
  const char *const *header_values;
} eim_http_req;

/* Case-insensitive header look-up; NULL when absent. */
const char *eim_http_header(const eim_http_req *req, const char *name);

typedef struct eim_net_handlers {
  void *ctx;
  /* A complete request. The application answers with eim_http_respond(),
   * either during the call or later (it must eim_http_hold() first and
   * eim_http_release() after), or, when req->websocket is set, upgrades with
   * eim_ws_accept(). The connection reads no further request until this one
   * is answered. */
  void (*on_request)(void *ctx, eim_http_conn *c, const eim_http_req *req);
  /* One complete WebSocket message (fragments joined). text is 1 for a text
   * message, 0 for binary. data is valid only during the call. */
  void (*on_ws_message)(void *ctx, eim_ws *ws, int text, const char *data, size_t len);
  /* The WebSocket is closed (by either side, for any reason). After this call
   * returns, ws is freed; it is called exactly once per accepted ws, and
   * never from inside eim_ws_send_text() or eim_ws_close() (always from a
   * later libuv callback), so callers may iterate their lists while sending. */
  void (*on_ws_close)(void *ctx, eim_ws *ws);
} eim_net_handlers;

/* Binds host:port (IPv4 or IPv6 literal, or "localhost") and starts accepting.
 * Returns 0 or a negative libuv error code. lim and h are copied. */
int eim_net_start(uv_loop_t *loop, const char *host, int port,
                  const eim_net_limits *lim, const eim_net_handlers *h, eim_net **out);
/* The port actually bound (useful with port 0). */
int eim_net_port(const eim_net *net);
/* Graceful shutdown, step 1: stop accepting new connections and close idle
 * HTTP connections; answered requests finish. */
void eim_net_stop_accepting(eim_net *net);
/* Step 2: send a close frame with `code` to every WebSocket and close it once
 * the close is written (or after a short grace period). on_ws_close runs for
 * each. */
void eim_net_close_all_ws(eim_net *net, uint16_t code, const char *reason);
/* Step 3: closes every remaining handle; `done` runs when all are closed and
 * net is freed. */
void eim_net_close(eim_net *net, void (*done)(void *arg), void *arg);

typedef struct eim_net_stats {
  uint64_t http_connections;   /* open now, including those upgraded */
  uint64_t ws_connections;     /* open now */
  uint64_t accepted_total;
  uint64_t refused_total;      /* over a connection limit */
  uint64_t http_requests_total;
  uint64_t ws_messages_in_total;
  uint64_t ws_messages_out_total;
  uint64_t ws_bytes_in_total;
  uint64_t ws_bytes_out_total;
  uint64_t ws_closed_slow_total;  /* closed for a full send queue */
  uint64_t ws_parsers;         /* WebSockets holding a frame parser (~8.5 KiB) now */
} eim_net_stats;
void eim_net_get_stats(const eim_net *net, eim_net_stats *out);

/* --- HTTP answers ------------------------------------------------------- */

/* Writes one response: status line, Content-Type, Content-Length,
 * Connection (keep-alive unless the client asked to close or the request
 * was malformed), then extra_headers verbatim (each line ending in "\r\n",
 * or NULL), then the body. Copies everything. A no-op when the client is
 * gone. Exactly one response per request. */
void eim_http_respond(eim_http_conn *c, int status, const char *content_type,
                      const char *body, size_t len, const char *extra_headers);
/* Keeps c's memory valid for a later eim_http_respond() (the socket may
 * close meanwhile; then respond is a no-op). Each hold needs one release. */
void eim_http_hold(eim_http_conn *c);
void eim_http_release(eim_http_conn *c);
const char *eim_http_peer_ip(const eim_http_conn *c);

/* --- WebSocket ---------------------------------------------------------- */

/* Completes the upgrade of a request with req->websocket set: writes the 101
 * answer and switches the connection to WebSocket. user_data is attached to
 * the ws. Returns NULL (after answering 400 itself) when the handshake is
 * unusable. */
eim_ws *eim_ws_accept(eim_http_conn *c, const eim_http_req *req, void *user_data);
void *eim_ws_user_data(const eim_ws *ws);
void eim_ws_set_user_data(eim_ws *ws, void *user_data);
uint64_t eim_ws_id(const eim_ws *ws);        /* unique per process, > 0 */
const char *eim_ws_peer_ip(const eim_ws *ws);
/* Queues one text message (copied). Returns 0, or -1 when the ws is closing
 * or its send queue is over the limit (then the ws is being closed). */
int eim_ws_send_text(eim_ws *ws, const char *data, size_t len);
/* As eim_ws_send_text, for a message nobody waits on (an event): when the
 * ws was written to less than ws_coalesce_ms ago, the frame waits until that
 * much time has passed, so that a busy connection gets one write for many
 * frames instead of one each. Order with every other frame is kept. */
int eim_ws_send_event(eim_ws *ws, const char *data, size_t len);
/* Starts the closing handshake with code and reason. on_ws_close follows. */
void eim_ws_close(eim_ws *ws, uint16_t code, const char *reason);
/* Bytes queued and not yet written to the socket. */
size_t eim_ws_queued_bytes(const eim_ws *ws);

#endif
