/* store-mysql.reconnect: MariaDB is stopped and started again under open
 * connections (tests/services/down and up). While it is down every call
 * answers EIM_EUNAVAIL within the connect timeout; once it is back the
 * next call succeeds, on a connection used during the outage as well as on
 * one left idle through it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "th.h"

static th_plugin P;

static double now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int service(const char *services, const char *verb) {
  char cmd[4096];

  snprintf(cmd, sizeof cmd, "'%s/%s' mariadb >/dev/null", services, verb);
  return system(cmd);
}

static int send_one(void *conn, const char *conv, const char *sender, const char *cmid,
                    eim_err *err) {
  eim_arena *a = th_arena_new();
  eim_msg m = {.conversation_id = conv, .sender = sender, .client_msg_id = cmid,
               .content = cmid, .content_len = strlen(cmid), .created_at = th_now()};
  int rc = P.ops->append(conn, &m, 1, a, err);

  if (rc == EIM_OK && m.status != EIM_OK)
    rc = m.status;
  th_arena_free(a);
  return rc;
}

int th_main_reconnect(const char *plugin, const char *services) {
  const char *extra[] = {"connect_timeout", "2", "io_timeout", "5", NULL};
  eim_arena *a = th_arena_new();
  void *state = NULL, *busy, *idle, *late = NULL;
  const char *u1, *u2, *others[1], *g;
  eim_user u;
  eim_err err = {0};
  double t0;
  int rc, i;

  th_load(&P, plugin);
  busy = th_open(&P, &state, extra);
  TH_OK(P.ops->conn_open(state, &idle, &err), &err);
  u1 = th_user(&P, busy, a, "r1");
  u2 = th_user(&P, busy, a, "r2");
  others[0] = u2;
  g = th_group(&P, busy, a, u1, others, 1);
  TH_OK(send_one(busy, g, u1, "before", &err), &err);
  TH_OK(send_one(idle, g, u2, "before-idle", &err), &err);

  TH_CHECK(service(services, "down") == 0, "tests/services/down mariadb failed");
  for (i = 0; i < 3; i++) {
    t0 = now_s();
    rc = P.ops->ping(busy, &err);
    TH_CHECK(rc == EIM_EUNAVAIL, "ping while down: %d", rc);
    rc = P.ops->user_by_id(busy, u1, &u, a, &err);
    TH_CHECK(rc == EIM_EUNAVAIL, "user_by_id while down: %d", rc);
    rc = send_one(busy, g, u1, "during", &err);
    TH_CHECK(rc == EIM_EUNAVAIL && strstr(err.msg, getenv("MYSQL_PORT")),
             "append while down: %d '%s'", rc, err.msg);
    TH_CHECK(now_s() - t0 < 3, "three calls while down took %.1fs", now_s() - t0);
  }
  rc = P.ops->conn_open(state, &late, &err);
  TH_CHECK(rc == EIM_EUNAVAIL && strstr(err.msg, getenv("MYSQL_PORT")),
           "conn_open while down: %d '%s'", rc, err.msg);

  TH_CHECK(service(services, "up") == 0, "tests/services/up mariadb failed");
  TH_OK(P.ops->user_by_id(busy, u1, &u, a, &err), &err);
  TH_OK(send_one(busy, g, u1, "after", &err), &err);
  TH_OK(send_one(idle, g, u2, "after-idle", &err), &err);
  TH_OK(P.ops->ping(idle, &err), &err);
  /* "during" never landed: seqs 1..4 are before, before-idle, after,
   * after-idle. */
  th_check_gapless(&P, busy, g, 4);

  P.ops->conn_close(state, busy);
  P.ops->conn_close(state, idle);
  P.desc->fini(state);
  th_arena_free(a);
  printf("store-mysql.reconnect: %s\n", th_failures ? "FAILED" : "passed");
  return th_failures ? 1 : 0;
}
