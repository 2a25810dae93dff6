/*
 * Internals shared by http.c (listener, connections, HTTP) and ws.c
 * (WebSocket sessions). Not part of any public interface.
 *
 * Memory model: one struct eim_http_conn per accepted socket, kept small
 * because 20,000 idle WebSockets must fit in a few KiB each. The HTTP state
 * (parser, request buffers) is a separate allocation freed on upgrade; the
 * wslay context exists only while a WebSocket is sending (see ws.c); output
 * is buffered only while the kernel refuses it. Reads go into one loop-wide
 * buffer.
 *
 * Timeouts use no per-connection timer: each connection sits in one list of
 * its net, ordered by the time it entered it (ws: by last input), and one
 * sweep timer looks at the heads.
 */
#ifndef EIM_NET_INTERNAL_H
#define EIM_NET_INTERNAL_H

#include "list.h"
#include "net.h"

#include <llhttp.h>
#include <wslay/wslay.h>

/* A closing connection waits at most this long for the peer (lingering
 * close, WebSocket closing handshake) before the socket is closed. */
#define EIM__CLOSE_GRACE_MS 1000
/* A WebSocket's wslay context is kept this long after its last input. */
#define EIM__PARSER_KEEP_MS 1000
#define EIM__READ_BUF 65536

/* Which list of the net a connection is in. */
enum {
  EIM__L_HEAD,    /* receiving a request; header_timeout */
  EIM__L_IDLE,    /* between requests, or an answer being written; keepalive_timeout */
  EIM__L_BUSY,    /* request handed to the application; no timeout */
  EIM__L_WS,      /* open WebSocket; ordered by last input */
  EIM__L_LINGER,  /* closing; EIM__CLOSE_GRACE_MS */
  EIM__L_COUNT
};

/* Connection flags. */
enum {
  EIM__F_CLOSED = 1u << 0,      /* uv_close called */
  EIM__F_READING = 1u << 1,
  EIM__F_SHUT = 1u << 2,        /* uv_shutdown issued */
  EIM__F_LINGER = 1u << 3,      /* close once output is written */
  EIM__F_PENDING = 1u << 4,     /* a request awaits eim_http_respond */
  EIM__F_DISPATCH = 1u << 5,    /* inside on_request */
  EIM__F_KEEPALIVE = 1u << 6,   /* the current request allows another */
  EIM__F_UPGRADED = 1u << 7,    /* eim_ws_accept succeeded */
  EIM__F_EOF = 1u << 8,         /* the peer shut its side */
  EIM__F_WS = 1u << 9,          /* a WebSocket now */
  EIM__W_CLOSING = 1u << 10,    /* the closing handshake has begun */
  EIM__W_CLOSE_SENT = 1u << 11, /* a close frame is in the output */
  EIM__W_CLOSE_RCVD = 1u << 12, /* the peer's close frame arrived */
  EIM__W_FRAME_OPEN = 1u << 13, /* wslay is inside a frame */
  EIM__W_FRAG_OPEN = 1u << 14,  /* wslay holds fragments of a message */
  EIM__W_IN_WSLAY = 1u << 15,   /* inside wslay_event_recv */
  EIM__W_READ_DONE = 1u << 16,  /* wslay stopped reading: input is discarded */
  EIM__F_HEADREQ = 1u << 17,    /* the request is HEAD: answer without body */
  EIM__F_DIRTY = 1u << 18,      /* in net->dirty, output to flush this turn */
  EIM__F_HELD = 1u << 19        /* in net->held, output to flush when net->coalesce fires */
};

/* Connections per peer address; the entry also holds the address text that
 * every connection from it points to. */
typedef struct eim__ip {
  struct eim__ip *next;
  unsigned count;          /* open connections */
  double tokens;           /* new-connection bucket */
  uint64_t at;             /* loop time of the last refill */
  char addr[46];
} eim__ip;

typedef struct eim__http eim__http;

/* Connections with output to write later, each holding a reference and
 * marked with the list's flag (EIM__F_DIRTY or EIM__F_HELD). */
typedef struct eim__flush_list {
  eim_http_conn **v;
  size_t n, cap;
} eim__flush_list;

