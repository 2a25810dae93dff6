/* chat, fanout and slowreader: groups of connections, one sender in each,
 * sending on a fixed open-loop schedule.
 *
 * Message i of the run is due at t0 + i / rate, whatever the replies do, and
 * goes to group i % M as that group's message n = i / M. Every message
 * carries its due time t (not the time it actually left, so a late
 * schedule shows up as latency instead of hiding: no coordinated omission)
 * and n. Receivers check each group's stream: a message seen twice is
 * duplicated; one that arrives after a higher ordering key (the seq for
 * chat, n for push) is reordered; one never seen by the end is lost.
 *
 * chat:       --pairs P single conversations, the first member sends
 *             conversation.chat; ack latency is what the target is about.
 *             With --port2 the receivers are on another node, so every
 *             delivery crosses the queue between nodes; delivery latency
 *             is then end to end.
 * fanout:     --groups M groups of --group-size G, push or chat.
 * slowreader: one group of G plus one member that stops reading after the
 *             handshake (with a small SO_RCVBUF); the server should drop it
 *             once its send queue passes ws_send_queue_bytes, and its RSS
 *             should stay bounded meanwhile. */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "lg.h"

typedef struct msgrec {
  uint32_t recv;
  uint8_t acked;
} msgrec;

typedef struct grp {
  char conv[160]; /* ExampleIM conversation id, or Centrifugo channel */
  long first;     /* its members are conns [first, first + size) */
  msgrec *m;
  long nm;
} grp;

typedef struct member {
  long group;
  int role; /* 0 sender, 1 receiver, 2 slow reader */
  uint8_t *seen;
  long long last_key;
} member;

enum { SENDER, RECEIVER, SLOW };

static struct {
  int chat, single, slow_mode;
  long M, G, nconns, receivers_per_group;
  lg_conn *cs;
  member *mb;
  grp *gs;
  lg_user *users;
  long total, sent, acked, errors, deliveries, expected, dup, reorder, bad, unknown_acks;
  long launched, ready, failed;
  int all_ready, done, finished_sending;
  uint64_t t0, t_last_delivery, nonce;
  double ns_per_msg;
  long rss_max;
  char first_error[256];
  char *pad;
  lg_hist ack, deliver, first, last;
  uv_timer_t send_timer, sample_timer;
} T;

static void check_done(void) {
  if (T.finished_sending && T.acked + T.errors >= T.total && T.deliveries >= T.expected)
    T.done = 1;
}

/* --- receiving ------------------------------------------------------------ */

static void receipt(lg_conn *c, long long n, long long key, long long t) {
  member *mb = &T.mb[c->idx];
  if (mb->role != RECEIVER) return;
  grp *g = &T.gs[mb->group];
  if (n < 0 || n >= g->nm || t <= 0) {
    T.bad++;
    return;
  }
  uint64_t now = lg_now_ns();
  if (mb->seen[n / 8] & (1u << (n % 8))) {
    T.dup++;
    return;
  }
  mb->seen[n / 8] |= (uint8_t)(1u << (n % 8));
  if (key <= mb->last_key) T.reorder++;
  else mb->last_key = key;
  uint64_t lat = now > (uint64_t)t ? now - (uint64_t)t : 0;
  T.deliveries++;
  T.t_last_delivery = now;
  lg_hist_add_ns(&T.deliver, lat);
  msgrec *m = &g->m[n];
  if (m->recv++ == 0) lg_hist_add_ns(&T.first, lat);
  if ((long)m->recv == T.receivers_per_group) lg_hist_add_ns(&T.last, lat);
  check_done();
}

static void ack(long long id, int is_error, const char *p, size_t n) {
  if (id < 0 || id >= T.sent) {
    T.unknown_acks++;
    return;
  }
  grp *g = &T.gs[id % T.M];
  msgrec *m = &g->m[id / T.M];
  if (m->acked) {
    T.unknown_acks++;
    return;
  }
  m->acked = 1;
  if (is_error) {
    T.errors++;
    /* Nothing will be delivered for a refused message. */
    T.expected -= T.receivers_per_group;
    if (!T.first_error[0])
      snprintf(T.first_error, sizeof T.first_error, "%.*s", (int)(n < 200 ? n : 200), p);
  } else {
    T.acked++;
    uint64_t due = T.t0 + (uint64_t)((double)id * T.ns_per_msg);
    uint64_t now = lg_now_ns();
    lg_hist_add_ns(&T.ack, now > due ? now - due : 0);
  }
  check_done();
}

