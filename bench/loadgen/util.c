/* Time, histograms, /proc sampling and the loop helpers the scenarios share. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lg.h"

uint64_t lg_last_msg_ns;

uint64_t lg_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void lg_die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("loadgen: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

/* --- histogram ---------------------------------------------------------------- */

static size_t hist_index(uint64_t us) {
  if (us < LG_HIST_SUB) return (size_t)us;
  int mag = 63 - __builtin_clzll(us); /* us in [2^mag, 2^(mag+1)) */
  int shift = mag - 5;                /* 32 = 2^5 sub-buckets */
  size_t i = (size_t)(mag - 4) * LG_HIST_SUB + ((us >> shift) - LG_HIST_SUB);
  return i < LG_HIST_MAG * LG_HIST_SUB ? i : LG_HIST_MAG * LG_HIST_SUB - 1;
}

static double hist_upper(size_t i) {
  if (i < LG_HIST_SUB) return (double)i + 1;
  size_t mag = i / LG_HIST_SUB + 4, sub = i % LG_HIST_SUB;
  return (double)((LG_HIST_SUB + sub + 1) << (mag - 5));
}

void lg_hist_add_ns(lg_hist *h, uint64_t ns) {
  uint64_t us = ns / 1000;
  h->b[hist_index(us)]++;
  h->count++;
  h->sum_us += us;
  if (us > h->max_us) h->max_us = us;
}

double lg_hist_q(const lg_hist *h, double q) {
  if (h->count == 0) return 0;
  uint64_t want = (uint64_t)(q * (double)h->count + 0.5), seen = 0;
  if (want < 1) want = 1;
  for (size_t i = 0; i < LG_HIST_MAG * LG_HIST_SUB; i++) {
    seen += h->b[i];
    if (seen >= want) {
      double u = hist_upper(i);
      return u < (double)h->max_us ? u : (double)h->max_us;
    }
  }
  return (double)h->max_us;
}

void lg_hist_json(FILE *f, const char *name, const lg_hist *h) {
  fprintf(f,
          "\"%s\":{\"count\":%llu,\"mean_ms\":%.3f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
          "\"p999_ms\":%.3f,\"max_ms\":%.3f}",
          name, (unsigned long long)h->count,
          h->count ? (double)h->sum_us / (double)h->count / 1000 : 0, lg_hist_q(h, 0.5) / 1000,
          lg_hist_q(h, 0.99) / 1000, lg_hist_q(h, 0.999) / 1000, (double)h->max_us / 1000);
}

/* --- /proc ------------------------------------------------------------------------ */

int lg_proc_sample(int pid, lg_proc *out) {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  /* The command name may hold spaces and parentheses: fields count from
   * the last ')'. utime and stime are fields 14 and 15. */
  char *p = strrchr(buf, ')');
  if (p == NULL) return -1;
  unsigned long long ut = 0, st = 0;
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
    return -1;
  out->cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  if ((f = fopen(path, "r")) == NULL) return -1;
  out->rss_kib = -1;
  while (fgets(buf, sizeof buf, f))
    if (strncmp(buf, "VmRSS:", 6) == 0) out->rss_kib = strtol(buf + 6, NULL, 10);
  fclose(f);
  return 0;
}

void lg_cpu_sample(lg_cpu *out) {
  lg_proc p;
  for (int i = 0; i < lg_o.npids; i++)
    out->pid[i] = lg_proc_sample(lg_o.pids[i], &p) == 0 ? p.cpu_s : -1;
  for (int i = 0; i < lg_o.nwatch; i++)
    out->watch[i] = lg_proc_sample(lg_o.watch[i], &p) == 0 ? p.cpu_s : -1;
}

/* A process gone by b (or already at a) counts as nothing rather than as a
 * negative time. */
static double cpu_delta(double a, double b) {
  return a < 0 || b < 0 ? -1 : b - a;
}

double lg_cpu_server(const lg_cpu *a, const lg_cpu *b) {
  double sum = 0;
  for (int i = 0; i < lg_o.npids; i++) {
    double d = cpu_delta(a->pid[i], b->pid[i]);
    if (d > 0) sum += d;
  }
  return sum;
}

void lg_cpu_json(FILE *f, const lg_cpu *a, const lg_cpu *b) {
  fputs("\"server_cpu_s_each\":[", f);
  for (int i = 0; i < lg_o.npids; i++)
    fprintf(f, "%s%.3f", i ? "," : "", cpu_delta(a->pid[i], b->pid[i]));
  fputs("],\"watch_cpu_s\":[", f);
  for (int i = 0; i < lg_o.nwatch; i++)
    fprintf(f, "%s%.3f", i ? "," : "", cpu_delta(a->watch[i], b->watch[i]));
  fputs("],", f);
}

