/* A loopback TCP client that lives on the same libuv loop as the server
 * under test, so that a fuzz target drives both from one thread: every wait
 * below turns the loop (server and client alike) until its condition holds.
 * Nothing here sleeps; each wait is bounded by a timer. */
#ifndef EIM_FUZZ_CLIENT_H
#define EIM_FUZZ_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct eim_fz_client {
  uv_loop_t *loop;
  uv_tcp_t tcp;
  uv_timer_t timer;
  int open;        /* tcp initialised, close not finished */
  int closing;
  int connected;   /* 1 once connected; a negative libuv error on failure */
  int eof;         /* the server closed its side, or the socket failed */
  int timed_out;
  char *in;        /* every byte read since the connect */
  size_t in_len, in_cap;
} eim_fz_client;

/* Initialises c on loop, once per client object; the client is then
 * reused for connection after connection, for the life of the process. */
void eim_fz_init(eim_fz_client *c, uv_loop_t *loop);

/* Connects to 127.0.0.1:port and waits for it. Returns 0 or a negative
 * libuv error. The client must be closed (or never opened). */
int eim_fz_connect(eim_fz_client *c, int port, uint64_t timeout_ms);
/* Starts connecting without waiting: writes may be queued at once, and
 * the connection completes while the loop turns for something else. */
int eim_fz_connect_start(eim_fz_client *c, int port);
/* Queues len bytes (copied) for writing. Returns 0 or a negative error. */
int eim_fz_write(eim_fz_client *c, const void *data, size_t len);
/* Half-closes: the server reads EOF after the bytes written before. */
int eim_fz_shutdown(eim_fz_client *c);

/* Turns the loop until done(c, arg) returns non-zero (done may be NULL),
 * the server closes, or timeout_ms passes. Returns 1 for done, 0 for
 * closed, -1 for the timeout. */
int eim_fz_wait(eim_fz_client *c, int (*done)(eim_fz_client *c, void *arg), void *arg,
                uint64_t timeout_ms);

/* Closes the socket with a reset (so no TIME_WAIT piles up over millions of
 * connections), waits for libuv to finish, and forgets what was read. */
void eim_fz_close(eim_fz_client *c);

/* Drops the first n bytes of c->in. */
void eim_fz_consume(eim_fz_client *c, size_t n);

#endif