static void eim_msg(lg_conn *c, const char *p, size_t n) {
  const char *end = p + n;
  const char *ty = lg_json_find(p, n, "type");
  if (ty == NULL || *ty != '"') return;
  ty++;
  const char *te = memchr(ty, '"', (size_t)(end - ty));
  if (te == NULL) return;
  size_t tl = (size_t)(te - ty);
#define IS(s) (tl == sizeof(s) - 1 && memcmp(ty, s, tl) == 0)
  if (IS("push") || IS("conversation.chat")) {
    int chat = IS("conversation.chat");
    const char *d = lg_json_find(p, n, "data");
    if (d == NULL) return;
    size_t dn = (size_t)(end - d);
    long long num, t, key;
    if (chat) {
      num = lg_json_int(lg_json_find(d, dn, "client_msg_id"), end);
      t = lg_json_int(lg_json_find(d, dn, "content"), end);
      key = lg_json_int(lg_json_find(d, dn, "seq"), end);
    } else {
      num = lg_json_int(lg_json_find(d, dn, "n"), end);
      t = lg_json_int(lg_json_find(d, dn, "t"), end);
      key = num;
    }
    receipt(c, num, key, t);
  } else if (IS("push.ack") || IS("conversation.chat.ack")) {
    ack(lg_json_int(lg_json_find(p, n, "id"), end), 0, p, n);
  } else if (IS("error")) {
    ack(lg_json_int(lg_json_find(p, n, "id"), end), 1, p, n);
  }
#undef IS
}

static void cf_msg(lg_conn *c, const char *p, size_t n) {
  const char *end = p + n;
  const char *pub = lg_json_find(p, n, "pub");
  if (pub != NULL) {
    size_t dn = (size_t)(end - pub);
    long long num = lg_json_int(lg_json_find(pub, dn, "n"), end);
    receipt(c, num, num, lg_json_int(lg_json_find(pub, dn, "t"), end));
    return;
  }
  long long id = lg_json_int(lg_json_find(p, n, "id"), end);
  if (id < 1000) return; /* the connect and subscribe replies */
  ack(id - 1000, lg_json_find(p, n, "error") != NULL, p, n);
}

static void launch_more(void);

static void on_msg(lg_conn *c, const char *p, size_t n) {
  int r = lg_peer_frame(c, p, n, lg_o.peer == LG_PEER_EIM ? eim_msg : cf_msg);
  if (r == 1) {
    T.ready++;
    if (T.ready == T.nconns) T.all_ready = 1;
    /* A Centrifugo connection frees its launch slot only here, after the
     * subscribe reply: without launching on, a busy peer whose 101s all came
     * before any reply left the rest never launched. */
    launch_more();
  } else if (r < 0) {
    lg_conn_abort(c);
  }
}

/* --- connecting ------------------------------------------------------------ */

static void on_open(lg_conn *c, int status) {
  if (status != 0) {
    if (!T.first_error[0])
      snprintf(T.first_error, sizeof T.first_error, "connect %ld: %s (HTTP %d %s)", c->idx,
               status == LG_EHANDSHAKE ? "handshake refused" : uv_strerror(status), c->http_status,
               c->why);
    T.failed++;
    T.all_ready = -1;
    return;
  }
  member *mb = &T.mb[c->idx];
  if (mb->role == SLOW) lg_conn_pause(c); /* after the 101, it reads no more */
  const char *channel = mb->role == SENDER ? NULL : T.gs[mb->group].conv;
  if (lg_peer_opened(c, channel)) {
    T.ready++;
    if (T.ready == T.nconns) T.all_ready = 1;
  }
  launch_more();
}

static void on_close(lg_conn *c) {
  if (c->was_open && !c->ready && T.all_ready == 0) {
    /* The WebSocket opened but the peer's own handshake never finished. */
    if (!T.first_error[0])
      snprintf(T.first_error, sizeof T.first_error, "connect %ld: no reply to the peer's handshake (%s)",
               c->idx, c->err ? uv_strerror(c->err) : "closed");
    T.failed++;
    T.all_ready = -1;
    return;
  }
  if (c->was_open && !T.finished_sending && T.mb[c->idx].role != SLOW && !T.first_error[0])
    snprintf(T.first_error, sizeof T.first_error, "connection %ld closed by the server (code %u)",
             c->idx, c->close_code);
}

static const lg_conn_cbs cbs = {on_open, on_msg, on_close};

