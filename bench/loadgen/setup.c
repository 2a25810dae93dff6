/* setup: creates --users users (PREFIX0, PREFIX1, ...) and logs each in,
 * --concurrency at a time, then writes "user_id token" lines to --out in
 * index order. A user that exists already (409) is logged in as it is, so
 * a set-up can be repeated on the same data directory. Password hashing is
 * the server's slow part here (argon2id, twice a user). */
#include <stdlib.h>
#include <string.h>

#include "lg.h"

#define PASSWORD "bench-password-1"

typedef struct suser {
  long i;
  int step; /* 0 create, 1 login */
  char *id, *token;
} suser;

static suser *us;
static long next_user, finished, failed;
static int all_done;
static char first_error[256];

static void start(suser *u);

static char *json_string_at(const char *body, size_t n, const char *key) {
  const char *v = lg_json_find(body, n, key);
  if (v == NULL || *v != '"') return NULL;
  const char *e = memchr(v + 1, '"', n - (size_t)(v + 1 - body));
  if (e == NULL) return NULL;
  return strndup(v + 1, (size_t)(e - v - 1));
}

static void next(void) {
  if (finished == lg_o.users) {
    all_done = 1;
    return;
  }
  if (next_user < lg_o.users) start(&us[next_user++]);
}

static void fail(suser *u, int status, const char *body, size_t n) {
  if (failed++ == 0)
    snprintf(first_error, sizeof first_error, "user %ld step %d: status %d %.*s", u->i, u->step,
             status, (int)(n < 160 ? n : 160), body);
  finished++;
  next();
}

static void done_cb(void *arg, int status, const char *body, size_t n) {
  suser *u = arg;
  if (u->step == 0) {
    if (status != 201 && status != 409) {
      fail(u, status, body, n);
      return;
    }
    u->step = 1;
    start(u);
    return;
  }
  if (status != 200 || (u->token = json_string_at(body, n, "token")) == NULL ||
      (u->id = json_string_at(body, n, "user_id")) == NULL) {
    fail(u, status, body, n);
    return;
  }
  finished++;
  next();
}

static void start(suser *u) {
  char body[256];
  snprintf(body, sizeof body, "{\"username\":\"%s%ld\",\"password\":\"" PASSWORD "\"}",
           lg_o.prefix, u->i);
  const char *path = u->step == 0 ? "/api/v1/users" : "/api/v1/login";
  int rc = lg_http("POST", path, NULL, body, done_cb, u);
  if (rc != 0) fail(u, rc, "", 0);
}

int lg_setup(void) {
  if (lg_o.out == NULL) lg_die("setup needs --out FILE");
  if ((us = calloc((size_t)lg_o.users + 1, sizeof *us)) == NULL) lg_die("out of memory");
  for (long i = 0; i < lg_o.users; i++) us[i].i = i;
  uint64_t t0 = lg_now_ns();
  if (lg_o.users == 0) all_done = 1;
  for (long k = 0; k < lg_o.concurrency && next_user < lg_o.users; k++) start(&us[next_user++]);
  lg_run_until(&all_done, 3600);
  double secs = (double)(lg_now_ns() - t0) / 1e9;
  int rc = failed == 0 && all_done ? 0 : 1;
  if (rc == 0) {
    FILE *f = fopen(lg_o.out, "w");
    if (f == NULL) lg_die("cannot write %s", lg_o.out);
    for (long i = 0; i < lg_o.users; i++) fprintf(f, "%s %s\n", us[i].id, us[i].token);
    if (fclose(f) != 0) rc = 1;
  }
  printf("{\"mode\":\"setup\",\"users\":%ld,\"failed\":%ld,\"seconds\":%.3f,\"first_error\":",
         lg_o.users, failed, secs);
  lg_json_str(stdout, first_error);
  printf(",\"ok\":%s}\n", rc == 0 ? "true" : "false");
  return rc;
}
