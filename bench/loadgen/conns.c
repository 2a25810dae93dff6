/* idle and reconnect: many connections that only connect.
 *
 * idle opens --conns WebSockets, --concurrency handshakes at a time, the
 * users of --tokens taken round-robin (ExampleIM) or none (Centrifugo, in
 * insecure client mode). It stops launching after 200 failures in a row,
 * since the server has then reached a limit; the first error says which.
 * A handshake not done in 10 s fails (a server at its open-file limit can
 * leave connections in its accept backlog unanswered).
 * It samples the server's RSS before and after, holds the connections for
 * --hold seconds, and counts how many are still open.
 *
 * reconnect opens --conns the same way, then drops every TCP connection at
 * once and reconnects them all immediately; a failed attempt retries after
 * 100 ms. It reports the time until every connection is back. */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "lg.h"

typedef struct cstate {
  lg_conn *cs;
  lg_user *users;
  long nusers;
  long launched, ready, failed, failed_in_row, open_now, closed_by_server;
  int stop_launching, all_settled, phase; /* phase 1: reconnecting */
  lg_hist hs;
  char first_error[256];
  uint64_t t_drop, t_all_back;
  long back, retries;
  uv_timer_t *retry_timers;
  uv_timer_t sweep;
} cstate;

#define HANDSHAKE_TIMEOUT_S 10.0

static cstate S;

static void launch_more(void);

static void note_error(int status, const lg_conn *c) {
  if (S.first_error[0]) return;
  if (status == LG_EHANDSHAKE)
    snprintf(S.first_error, sizeof S.first_error, "HTTP %d instead of 101: %s", c->http_status,
             c->why);
  else if (status == LG_EPROTO)
    snprintf(S.first_error, sizeof S.first_error, "peer refused the connect command");
  else
    snprintf(S.first_error, sizeof S.first_error, "%s", uv_strerror(status));
}

static void check_settled(void) {
  if (S.phase == 0 && (S.launched == lg_o.conns || S.stop_launching) &&
      S.ready + S.failed == S.launched)
    S.all_settled = 1;
  if (S.phase == 1 && S.back == S.ready && S.t_all_back == 0) {
    S.t_all_back = lg_now_ns();
    S.all_settled = 1;
  }
}

static void became_ready(lg_conn *c) {
  lg_hist_add_ns(&S.hs, lg_now_ns() - c->t_start);
  S.open_now++;
  if (S.phase == 0) {
    S.ready++;
    S.failed_in_row = 0;
    launch_more();
  } else {
    S.back++;
  }
  check_settled();
}

static void retry_cb(uv_timer_t *t) {
  lg_conn *c = t->data;
  lg_conn_open(c, S.nusers ? S.users[c->idx % S.nusers].token : NULL);
}

static void on_open(lg_conn *c, int status) {
  if (status != 0) {
    note_error(status, c);
    if (S.phase == 1) {
      S.retries++;
      uv_timer_start(&S.retry_timers[c->idx], retry_cb, 100, 0);
      return;
    }
    S.failed++;
    if (++S.failed_in_row >= 200) S.stop_launching = 1;
    launch_more();
    check_settled();
    return;
  }
  if (lg_peer_opened(c, NULL)) became_ready(c);
}

static void ignore_msg(lg_conn *c, const char *p, size_t n) {
  (void)c;
  (void)p;
  (void)n;
}

static void on_msg(lg_conn *c, const char *p, size_t n) {
  int r = lg_peer_frame(c, p, n, ignore_msg);
  if (r == 1) became_ready(c);
  if (r < 0) lg_conn_abort(c);
}

static void on_close(lg_conn *c) {
  if (!c->was_open) return;
  if (!c->ready && S.phase == 0) {
    /* The WebSocket opened but the peer's own handshake never finished. */
    note_error(c->err ? c->err : LG_EPROTO, c);
    S.failed++;
    launch_more();
    check_settled();
    return;
  }
  if (c->ready) S.open_now--;
  if (S.phase == 1 && S.t_drop != 0) {
    /* Dropped on purpose: come back at once, as every client would. */
    c->ready = 0;
    lg_conn_open(c, S.nusers ? S.users[c->idx % S.nusers].token : NULL);
    return;
  }
  if (c->ready) S.closed_by_server++;
  c->ready = 0;
}

static const lg_conn_cbs cbs = {on_open, on_msg, on_close};

static void launch_more(void) {
  while (!S.stop_launching && S.launched < lg_o.conns &&
         S.launched - S.ready - S.failed < lg_o.concurrency) {
    lg_conn *c = &S.cs[S.launched];
    lg_conn_init(c, &cbs, S.launched);
    S.launched++;
    lg_conn_open(c, S.nusers ? S.users[c->idx % S.nusers].token : NULL);
  }
}