static void launch_more(void) {
  while (T.launched < T.nconns && T.launched - T.ready - T.failed < lg_o.concurrency) {
    lg_conn *c = &T.cs[T.launched];
    lg_conn_init(c, &cbs, T.launched);
    if (T.mb[T.launched].role == SLOW) c->rcvbuf = (int)lg_o.rcvbuf;
    if (T.mb[T.launched].role != SENDER) c->port = lg_o.port2;
    lg_conn_open(c, T.users ? T.users[T.launched].token : NULL);
    T.launched++;
  }
}

/* --- sending ---------------------------------------------------------------- */

static void send_one(long i) {
  grp *g = &T.gs[i % T.M];
  long n = i / T.M;
  uint64_t due = T.t0 + (uint64_t)((double)i * T.ns_per_msg);
  char buf[512 + 8192];
  int len;
  if (lg_o.peer == LG_PEER_CENTRIFUGO)
    len = snprintf(buf, sizeof buf,
                   "{\"id\":%ld,\"publish\":{\"channel\":\"%s\",\"data\":{\"t\":%llu,\"n\":%ld,"
                   "\"p\":\"%s\"}}}",
                   i + 1000, g->conv, (unsigned long long)due, n, T.pad);
  else if (T.chat)
    len = snprintf(buf, sizeof buf,
                   "{\"type\":\"conversation.chat\",\"id\":%ld,\"data\":{\"conversation_id\":\"%s\","
                   "\"client_msg_id\":\"%ld-%llx\",\"content\":\"%llu%s\"}}",
                   i, g->conv, n, (unsigned long long)T.nonce, (unsigned long long)due, T.pad);
  else
    len = snprintf(buf, sizeof buf,
                   "{\"type\":\"push\",\"id\":%ld,\"data\":{\"conversation_id\":\"%s\","
                   "\"payload\":{\"t\":%llu,\"n\":%ld,\"p\":\"%s\"}}}",
                   i, g->conv, (unsigned long long)due, n, T.pad);
  T.sent++;
  if (lg_conn_send(&T.cs[g->first], buf, (size_t)len) != 0) {
    ack(i, 1, "sender connection closed", 24);
  }
}

static void send_tick(uv_timer_t *t) {
  uint64_t now = lg_now_ns();
  long due = now < T.t0 ? 0 : (long)((double)(now - T.t0) / T.ns_per_msg) + 1;
  if (due > T.total) due = T.total;
  while (T.sent < due) send_one(T.sent);
  if (T.sent == T.total) {
    uv_timer_stop(t);
    T.finished_sending = 1;
    check_done();
  }
}

static void sample_tick(uv_timer_t *t) {
  (void)t;
  lg_proc p;
  if (lg_o.pid && lg_proc_sample(lg_o.pid, &p) == 0 && p.rss_kib > T.rss_max) T.rss_max = p.rss_kib;
}

/* --- set-up ------------------------------------------------------------------- */

static void create_conversations(void) {
  size_t cap = (size_t)T.G * 160 + 256;
  char *body = malloc(cap);
  if (body == NULL) lg_die("out of memory");
  for (long g = 0; g < T.M; g++) {
    grp *gr = &T.gs[g];
    if (lg_o.peer == LG_PEER_CENTRIFUGO) {
      snprintf(gr->conv, sizeof gr->conv, "bench-g%ld", g);
      continue;
    }
    lg_user *owner = &T.users[gr->first];
    size_t off;
    if (T.single) {
      off = (size_t)snprintf(body, cap, "{\"type\":\"single\",\"peer\":\"%s\"}", T.users[gr->first + 1].id);
    } else {
      off = (size_t)snprintf(body, cap, "{\"type\":\"group\",\"name\":\"bench-%ld\",\"members\":[", g);
      long members = T.G + (T.slow_mode ? 1 : 0);
      for (long k = 1; k < members; k++)
        off += (size_t)snprintf(body + off, cap - off, "%s\"%s\"", k > 1 ? "," : "",
                                T.users[gr->first + k].id);
      snprintf(body + off, cap - off, "]}");
    }
    int rc = lg_create_conv(owner, body, gr->conv, sizeof gr->conv);
    if (rc != 0) lg_die("could not create conversation %ld: %d", g, rc);
  }
  free(body);
}

