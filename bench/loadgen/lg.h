/* The load generator's shared declarations: options, histograms, process
 * sampling, the WebSocket client connection and the small HTTP client. */
#ifndef LG_H
#define LG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>
#include <wslay/wslay.h>

/* --- options ---------------------------------------------------------------- */

#define LG_MAX_PIDS 4
#define LG_MAX_WATCH 8

enum lg_peer { LG_PEER_EIM, LG_PEER_CENTRIFUGO };

typedef struct lg_opts {
  const char *mode;
  enum lg_peer peer;
  const char *host; /* server address, IPv4 */
  int port;
  int port2;        /* chat, fanout: receivers connect here (a second node); 0: port */
  int sources;      /* source addresses 127.0.0.2 .. 127.0.0.(1+sources) */
  const char *tokens;     /* file of "user_id token" lines */
  const char *out;        /* setup: where to write that file */
  const char *prefix;     /* setup: username prefix */
  int pid;                /* server process, for /proc sampling; 0: none */
  int pids[LG_MAX_PIDS];  /* every --pid: server processes, CPU summed */
  int npids;
  int watch[LG_MAX_WATCH]; /* --watch: other processes (database, broker), CPU each */
  int nwatch;
  long users, conns, pairs, groups, group_size, concurrency;
  double rate, duration, drain, hold;
  const char *kind;       /* fanout: push | chat */
  long payload;           /* bytes of padding in each message */
  long rcvbuf;            /* slowreader: SO_RCVBUF of the slow connection */
  double rss_bound_mib;   /* slowreader: allowed server RSS growth */
} lg_opts;

extern lg_opts lg_o;
extern uv_loop_t *lg_loop;

/* Monotonic time in nanoseconds (CLOCK_MONOTONIC, shared by every process on
 * the machine, so one process's timestamps could be read by another). */
uint64_t lg_now_ns(void);

/* --- histogram -------------------------------------------------------------- */

/* Log-linear buckets of microseconds: 32 linear sub-buckets per power of two,
 * so any recorded value is reported within about 3 %. Values above ~70 min
 * land in the last bucket. */
#define LG_HIST_SUB 32
#define LG_HIST_MAG 33
typedef struct lg_hist {
  uint64_t count, max_us, sum_us;
  uint64_t b[LG_HIST_MAG * LG_HIST_SUB];
} lg_hist;

void lg_hist_add_ns(lg_hist *h, uint64_t ns);
/* The value in microseconds at quantile q (0..1), the bucket's upper edge. */
double lg_hist_q(const lg_hist *h, double q);
/* Writes {"count":..,"p50_ms":..,"p99_ms":..,"p999_ms":..,"max_ms":..}. */
void lg_hist_json(FILE *f, const char *name, const lg_hist *h);

/* --- /proc sampling ------------------------------------------------------- */

typedef struct lg_proc {
  double cpu_s;   /* user + system CPU seconds */
  long rss_kib;   /* VmRSS */
} lg_proc;

/* Reads pid's CPU time and RSS; returns 0, or -1 if the process is gone. */
int lg_proc_sample(int pid, lg_proc *out);

/* CPU seconds of every --pid and --watch process at one moment. */
typedef struct lg_cpu {
  double pid[LG_MAX_PIDS], watch[LG_MAX_WATCH];
} lg_cpu;

void lg_cpu_sample(lg_cpu *out);
/* The server's CPU seconds between a and b: every --pid summed. */
double lg_cpu_server(const lg_cpu *a, const lg_cpu *b);
/* Writes "server_cpu_s_each":[..],"watch_cpu_s":[..], for a to b, in the
 * order the options were given (-1 for a process that was gone). */
void lg_cpu_json(FILE *f, const lg_cpu *a, const lg_cpu *b);

/* --- WebSocket client connection ------------------------------------------ */

typedef struct lg_conn lg_conn;

/* A scenario's callbacks. on_open: the handshake finished (status 0) or the
 * connection failed before it (negative uv or LG_E* code, the connection is
 * closed afterwards). on_msg: one text message. on_close: the TCP handle is
 * closed; the connection may be reopened with lg_conn_open. */
typedef struct lg_conn_cbs {
  void (*on_open)(lg_conn *c, int status);
  void (*on_msg)(lg_conn *c, const char *p, size_t n);
  void (*on_close)(lg_conn *c);
} lg_conn_cbs;

#define LG_EHANDSHAKE (-10001) /* the server answered, but not 101 */
#define LG_EPROTO (-10002)     /* a malformed frame or reply */

enum lg_conn_state { LG_IDLE, LG_CONNECTING, LG_UPGRADING, LG_OPEN, LG_CLOSING };