static void sweep_cb(uv_timer_t *t) {
  (void)t;
  lg_conn_sweep(S.cs, S.launched, HANDSHAKE_TIMEOUT_S);
}

static void open_all(void) {
  if ((S.cs = calloc((size_t)lg_o.conns + 1, sizeof *S.cs)) == NULL) lg_die("out of memory");
  if (lg_o.peer == LG_PEER_EIM) S.nusers = lg_users_load(&S.users, 1);
  uv_timer_init(lg_loop, &S.sweep);
  uv_timer_start(&S.sweep, sweep_cb, 500, 500);
  launch_more();
  check_settled();
  lg_run_until(&S.all_settled, 600);
}

static void print_common(const char *mode, const lg_proc *p0) {
  printf("{\"mode\":\"%s\",\"peer\":\"%s\",\"conns_wanted\":%ld,\"opened\":%ld,\"failed\":%ld,"
         "\"users\":%ld,\"sources\":%d,",
         mode, lg_o.peer == LG_PEER_EIM ? "exampleim" : "centrifugo", lg_o.conns, S.ready,
         S.failed, S.nusers, lg_o.sources);
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  printf("\"loadgen_nofile\":%llu,\"first_error\":", (unsigned long long)rl.rlim_cur);
  lg_json_str(stdout, S.first_error);
  printf(",\"server_rss_before_kib\":%ld,", p0->rss_kib);
}

int lg_idle(void) {
  lg_proc p0 = {0, -1}, p1 = {0, -1};
  if (lg_o.pid) lg_proc_sample(lg_o.pid, &p0);
  uint64_t t0 = lg_now_ns();
  open_all();
  double open_s = (double)(lg_now_ns() - t0) / 1e9;
  /* Let the server finish its per-connection work (sessions, presence). */
  lg_settle(0.5, 10);
  if (lg_o.pid) lg_proc_sample(lg_o.pid, &p1);
  int never = 0;
  lg_run_until(&never, lg_o.hold);
  lg_proc p2 = p1;
  if (lg_o.pid) lg_proc_sample(lg_o.pid, &p2);
  print_common("idle", &p0);
  double per = S.ready > 0 && p1.rss_kib >= 0 ? (double)(p1.rss_kib - p0.rss_kib) * 1024.0 / (double)S.ready : 0;
  printf("\"server_rss_after_kib\":%ld,\"server_rss_after_hold_kib\":%ld,"
         "\"rss_bytes_per_conn\":%.1f,\"open_seconds\":%.3f,\"hold_seconds\":%.1f,"
         "\"open_after_hold\":%ld,\"closed_by_server\":%ld,\"stopped_early\":%s,",
         p1.rss_kib, p2.rss_kib, per, open_s, lg_o.hold, S.open_now, S.closed_by_server,
         S.stop_launching ? "true" : "false");
  lg_hist_json(stdout, "handshake", &S.hs);
  printf("}\n");
  return S.ready > 0 ? 0 : 1;
}

int lg_reconnect(void) {
  lg_proc p0 = {0, -1};
  if (lg_o.pid) lg_proc_sample(lg_o.pid, &p0);
  open_all();
  lg_settle(0.5, 10);
  long want = S.ready;
  memset(&S.hs, 0, sizeof S.hs);
  if ((S.retry_timers = calloc((size_t)lg_o.conns + 1, sizeof *S.retry_timers)) == NULL)
    lg_die("out of memory");
  for (long i = 0; i < S.launched; i++) {
    uv_timer_init(lg_loop, &S.retry_timers[i]);
    S.retry_timers[i].data = &S.cs[i];
  }
  S.phase = 1;
  S.all_settled = 0;
  S.first_error[0] = 0;
  lg_proc c0 = {0, -1}, c1 = {0, -1};
  if (lg_o.pid) lg_proc_sample(lg_o.pid, &c0);
  S.t_drop = lg_now_ns();
  for (long i = 0; i < S.launched; i++)
    if (S.cs[i].ready) lg_conn_abort(&S.cs[i]);
  lg_run_until(&S.all_settled, lg_o.drain > 0 ? lg_o.drain : 60);
  if (lg_o.pid) lg_proc_sample(lg_o.pid, &c1);
  print_common("reconnect", &p0);
  printf("\"reconnected\":%ld,\"all_back\":%s,\"seconds_until_all_back\":%.3f,\"retries\":%ld,"
         "\"server_cpu_s\":%.3f,",
         S.back, S.back == want && want > 0 ? "true" : "false",
         S.t_all_back ? (double)(S.t_all_back - S.t_drop) / 1e9 : -1.0, S.retries,
         c1.cpu_s - c0.cpu_s);
  lg_hist_json(stdout, "handshake", &S.hs);
  printf("}\n");
  return S.back == want && want > 0 ? 0 : 1;
}