static int run(void) {
  T.chat = strcmp(lg_o.kind, "chat") == 0;
  long per_group = T.G + (T.slow_mode ? 1 : 0);
  T.nconns = T.M * per_group;
  T.receivers_per_group = T.G - 1;
  T.total = (long)(lg_o.rate * lg_o.duration);
  if (T.total < 1) T.total = 1;
  T.ns_per_msg = 1e9 / lg_o.rate;
  T.nonce = lg_now_ns();
  if ((T.pad = malloc((size_t)lg_o.payload + 1)) == NULL || lg_o.payload > 8000)
    lg_die("--payload is at most 8000");
  memset(T.pad, 'x', (size_t)lg_o.payload);
  T.pad[lg_o.payload] = 0;
  T.cs = calloc((size_t)T.nconns, sizeof *T.cs);
  T.mb = calloc((size_t)T.nconns, sizeof *T.mb);
  T.gs = calloc((size_t)T.M, sizeof *T.gs);
  if (T.cs == NULL || T.mb == NULL || T.gs == NULL) lg_die("out of memory");
  long per_msgs = T.total / T.M + 1;
  for (long g = 0; g < T.M; g++) {
    T.gs[g].first = g * per_group;
    T.gs[g].nm = per_msgs;
    if ((T.gs[g].m = calloc((size_t)per_msgs, sizeof(msgrec))) == NULL) lg_die("out of memory");
    for (long k = 0; k < per_group; k++) {
      member *mb = &T.mb[g * per_group + k];
      mb->group = g;
      mb->role = k == 0 ? SENDER : k == T.G ? SLOW : RECEIVER;
      mb->last_key = -1;
      if (mb->role == RECEIVER && (mb->seen = calloc((size_t)per_msgs / 8 + 1, 1)) == NULL)
        lg_die("out of memory");
    }
  }
  if (lg_o.peer == LG_PEER_EIM) lg_users_load(&T.users, T.nconns);
  create_conversations();
  lg_proc p0 = {0, -1}, p1 = {0, -1};
  lg_cpu c0, c1;
  if (lg_o.pid) lg_proc_sample(lg_o.pid, &p0);

  launch_more();
  uint64_t deadline = lg_now_ns() + 120000000000ull;
  while (T.all_ready == 0) {
    int never = 0;
    lg_run_until(&never, 0.5);
    lg_conn_sweep(T.cs, T.launched, 10);
    if (lg_now_ns() > deadline) {
      snprintf(T.first_error, sizeof T.first_error, "connections not ready after 120 s");
      T.all_ready = -1;
    }
  }
  if (T.all_ready < 0) {
    printf("{\"mode\":\"%s\",\"ok\":false,\"first_error\":", lg_o.mode);
    lg_json_str(stdout, T.first_error);
    printf("}\n");
    return 1;
  }
  /* Presence events of everybody coming online go out first. */
  lg_settle(0.3, 30);
  if (lg_o.pid) lg_proc_sample(lg_o.pid, &p0);
  lg_cpu_sample(&c0);
  T.rss_max = p0.rss_kib;
  T.expected = T.total * T.receivers_per_group;
  struct rusage ru0, ru1;
  getrusage(RUSAGE_SELF, &ru0);
  T.t0 = lg_now_ns() + 5000000;
  uv_timer_init(lg_loop, &T.send_timer);
  uv_timer_init(lg_loop, &T.sample_timer);
  uv_timer_start(&T.send_timer, send_tick, 1, 1);
  uv_timer_start(&T.sample_timer, sample_tick, 100, 100);
  while (!T.finished_sending) uv_run(lg_loop, UV_RUN_ONCE);
  uint64_t t_sent = lg_now_ns();
  int finished = lg_run_until(&T.done, lg_o.drain) == 0;
  if (lg_o.pid) lg_proc_sample(lg_o.pid, &p1);
  lg_cpu_sample(&c1);
  getrusage(RUSAGE_SELF, &ru1);
  sample_tick(NULL);
  uv_timer_stop(&T.sample_timer);

  /* The slow reader reads again: the server should have closed it. */
  int slow_closed = 0;
  unsigned slow_code = 0;
  int slow_eof = 0;
  long slow_open = 0;
  if (T.slow_mode) {
    for (long g = 0; g < T.M; g++) {
      lg_conn *c = &T.cs[g * per_group + T.G];
      lg_conn_resume(c);
    }
    uint64_t until = lg_now_ns() + 15000000000ull;
    for (;;) {
      slow_open = 0;
      for (long g = 0; g < T.M; g++) slow_open += T.cs[g * per_group + T.G].state != LG_IDLE;
      if (slow_open == 0 || lg_now_ns() > until) break;
      int never = 0;
      lg_run_until(&never, 0.05);
    }
    slow_closed = slow_open == 0;
    slow_code = T.cs[T.G].close_code;
    slow_eof = T.cs[T.G].got_eof;
  }

  double send_s = (double)(t_sent - T.t0) / 1e9;
  double span_s = (double)((T.t_last_delivery > t_sent ? T.t_last_delivery : t_sent) - T.t0) / 1e9;
  double cpu = lg_cpu_server(&c0, &c1);
  double own_cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec -
                           ru0.ru_stime.tv_sec) +
                  (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec -
                           ru0.ru_stime.tv_usec) / 1e6;
  long lost = T.expected - T.deliveries;
  long unacked = T.total - T.acked - T.errors;
  int ok = finished && lost == 0 && T.dup == 0 && T.reorder == 0 && T.errors == 0 && unacked == 0 &&
           T.bad == 0;
  long rss_growth = T.rss_max - p0.rss_kib;
  if (T.slow_mode)
    ok = ok && slow_closed && (double)rss_growth <= lg_o.rss_bound_mib * 1024;

  printf("{\"mode\":\"%s\",\"peer\":\"%s\",\"kind\":\"%s\",\"groups\":%ld,\"group_size\":%ld,"
         "\"rate\":%.1f,\"duration\":%.2f,\"payload\":%ld,\"ok\":%s,",
         lg_o.mode, lg_o.peer == LG_PEER_EIM ? "exampleim" : "centrifugo", lg_o.kind, T.M, T.G,
         lg_o.rate, lg_o.duration, lg_o.payload, ok ? "true" : "false");
  printf("\"sent\":%ld,\"acked\":%ld,\"errors\":%ld,\"unacked\":%ld,\"deliveries\":%ld,"
         "\"expected_deliveries\":%ld,\"lost\":%ld,\"duplicated\":%ld,\"reordered\":%ld,"
         "\"malformed\":%ld,\"unknown_acks\":%ld,\"drained\":%s,",
         T.sent, T.acked, T.errors, unacked, T.deliveries, T.expected, lost, T.dup, T.reorder,
         T.bad, T.unknown_acks, finished ? "true" : "false");
  printf("\"send_seconds\":%.3f,\"span_seconds\":%.3f,\"sent_per_s\":%.1f,\"delivered_per_s\":%.1f,"
         "\"server_cpu_s\":%.3f,\"server_cpu_util\":%.3f,\"delivered_per_server_cpu_s\":%.1f,"
         "\"loadgen_cpu_s\":%.3f,\"server_rss_before_kib\":%ld,\"server_rss_after_kib\":%ld,"
         "\"server_rss_max_kib\":%ld,",
         send_s, span_s, send_s > 0 ? (double)T.sent / send_s : 0,
         span_s > 0 ? (double)T.deliveries / span_s : 0, cpu, span_s > 0 ? cpu / span_s : 0,
         cpu > 0 ? (double)T.deliveries / cpu : 0, own_cpu, p0.rss_kib, p1.rss_kib, T.rss_max);
  if (T.slow_mode)
    printf("\"slow_reader_closed\":%s,\"slow_reader_close_code\":%u,\"slow_reader_eof\":%s,"
           "\"rss_growth_kib\":%ld,\"rss_bound_kib\":%.0f,",
           slow_closed ? "true" : "false", slow_code, slow_eof ? "true" : "false", rss_growth,
           lg_o.rss_bound_mib * 1024);
  lg_cpu_json(stdout, &c0, &c1);
  printf("\"first_error\":");
  lg_json_str(stdout, T.first_error);
  putchar(',');
  lg_hist_json(stdout, "ack", &T.ack);
  putchar(',');
  lg_hist_json(stdout, "deliver", &T.deliver);
  putchar(',');
  lg_hist_json(stdout, "first_recipient", &T.first);
  putchar(',');
  lg_hist_json(stdout, "last_recipient", &T.last);
  printf("}\n");
  return ok ? 0 : 1;
}

int lg_chat(void) {
  T.M = lg_o.pairs;
  T.G = 2;
  T.single = lg_o.peer == LG_PEER_EIM;
  lg_o.kind = "chat";
  return run();
}

int lg_fanout(void) {
  T.M = lg_o.groups;
  T.G = lg_o.group_size;
  if (T.G < 2) lg_die("--group-size is at least 2");
  return run();
}

int lg_slowreader(void) {
  T.M = 1;
  T.G = lg_o.group_size;
  T.slow_mode = 1;
  if (T.G < 2) lg_die("--group-size is at least 2");
  return run();
}