struct lg_conn {
  uv_tcp_t tcp;
  uv_connect_t creq;
  wslay_event_context_ptr ws;
  enum lg_conn_state state;
  const lg_conn_cbs *cbs;
  const char *token;     /* borrowed */
  long idx;              /* the scenario's index */
  void *ud;
  char *hbuf;            /* the handshake response as it arrives */
  size_t hlen;
  const uint8_t *rp;     /* input being handed to wslay */
  size_t rn;
  char *ob;              /* output collected from wslay, then written */
  size_t on, ocap;
  size_t wpending;       /* bytes in uv_write requests not yet done */
  uint64_t t_start;      /* when lg_conn_open began */
  int http_status;
  char why[128];         /* the start of a refused upgrade's response body */
  uint16_t close_code;   /* from the server's close frame; 0: none seen */
  int got_eof;
  int err;               /* why the handshake failed */
  int was_open;          /* in on_close: the handshake had finished */
  int rcvbuf;            /* SO_RCVBUF to set before connecting; 0: default */
  int paused;
  int ready;             /* the peer's own handshake is done too */
  int port;              /* the server's port; 0: lg_o.port */
  int setup_replies;     /* Centrifugo: replies still awaited (connect, subscribe) */
};

void lg_conn_init(lg_conn *c, const lg_conn_cbs *cbs, long idx);
/* Connects from the source address chosen by c->idx and upgrades; the path
 * is /ws?token=... for ExampleIM and /connection/websocket for Centrifugo.
 * Returns -1 if c is in use; every other outcome comes through on_open. */
int lg_conn_open(lg_conn *c, const char *token);
/* Queues one text message; returns 0 or -1 if the connection is not open. */
int lg_conn_send(lg_conn *c, const char *p, size_t n);
/* Closes the TCP connection at once (no close handshake: a network drop). */
void lg_conn_abort(lg_conn *c);
/* Aborts every connection of cs[0..n) still in its handshake (the peer's
 * included) after timeout_s: a server at its open-file limit may leave new
 * connections in its accept backlog forever. They fail with UV_ETIMEDOUT. */
void lg_conn_sweep(lg_conn *cs, long n, double timeout_s);
void lg_conn_pause(lg_conn *c);
void lg_conn_resume(lg_conn *c);

/* --- the peer's protocol ---------------------------------------------------- */

/* After the WebSocket opened: ExampleIM is ready at once (returns 1);
 * Centrifugo gets its connect command, and a subscribe to channel when
 * channel is not NULL, and is ready when their replies arrive (returns 0). */
int lg_peer_opened(lg_conn *c, const char *channel);
/* Splits one frame into the peer's messages (Centrifugo batches them, one
 * per line), answers Centrifugo's pings, and passes the others to fn.
 * Returns 1 if this frame completed the handshake, -1 if the peer refused
 * it (the message is on stderr once), else 0. */
typedef void (*lg_peer_msg_fn)(lg_conn *c, const char *p, size_t n);
int lg_peer_frame(lg_conn *c, const char *p, size_t n, lg_peer_msg_fn fn);

/* --- HTTP (setup and conversations) ------------------------------------ */

/* Runs one HTTP/1.1 request to the server on the loop; cb gets the status
 * (negative on a transport error) and the body, which it does not own. */
typedef void (*lg_http_cb)(void *arg, int status, const char *body, size_t n);
int lg_http(const char *method, const char *path, const char *token, const char *body,
            lg_http_cb cb, void *arg);

/* --- tokens ------------------------------------------------------------------- */

typedef struct lg_user {
  char *id, *token;
} lg_user;

/* Reads lg_o.tokens; returns the number of users (at least need) or -1. */
long lg_users_load(lg_user **out, long need);

/* --- scenarios ------------------------------------------------------------- */

int lg_setup(void);
int lg_idle(void);
int lg_chat(void);
int lg_fanout(void);
int lg_reconnect(void);
int lg_slowreader(void);

/* Helpers shared by the scenarios. */
void lg_die(const char *fmt, ...);
/* Runs the loop until *flag is set or timeout_s passes; returns 0 if set. */
int lg_run_until(volatile int *flag, double timeout_s);
/* Runs the loop until no message arrived for quiet_s (at most max_s). */
void lg_settle(double quiet_s, double max_s);
extern uint64_t lg_last_msg_ns;
/* Finds "key": in a JSON text and returns a pointer to its value, or NULL. */
const char *lg_json_find(const char *p, size_t n, const char *key);
/* Reads an integer value at p (as from lg_json_find), or -1. */
long long lg_json_int(const char *p, const char *end);
void lg_json_str(FILE *f, const char *s);
/* Creates a conversation with owner's token; on success copies its id and
 * returns 0, else minus the HTTP status (or a negative uv error). */
int lg_create_conv(const lg_user *owner, const char *json_body, char *id_out, size_t cap);

#endif