struct eim_http_conn {
  uv_tcp_t tcp;
  eim_net *net;
  eim__link link;          /* in net->lists[list] */
  uint64_t mark;           /* ms when it entered the list (ws: last input) */
  eim__ip *ip;
  char *obuf;              /* output the kernel has not taken, not yet in a write */
  size_t olen, ocap;
  size_t inflight;         /* bytes in the uv_write under way */
  uint64_t last_write;     /* loop ms of the last flush that wrote */
  uint32_t flags;
  uint8_t list;
  unsigned refs;           /* 1 for the socket, plus eim_http_hold()s */
  eim__http *http;         /* NULL once upgraded */
  /* WebSocket state, unused before the upgrade. */
  wslay_event_context_ptr wslay;
  eim__link wlink;         /* in net->parsers while wslay is set */
  void *user_data;
  uint64_t id;
  uint64_t last_ping;
  const uint8_t *in;       /* input being handed to wslay */
  size_t in_len;
  uint64_t rx_fed, rx_framed; /* bytes given to wslay / in frames it began */
};

struct eim_ws {
  struct eim_http_conn c;
};

struct eim_net {
  uv_loop_t *loop;
  uv_tcp_t listener;
  uv_timer_t sweep;
  uv_idle_t kick;           /* runs deferred HTTP resumes */
  uv_timer_t coalesce;      /* flushes net->held */
  eim_net_limits lim;
  eim_net_handlers h;
  eim_net_stats stats;
  int port;
  int accepting;
  int stopping;             /* stop_accepting was called: no more keep-alive */
  int closing;              /* eim_net_close was called */
  unsigned handles;         /* handles whose close callback is still to come */
  void (*done)(void *arg);
  void *done_arg;
  eim__link lists[EIM__L_COUNT];
  eim__link resume;         /* eim__http waiting to parse their next request */
  eim__link parsers;        /* WebSockets holding a wslay context, by last input */
  eim__flush_list dirty;    /* output to flush when the loop turn ends */
  eim__flush_list held;     /* output waiting for net->coalesce */
  uint64_t next_ws_id;
  eim__ip **ips;            /* hash of peer addresses */
  size_t nips_buckets, nips;
  char rbuf[EIM__READ_BUF]; /* the loop-wide read buffer */
};

/* http.c, used by ws.c */
void eim__conn_set_list(eim_http_conn *c, int list);
/* Appends bytes to c's output; writes at once when nothing is queued.
 * Returns 0, or a negative libuv error (then c is being closed). */
int eim__conn_write(eim_http_conn *c, const uv_buf_t *bufs, unsigned nbufs);
/* Queues bytes without trying the socket; eim__conn_flush sends them. */
int eim__conn_append(eim_http_conn *c, const void *data, size_t len);
/* Queues bytes to be written when the loop turns: everything a connection
 * is sent during one turn leaves in one write. Returns as eim__conn_write. */
int eim__conn_write_later(eim_http_conn *c, const uv_buf_t *bufs, unsigned nbufs);
/* As eim__conn_write_later, but a connection written to less than
 * lim.ws_coalesce_ms ago waits until then (see eim_ws_send_event). */
int eim__conn_write_coalesced(eim_http_conn *c, const uv_buf_t *bufs, unsigned nbufs);
void eim__conn_flush(eim_http_conn *c);
/* Closes the socket now; on_ws_close and freeing follow from libuv. */
void eim__conn_close(eim_http_conn *c);
/* Closes once the output is written: shutdown, then wait for the peer's
 * EOF at most EIM__CLOSE_GRACE_MS. */
void eim__conn_linger(eim_http_conn *c);
size_t eim__conn_queued(const eim_http_conn *c);
/* After eim_ws_accept: drops the HTTP state and hands the bytes read after
 * the handshake to the WebSocket. */
void eim__http_upgraded(eim_http_conn *c);

/* ws.c, used by http.c */
void eim__ws_on_read(eim_http_conn *c, const char *data, size_t len);
void eim__ws_on_closed(eim_http_conn *c);
void eim__ws_sweep(eim_net *net, uint64_t now);
/* Sec-WebSocket-Accept for key: 28 characters and a NUL into out. */
void eim__ws_accept_key(const char *key, char out[29]);

#endif