/* --- loop helpers --------------------------------------------------------------- */

static void wake_cb(uv_timer_t *t) { (void)t; }

int lg_run_until(volatile int *flag, double timeout_s) {
  uint64_t end = lg_now_ns() + (uint64_t)(timeout_s * 1e9);
  uv_timer_t t;
  uv_timer_init(lg_loop, &t);
  uv_timer_start(&t, wake_cb, 10, 10); /* so the deadline is checked */
  while (!*flag && lg_now_ns() < end) uv_run(lg_loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(lg_loop, UV_RUN_NOWAIT);
  return *flag ? 0 : -1;
}

void lg_settle(double quiet_s, double max_s) {
  uint64_t start = lg_now_ns(), end = start + (uint64_t)(max_s * 1e9);
  uint64_t quiet = (uint64_t)(quiet_s * 1e9);
  lg_last_msg_ns = start;
  uv_timer_t t;
  uv_timer_init(lg_loop, &t);
  uv_timer_start(&t, wake_cb, 10, 10);
  for (;;) {
    uint64_t now = lg_now_ns();
    if (now >= end || now - lg_last_msg_ns >= quiet) break;
    uv_run(lg_loop, UV_RUN_ONCE);
  }
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(lg_loop, UV_RUN_NOWAIT);
}

/* --- JSON, by hand: the frames are the server's compact output, and the
 * fields read here hold numbers or plain ids we chose. ------------------- */

const char *lg_json_find(const char *p, size_t n, const char *key) {
  char pat[64];
  int k = snprintf(pat, sizeof pat, "\"%s\":", key);
  const char *hit = memmem(p, n, pat, (size_t)k);
  return hit ? hit + k : NULL;
}

long long lg_json_int(const char *p, const char *end) {
  if (p == NULL) return -1;
  if (p < end && *p == '"') p++; /* ids we chose may be strings of digits */
  long long v = 0;
  int any = 0;
  while (p < end && *p >= '0' && *p <= '9') {
    v = v * 10 + (*p++ - '0');
    any = 1;
  }
  return any ? v : -1;
}

void lg_json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; s && *s; s++) {
    if (*s == '"' || *s == '\\') fputc('\\', f);
    if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
    else fputc(*s, f);
  }
  fputc('"', f);
}

/* --- users ---------------------------------------------------------------------- */

long lg_users_load(lg_user **out, long need) {
  if (lg_o.tokens == NULL) lg_die("--tokens FILE is required");
  FILE *f = fopen(lg_o.tokens, "r");
  if (f == NULL) lg_die("%s: %s", lg_o.tokens, strerror(errno));
  lg_user *u = NULL;
  long n = 0, cap = 0;
  char id[256], tok[4096];
  while (fscanf(f, "%255s %4095s", id, tok) == 2) {
    if (n == cap) {
      cap = cap ? cap * 2 : 256;
      if ((u = realloc(u, (size_t)cap * sizeof *u)) == NULL) lg_die("out of memory");
    }
    u[n].id = strdup(id);
    u[n].token = strdup(tok);
    n++;
  }
  fclose(f);
  if (n < need) lg_die("%s holds %ld users, this run needs %ld", lg_o.tokens, n, need);
  *out = u;
  return n;
}

typedef struct conv_req {
  int done, status;
  char *id;
  size_t cap;
} conv_req;

static void conv_done(void *arg, int status, const char *body, size_t n) {
  conv_req *r = arg;
  r->status = status;
  const char *v = lg_json_find(body, n, "conversation_id");
  if (v && *v == '"') {
    const char *e = memchr(v + 1, '"', n - (size_t)(v + 1 - body));
    if (e && (size_t)(e - v - 1) < r->cap) {
      memcpy(r->id, v + 1, (size_t)(e - v - 1));
      r->id[e - v - 1] = 0;
    } else {
      r->status = -1;
    }
  } else if (status >= 200 && status < 300) {
    r->status = -1;
  }
  r->done = 1;
}

int lg_create_conv(const lg_user *owner, const char *json_body, char *id_out, size_t cap) {
  conv_req r = {0, 0, id_out, cap};
  if (lg_http("POST", "/api/v1/conversations", owner->token, json_body, conv_done, &r) != 0)
    return -1;
  if (lg_run_until(&r.done, 30) != 0) return -1;
  return r.status == 200 || r.status == 201 ? 0 : r.status < 0 ? r.status : -r.status;
}
