/* Unit test of auth-jwt: loads the built plugin with dlopen, as the server
 * does, behind a small host table whose clock the test moves. Forged tokens
 * are assembled here by hand (base64url + libsodium HMAC), never by the
 * plugin, so a bug in the plugin's encoder cannot hide one in its checker.
 *
 * usage: auth-jwt-unit PATH/auth-jwt.so */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "exampleim/plugin.h"

static int failures;

#define CHECK(cond)                                                     \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                       \
    }                                                                   \
  } while (0)

/* ------------------------------------------------------------------------ */
/* The test host                                                            */

typedef struct test_host {
  eim_host h;
  int64_t now_ms;
  const char *data_dir;
  int warnings;
  char last_log[512];
} test_host;

static void th_log(const eim_host *h, int level, const char *fmt, ...) {
  test_host *t = h->host_ctx;
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(t->last_log, sizeof t->last_log, fmt, ap);
  va_end(ap);
  if (level == EIM_LOG_WARN)
    t->warnings++;
  fprintf(stderr, "  [plugin log %d] %s\n", level, t->last_log);
}

static const char *th_config_get(const eim_host *h, const char *key) {
  test_host *t = h->host_ctx;
  return strcmp(key, "data_dir") == 0 ? t->data_dir : NULL;
}

/* The test is single-threaded, so "on the loop thread soon" is now. */
static int th_post(const eim_host *h, void (*fn)(void *), void *arg) {
  fn(arg);
  return EIM_OK;
}

static void th_metric(const eim_host *h, const char *name, double v) {}

/* Auth calls take no arena; these exist only to complete the table. */
static void *th_arena_alloc(eim_arena *a, size_t n) { return NULL; }
static char *th_arena_strndup(eim_arena *a, const char *s, size_t n) { return NULL; }

static int64_t th_now_ms(const eim_host *h) { return ((test_host *)h->host_ctx)->now_ms; }

static void th_init(test_host *t, const char *data_dir) {
  memset(t, 0, sizeof *t);
  t->h.size = sizeof t->h;
  t->h.abi_major = EIM_ABI_MAJOR;
  t->h.abi_minor = EIM_ABI_MINOR;
  t->h.host_ctx = t;
  t->h.log = th_log;
  t->h.config_get = th_config_get;
  t->h.post = th_post;
  t->h.counter_add = th_metric;
  t->h.gauge_set = th_metric;
  t->h.observe = th_metric;
  t->h.arena_alloc = th_arena_alloc;
  t->h.arena_strndup = th_arena_strndup;
  t->h.now_ms = th_now_ms;
  t->now_ms = 1700000000123LL;
  t->data_dir = data_dir;
}

/* ------------------------------------------------------------------------ */
/* Plugin access                                                            */

static const eim_plugin_desc *desc;
static const eim_auth_ops *ops;

#define CONF "/etc/exampleim/plugins.d/10-auth-jwt.conf"
#define S1 "0123456789abcdef0123456789abcdef-first"
#define S2 "fedcba9876543210fedcba9876543210-other"

static eim_opt opt(const char *k, const char *v, int line) {
  eim_opt o = {k, v, CONF, line};
  return o;
}

static void *plugin_new(test_host *t, const eim_opt *opts, size_t n, eim_err *err) {
  void *st = NULL;
  eim_err local;
  int rc;

  if (err == NULL)
    err = &local;
  memset(err, 0, sizeof *err);
  rc = desc->init(&st, &t->h, opts, n, err);
  if (rc != EIM_OK) {
    CHECK(st == NULL);
    CHECK(err->code == rc);
    CHECK(err->msg[0] != '\0');
    return NULL;
  }
  return st;
}

static void *plugin_with_secret(test_host *t, const char *secret, const char *issuer) {
  eim_opt o[2] = {opt("secret", secret, 3), opt("issuer", issuer, 4)};
  void *st = plugin_new(t, o, issuer != NULL ? 2 : 1, NULL);
  CHECK(st != NULL);
  return st;
}

static int verify(void *st, const char *token, char *user, int64_t *exp) {
  char u[EIM_ID_MAX];
  int64_t e = 0;
  eim_err err = {0, ""};
  int rc = ops->verify(st, token, user != NULL ? user : u, exp != NULL ? exp : &e, &err);
  if (rc != EIM_OK)
    CHECK(err.msg[0] != '\0');
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Token crafting                                                           */

enum { SIG_HS256, SIG_HS512, SIG_NONE };

static void b64url(const void *in, size_t n, char *out, size_t cap) {
  sodium_bin2base64(out, cap, in, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* Assembles header.payload.signature from the JSON texts, signed with
 * secret (or left unsigned for SIG_NONE). Returns a malloc'd string. */
static char *craft(const char *header, const char *payload, const char *secret, int sig) {
  size_t hl = strlen(header), pl = strlen(payload);
  size_t cap = sodium_base64_ENCODED_LEN(hl + pl + 64, sodium_base64_VARIANT_URLSAFE_NO_PADDING) * 2;
  char *tok = malloc(cap);
  unsigned char mac[crypto_auth_hmacsha512_BYTES];
  size_t len, maclen = 0;

  b64url(header, hl, tok, cap);
  len = strlen(tok);
  tok[len++] = '.';
  b64url(payload, pl, tok + len, cap - len);
  len += strlen(tok + len);
  if (sig == SIG_HS256) {
    crypto_auth_hmacsha256_state s;
    crypto_auth_hmacsha256_init(&s, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&s, (const unsigned char *)tok, len);
    crypto_auth_hmacsha256_final(&s, mac);
    maclen = crypto_auth_hmacsha256_BYTES;
  } else if (sig == SIG_HS512) {
    crypto_auth_hmacsha512_state s;
    crypto_auth_hmacsha512_init(&s, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha512_update(&s, (const unsigned char *)tok, len);
    crypto_auth_hmacsha512_final(&s, mac);
    maclen = crypto_auth_hmacsha512_BYTES;
  }
  tok[len++] = '.';
  tok[len] = '\0';
  if (maclen > 0)
    b64url(mac, maclen, tok + len, cap - len);
  return tok;
}

#define HS256_HDR "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

/* A payload valid at the test host's clock, for subject sub. */
static void payload_for(const test_host *t, const char *sub, const char *extra, char *out,
                        size_t cap) {
  long long now = t->now_ms / 1000;
  snprintf(out, cap, "{\"sub\":\"%s\",\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld%s}", sub, now,
           now, now + 3600, extra != NULL ? extra : "");
}

/* Verifies a crafted token and returns the plugin's answer. */
static int verify_crafted(void *st, const char *hdr, const char *payload, const char *secret,
                          int sig) {
  char *tok = craft(hdr, payload, secret, sig);
  int rc = verify(st, tok, NULL, NULL);
  free(tok);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */

static void test_round_trip(test_host *t) {
  void *st = plugin_with_secret(t, S1, NULL);
  char tok[EIM_TOKEN_MAX], user[EIM_ID_MAX], hdr[256];
  unsigned char raw[256];
  int64_t exp = 0, exp2 = 0;
  size_t n = 0;
  eim_err err;
  char pl[256];

  CHECK(ops->issue(st, "user-1", tok, &exp, &err) == EIM_OK);
  CHECK(exp == (t->now_ms / 1000 + 86400) * 1000);
  CHECK(verify(st, tok, user, &exp2) == EIM_OK);
  CHECK(strcmp(user, "user-1") == 0);
  CHECK(exp2 == exp);

  /* The issued header is exactly what the checker pins. */
  CHECK(strchr(tok, '.') != NULL);
  memcpy(hdr, tok, (size_t)(strchr(tok, '.') - tok));
  hdr[strchr(tok, '.') - tok] = '\0';
  CHECK(sodium_base642bin(raw, sizeof raw - 1, hdr, strlen(hdr), NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0);
  raw[n] = '\0';
  CHECK(strstr((char *)raw, "\"alg\":\"HS256\"") != NULL);

  /* Control for the forgery tests: a hand-made token with the right secret
   * passes, so their refusals are due to what each one changes. */
  payload_for(t, "hand-made", NULL, pl, sizeof pl);
  CHECK(verify_crafted(st, HS256_HDR, pl, S1, SIG_HS256) == EIM_OK);
  CHECK(verify_crafted(st, "{\"alg\":\"HS256\"}", pl, S1, SIG_HS256) == EIM_OK);

  /* Two tokens for the same user at the same instant differ (jti). */
  {
    char tok2[EIM_TOKEN_MAX];
    CHECK(ops->issue(st, "user-1", tok2, &exp, &err) == EIM_OK);
    CHECK(strcmp(tok, tok2) != 0);
  }
  desc->fini(st);
}

static void test_bad_headers(test_host *t) {
  void *st = plugin_with_secret(t, S1, NULL);
  char pl[256];
  static const char *const bad[] = {
      "{\"alg\":\"none\",\"typ\":\"JWT\"}",
      "{\"alg\":\"RS256\",\"typ\":\"JWT\"}",
      "{\"alg\":\"HS512\",\"typ\":\"JWT\"}",
      "{\"alg\":\"hs256\"}",
      "{\"typ\":\"JWT\"}",
      "{}",
      "{\"alg\":\"HS256\",\"alg\":\"none\"}",
      "{\"alg\":\"none\",\"alg\":\"HS256\"}",
      "{\"alg\":\"HS256\",\"kid\":\"../../etc/passwd\"}",
      "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
      "{\"alg\":\"HS256\",\"typ\":\"JWE\"}",
      "{\"alg\":[\"HS256\"]}",
      "[\"HS256\"]",
      "\"HS256\"",
      "{\"alg\":\"HS256\"} x",
  };
  size_t i;

  payload_for(t, "mallory", NULL, pl, sizeof pl);
  /* alg none: unsigned, and with a valid MAC (the header alone must sink it). */
  CHECK(verify_crafted(st, bad[0], pl, S1, SIG_NONE) == EIM_EAUTH);
  CHECK(verify_crafted(st, "{\"alg\":\"none\"}", pl, S1, SIG_NONE) == EIM_EAUTH);
  /* RS256 with an HMAC keyed by the secret: the classic key confusion. */
  CHECK(verify_crafted(st, bad[1], pl, S1, SIG_HS256) == EIM_EAUTH);
  /* HS512 correctly signed with the secret, and with a HS256 MAC. */
  CHECK(verify_crafted(st, bad[2], pl, S1, SIG_HS512) == EIM_EAUTH);
  CHECK(verify_crafted(st, bad[2], pl, S1, SIG_HS256) == EIM_EAUTH);
  /* Everything else, each with a valid HS256 MAC over its own bytes. */
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = verify_crafted(st, bad[i], pl, S1, SIG_HS256);
    if (rc != EIM_EAUTH)
      fprintf(stderr, "header accepted: %s\n", bad[i]);
    CHECK(rc == EIM_EAUTH);
  }
  desc->fini(st);
}

static void test_tampering(test_host *t) {
  void *st = plugin_with_secret(t, S1, NULL);
  char tok[EIM_TOKEN_MAX], forged[EIM_TOKEN_MAX + 512], pl[256], plb[512];
  char *d1, *d2;
  int64_t exp;
  eim_err err;

  CHECK(ops->issue(st, "alice", tok, &exp, &err) == EIM_OK);
  d1 = strchr(tok, '.');
  d2 = strrchr(tok, '.');
  /* Same header and signature, payload swapped for another subject. */
  payload_for(t, "admin", NULL, pl, sizeof pl);
  b64url(pl, strlen(pl), plb, sizeof plb);
  snprintf(forged, sizeof forged, "%.*s.%s%s", (int)(d1 - tok), tok, plb, d2);
  CHECK(verify(st, forged, NULL, NULL) == EIM_EAUTH);
  /* One signature character changed. */
  strcpy(forged, tok);
  forged[strlen(forged) - 2] = forged[strlen(forged) - 2] == 'A' ? 'B' : 'A';
  CHECK(verify(st, forged, NULL, NULL) == EIM_EAUTH);
  /* Signature cut short, and dropped. */
  strcpy(forged, tok);
  forged[strlen(forged) - 4] = '\0';
  CHECK(verify(st, forged, NULL, NULL) == EIM_EAUTH);
  strcpy(forged, tok);
  forged[d2 - tok + 1] = '\0';
  CHECK(verify(st, forged, NULL, NULL) == EIM_EAUTH);
  /* Signed with another secret. */
  CHECK(verify_crafted(st, HS256_HDR, pl, S2, SIG_HS256) == EIM_EAUTH);
  /* Issued by an instance with another secret. */
  {
    void *other = plugin_with_secret(t, S2, NULL);
    CHECK(ops->issue(other, "alice", forged, &exp, &err) == EIM_OK);
    CHECK(verify(st, forged, NULL, NULL) == EIM_EAUTH);
    CHECK(verify(other, forged, NULL, NULL) == EIM_OK);
    desc->fini(other);
  }
  desc->fini(st);
}

static void test_times(test_host *t) {
  void *st = plugin_with_secret(t, S1, NULL);
  char tok[EIM_TOKEN_MAX], pl[256];
  int64_t exp, start = t->now_ms;
  long long now = t->now_ms / 1000;
  eim_err err;

  CHECK(ops->issue(st, "bob", tok, &exp, &err) == EIM_OK);
  t->now_ms = exp - 1;
  CHECK(verify(st, tok, NULL, NULL) == EIM_OK);
  t->now_ms = exp;
  CHECK(verify(st, tok, NULL, NULL) == EIM_EEXPIRED);
  t->now_ms = start + 86401 * 1000LL;
  CHECK(verify(st, tok, NULL, NULL) == EIM_EEXPIRED);
  t->now_ms = start;

  /* nbf: an hour ahead is refused; within the 5 s skew it passes. */
  snprintf(pl, sizeof pl, "{\"sub\":\"bob\",\"nbf\":%lld,\"exp\":%lld}", now + 3600, now + 7200);
  CHECK(verify_crafted(st, HS256_HDR, pl, S1, SIG_HS256) == EIM_EAUTH);
  snprintf(pl, sizeof pl, "{\"sub\":\"bob\",\"nbf\":%lld,\"exp\":%lld}", now + 6, now + 7200);
  CHECK(verify_crafted(st, HS256_HDR, pl, S1, SIG_HS256) == EIM_EAUTH);
  snprintf(pl, sizeof pl, "{\"sub\":\"bob\",\"nbf\":%lld,\"exp\":%lld}", now + 3, now + 7200);
  CHECK(verify_crafted(st, HS256_HDR, pl, S1, SIG_HS256) == EIM_OK);
  snprintf(pl, sizeof pl, "{\"sub\":\"bob\",\"nbf\":\"soon\",\"exp\":%lld}", now + 7200);
  CHECK(verify_crafted(st, HS256_HDR, pl, S1, SIG_HS256) == EIM_EAUTH);

  /* exp: missing, a string, fractional, negative, absurdly far, in the past. */
  snprintf(pl, sizeof pl, "{\"sub\":\"bob\",\"iat\":%lld}", now);
  CHECK(verify_crafted(st, HS256_HDR, pl, S1, SIG_HS256) == EIM_EAUTH);
  snprintf(pl, sizeof pl, "{\"sub\":\"bob\",\"exp\":\"%lld\"}", now + 60);
  CHECK(verify_crafted(st, HS256_HDR, pl, S1, SIG_HS256) == EIM_EAUTH);
  snprintf(pl, sizeof pl, "{\"sub\":\"bob\",\"exp\":%lld.5}", now + 60);
  CHECK(verify_crafted(st, HS256_HDR, pl, S1, SIG_HS256) == EIM_EAUTH);
  CHECK(verify_crafted(st, HS256_HDR, "{\"sub\":\"bob\",\"exp\":-1}", S1, SIG_HS256) == EIM_EAUTH);
  CHECK(verify_crafted(st, HS256_HDR, "{\"sub\":\"bob\",\"exp\":1e300}", S1, SIG_HS256) ==
        EIM_EAUTH);
  snprintf(pl, sizeof pl, "{\"sub\":\"bob\",\"exp\":%lld}", now - 1);
  CHECK(verify_crafted(st, HS256_HDR, pl, S1, SIG_HS256) == EIM_EEXPIRED);
  desc->fini(st);
}

static void test_issuer(test_host *t) {
  void *st = plugin_with_secret(t, S1, "exampleim-test");
  char tok[EIM_TOKEN_MAX], pl[256], user[EIM_ID_MAX];
  int64_t exp;
  eim_err err;

  CHECK(ops->issue(st, "carol", tok, &exp, &err) == EIM_OK);
  CHECK(verify(st, tok, user, NULL) == EIM_OK);
  CHECK(strcmp(user, "carol") == 0);
  payload_for(t, "carol", ",\"iss\":\"exampleim-test\"", pl, sizeof pl);
  CHECK(verify_crafted(st, HS256_HDR, pl, S1, SIG_HS256) == EIM_OK);
  payload_for(t, "carol", ",\"iss\":\"evil\"", pl, sizeof pl);
  CHECK(verify_crafted(st, HS256_HDR, pl, S1, SIG_HS256) == EIM_EAUTH);
  payload_for(t, "carol", ",\"iss\":\"exampleim-test \"", pl, sizeof pl);
  CHECK(verify_crafted(st, HS256_HDR, pl, S1, SIG_HS256) == EIM_EAUTH);
  payload_for(t, "carol", ",\"iss\":7", pl, sizeof pl);
  CHECK(verify_crafted(st, HS256_HDR, pl, S1, SIG_HS256) == EIM_EAUTH);
  payload_for(t, "carol", NULL, pl, sizeof pl);
  CHECK(verify_crafted(st, HS256_HDR, pl, S1, SIG_HS256) == EIM_EAUTH);
  desc->fini(st);

  /* Without an issuer configured, tokens carry none. */
  st = plugin_with_secret(t, S1, NULL);
  CHECK(ops->issue(st, "carol", tok, &exp, &err) == EIM_OK);
  {
    void *strict = plugin_with_secret(t, S1, "exampleim-test");
    CHECK(verify(strict, tok, NULL, NULL) == EIM_EAUTH);
    desc->fini(strict);
  }
  desc->fini(st);
}

static void test_subjects(test_host *t) {
  void *st = plugin_with_secret(t, S1, NULL);
  char tok[EIM_TOKEN_MAX], pl[512], user[EIM_ID_MAX], id[EIM_ID_MAX + 1];
  long long now = t->now_ms / 1000;
  int64_t exp;
  eim_err err;

  snprintf(pl, sizeof pl, "{\"exp\":%lld}", now + 60);
  CHECK(verify_crafted(st, HS256_HDR, pl, S1, SIG_HS256) == EIM_EAUTH);
  snprintf(pl, sizeof pl, "{\"sub\":\"\",\"exp\":%lld}", now + 60);
  CHECK(verify_crafted(st, HS256_HDR, pl, S1, SIG_HS256) == EIM_EAUTH);
  snprintf(pl, sizeof pl, "{\"sub\":42,\"exp\":%lld}", now + 60);
  CHECK(verify_crafted(st, HS256_HDR, pl, S1, SIG_HS256) == EIM_EAUTH);
  memset(id, 'u', EIM_ID_MAX);
  id[EIM_ID_MAX] = '\0';
  snprintf(pl, sizeof pl, "{\"sub\":\"%s\",\"exp\":%lld}", id, now + 60);
  CHECK(verify_crafted(st, HS256_HDR, pl, S1, SIG_HS256) == EIM_EAUTH);
  id[EIM_ID_MAX - 1] = '\0';
  snprintf(pl, sizeof pl, "{\"sub\":\"%s\",\"exp\":%lld}", id, now + 60);
  CHECK(verify_crafted(st, HS256_HDR, pl, S1, SIG_HS256) == EIM_OK);
  /* The longest user_id round-trips through issue as well. */
  CHECK(ops->issue(st, id, tok, &exp, &err) == EIM_OK);
  CHECK(verify(st, tok, user, NULL) == EIM_OK);
  CHECK(strcmp(user, id) == 0);

  id[EIM_ID_MAX - 1] = 'u';
  CHECK(ops->issue(st, id, tok, &exp, &err) == EIM_EINVAL);
  CHECK(ops->issue(st, "", tok, &exp, &err) == EIM_EINVAL);
  CHECK(ops->issue(st, NULL, tok, &exp, &err) == EIM_EINVAL);
  CHECK(ops->issue(st, "\xff\xfe", tok, &exp, &err) == EIM_EINVAL);
  desc->fini(st);
}

static void test_garbage(test_host *t) {
  void *st = plugin_with_secret(t, S1, NULL);
  static const char *const junk[] = {
      "", ".", "..", "...", "a", "a.b", "a.b.c", "a.b.c.d", "!!!.@@@.###",
      "eyJhbGciOiJIUzI1NiJ9..", "eyJhbGciOiJIUzI1NiJ9.e30.", "eyJhbGciOiJIUzI1NiJ9.e30.AAAA",
      "eyJhbGciOiJIUzI1NiJ9=.e30.AAAA", "Bearer x.y.z", " eyJhbGciOiJIUzI1NiJ9.e30.AAAA",
  };
  char tok[EIM_TOKEN_MAX], *big, *mut;
  char pl[4096];
  int64_t exp;
  eim_err err;
  size_t i, len;
  int k;

  CHECK(verify(st, NULL, NULL, NULL) == EIM_EAUTH);
  for (i = 0; i < sizeof junk / sizeof junk[0]; i++)
    CHECK(verify(st, junk[i], NULL, NULL) == EIM_EAUTH);

  /* Non-JSON and non-object parts under a valid MAC. */
  CHECK(verify_crafted(st, "not json", "{}", S1, SIG_HS256) == EIM_EAUTH);
  CHECK(verify_crafted(st, HS256_HDR, "not json", S1, SIG_HS256) == EIM_EAUTH);
  CHECK(verify_crafted(st, HS256_HDR, "[1,2]", S1, SIG_HS256) == EIM_EAUTH);
  CHECK(verify_crafted(st, HS256_HDR, "{\"sub\":\"x\"", S1, SIG_HS256) == EIM_EAUTH);

  /* Exactly EIM_TOKEN_MAX bytes, and a megabyte. */
  big = malloc(1 << 20);
  memset(big, 'A', (1 << 20) - 1);
  big[(1 << 20) - 1] = '\0';
  CHECK(verify(st, big, NULL, NULL) == EIM_EAUTH);
  big[EIM_TOKEN_MAX] = '\0';
  big[100] = '.';
  big[200] = '.';
  CHECK(verify(st, big, NULL, NULL) == EIM_EAUTH);
  /* A correctly signed token just over the limit. */
  memset(pl, 0, sizeof pl);
  len = (size_t)snprintf(pl, sizeof pl, "{\"sub\":\"x\",\"exp\":%lld,\"pad\":\"",
                         (long long)(t->now_ms / 1000 + 60));
  memset(pl + len, 'p', 1500);
  strcpy(pl + len + 1500, "\"}");
  mut = craft(HS256_HDR, pl, S1, SIG_HS256);
  CHECK(strlen(mut) >= EIM_TOKEN_MAX);
  CHECK(verify(st, mut, NULL, NULL) == EIM_EAUTH);
  free(mut);
  free(big);

  /* Random bytes, and random mutations of a good token: never accepted,
   * never a crash (this runs under ASan in the sanitized build). */
  CHECK(ops->issue(st, "dave", tok, &exp, &err) == EIM_OK);
  mut = malloc(EIM_TOKEN_MAX);
  for (k = 0; k < 3000; k++) {
    len = 1 + randombytes_uniform(EIM_TOKEN_MAX - 1);
    randombytes_buf(mut, len);
    for (i = 0; i < len; i++)
      if (mut[i] == '\0')
        mut[i] = '.';
    mut[len - 1] = '\0';
    CHECK(verify(st, mut, NULL, NULL) == EIM_EAUTH);
  }
  for (k = 0; k < 3000; k++) {
    int rc;
    strcpy(mut, tok);
    len = strlen(mut);
    mut[randombytes_uniform((uint32_t)len)] = "Aa0_-.=+/\x01"[randombytes_uniform(10)];
    rc = verify(st, mut, NULL, NULL);
    if (strcmp(mut, tok) != 0) {
      if (rc != EIM_EAUTH)
        fprintf(stderr, "mutation accepted: %s\n", mut);
      CHECK(rc == EIM_EAUTH);
    }
  }
  free(mut);
  desc->fini(st);
}

static int write_file(const char *path, const char *data) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return -1;
  fputs(data, f);
  return fclose(f);
}

static void read_key(const char *path, char *out, size_t cap) {
  FILE *f = fopen(path, "r");
  size_t n = 0;
  if (f != NULL) {
    n = fread(out, 1, cap - 1, f);
    fclose(f);
  }
  out[n] = '\0';
}

static void test_generated_key(test_host *t, const char *dir) {
  char path[512], key1[256], key2[256], tok[EIM_TOKEN_MAX];
  struct stat st1, st2;
  void *a, *b;
  int64_t exp;
  eim_err err;

  snprintf(path, sizeof path, "%s/jwt.key", dir);
  t->warnings = 0;
  a = plugin_new(t, NULL, 0, &err);
  CHECK(a != NULL);
  CHECK(t->warnings == 1);
  CHECK(strstr(t->last_log, "jwt.key") != NULL);
  CHECK(stat(path, &st1) == 0);
  CHECK((st1.st_mode & 0777) == 0600);
  CHECK(st1.st_size == 65);
  read_key(path, key1, sizeof key1);
  CHECK(strlen(key1) == 65 && key1[64] == '\n');
  CHECK(ops->issue(a, "erin", tok, &exp, &err) == EIM_OK);

  /* A later start reuses the key, so earlier tokens stay valid. */
  b = plugin_new(t, NULL, 0, &err);
  CHECK(b != NULL);
  CHECK(verify(b, tok, NULL, NULL) == EIM_OK);
  CHECK(stat(path, &st2) == 0);
  CHECK(st1.st_ino == st2.st_ino && st1.st_mtime == st2.st_mtime);
  read_key(path, key2, sizeof key2);
  CHECK(strcmp(key1, key2) == 0);
  desc->fini(a);
  desc->fini(b);

  /* The generated file is a valid secret_file for other nodes. */
  {
    eim_opt o = opt("secret_file", path, 5);
    void *c = plugin_new(t, &o, 1, &err);
    CHECK(c != NULL);
    CHECK(verify(c, tok, NULL, NULL) == EIM_OK);
    desc->fini(c);
  }
  unlink(path);

  /* No data_dir and no other source: refused. */
  t->data_dir = NULL;
  CHECK(plugin_new(t, NULL, 0, &err) == NULL);
  CHECK(err.code == EIM_EINVAL);
  CHECK(strstr(err.msg, "EXAMPLEIM_JWT_SECRET") != NULL);
  t->data_dir = dir;
}

/* Two processes start at once on a fresh data directory, several times over:
 * both must end up with the same key, so each one's token verifies with a
 * third instance that loads the key afterwards. */
static void test_generated_key_race(test_host *t, const char *dir) {
  char path[512];
  int round;

  snprintf(path, sizeof path, "%s/jwt.key", dir);
  for (round = 0; round < 10; round++) {
    char toks[2][EIM_TOKEN_MAX];
    int fds[2][2], i, status;
    pid_t pids[2];
    void *v;

    unlink(path);
    for (i = 0; i < 2; i++) {
      CHECK(pipe(fds[i]) == 0);
      pids[i] = fork();
      if (pids[i] == 0) {
        eim_err err;
        int64_t exp;
        void *st = plugin_new(t, NULL, 0, &err);
        char tok[EIM_TOKEN_MAX] = "";
        if (st != NULL)
          ops->issue(st, "racer", tok, &exp, &err);
        if (write(fds[i][1], tok, strlen(tok) + 1) < 0)
          _exit(2);
        if (st != NULL)
          desc->fini(st);
        _exit(st != NULL ? 0 : 1);
      }
      close(fds[i][1]);
    }
    for (i = 0; i < 2; i++) {
      ssize_t n, off = 0;
      while ((n = read(fds[i][0], toks[i] + off, sizeof toks[i] - 1 - (size_t)off)) > 0)
        off += n;
      toks[i][off] = '\0';
      close(fds[i][0]);
      CHECK(waitpid(pids[i], &status, 0) == pids[i]);
      CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    v = plugin_new(t, NULL, 0, NULL);
    CHECK(v != NULL);
    if (v != NULL) {
      CHECK(verify(v, toks[0], NULL, NULL) == EIM_OK);
      CHECK(verify(v, toks[1], NULL, NULL) == EIM_OK);
      desc->fini(v);
    }
  }
  unlink(path);
}

static void test_secret_sources(test_host *t, const char *dir) {
  char path[512], tok[EIM_TOKEN_MAX];
  void *ref = plugin_with_secret(t, S1, NULL), *st;
  int64_t exp;
  eim_err err;
  eim_opt o;

  /* secret_file with a trailing newline means the same secret. */
  snprintf(path, sizeof path, "%s/secret", dir);
  CHECK(write_file(path, S1 "\n") == 0);
  o = opt("secret_file", path, 5);
  st = plugin_new(t, &o, 1, &err);
  CHECK(st != NULL);
  CHECK(ops->issue(st, "frank", tok, &exp, &err) == EIM_OK);
  CHECK(verify(ref, tok, NULL, NULL) == EIM_OK);
  desc->fini(st);

  /* Too short, from each source; the message says where and the minimum. */
  CHECK(write_file(path, "0123456789012345678901234567890\n") == 0);
  CHECK(plugin_new(t, &o, 1, &err) == NULL);
  CHECK(err.code == EIM_EINVAL && strstr(err.msg, "at least 32") != NULL);
  CHECK(strstr(err.msg, CONF ":5") != NULL);
  o = opt("secret", "0123456789012345678901234567890", 3);
  CHECK(plugin_new(t, &o, 1, &err) == NULL);
  CHECK(err.code == EIM_EINVAL && strstr(err.msg, "at least 32") != NULL);
  CHECK(strstr(err.msg, CONF ":3") != NULL);
  setenv("EXAMPLEIM_JWT_SECRET", "short", 1);
  CHECK(plugin_new(t, NULL, 0, &err) == NULL);
  CHECK(err.code == EIM_EINVAL && strstr(err.msg, "EXAMPLEIM_JWT_SECRET") != NULL);

  /* The environment works, and loses to both keys. */
  setenv("EXAMPLEIM_JWT_SECRET", S1, 1);
  st = plugin_new(t, NULL, 0, &err);
  CHECK(st != NULL);
  CHECK(ops->issue(st, "frank", tok, &exp, &err) == EIM_OK);
  CHECK(verify(ref, tok, NULL, NULL) == EIM_OK);
  desc->fini(st);
  setenv("EXAMPLEIM_JWT_SECRET", S2, 1);
  st = plugin_with_secret(t, S1, NULL);
  CHECK(ops->issue(st, "frank", tok, &exp, &err) == EIM_OK);
  CHECK(verify(ref, tok, NULL, NULL) == EIM_OK);
  desc->fini(st);
  CHECK(write_file(path, S1) == 0);
  o = opt("secret_file", path, 5);
  st = plugin_new(t, &o, 1, &err);
  CHECK(st != NULL);
  CHECK(ops->issue(st, "frank", tok, &exp, &err) == EIM_OK);
  CHECK(verify(ref, tok, NULL, NULL) == EIM_OK);
  desc->fini(st);
  unsetenv("EXAMPLEIM_JWT_SECRET");

  /* `secret` wins over `secret_file`. */
  {
    eim_opt both[2] = {opt("secret_file", path, 5), opt("secret", S2, 6)};
    st = plugin_new(t, both, 2, &err);
    CHECK(st != NULL);
    CHECK(ops->issue(st, "frank", tok, &exp, &err) == EIM_OK);
    CHECK(verify(ref, tok, NULL, NULL) == EIM_EAUTH);
    desc->fini(st);
  }

  /* A missing secret_file is an error naming it, never a fallback. */
  unlink(path);
  o = opt("secret_file", path, 5);
  CHECK(plugin_new(t, &o, 1, &err) == NULL);
  CHECK(err.code == EIM_EINVAL && strstr(err.msg, path) != NULL);
  desc->fini(ref);
}

static void test_options(test_host *t) {
  char tok[EIM_TOKEN_MAX];
  int64_t exp;
  eim_err err;
  void *st;
  static const char *const bad_ttl[] = {"0", "31536001", "abc", "-60", "+60", "86400s",
                                        "", " 60", "99999999999999999999"};
  size_t i;

  {
    eim_opt o[2] = {opt("secret", S1, 3), opt("bogus_key", "1", 7)};
    CHECK(plugin_new(t, o, 2, &err) == NULL);
    CHECK(err.code == EIM_EINVAL);
    CHECK(strstr(err.msg, CONF ":7") != NULL);
    CHECK(strstr(err.msg, "unknown key 'bogus_key'") != NULL);
  }
  {
    eim_opt o[2] = {opt("secret", S1, 3), opt("secret", S2, 9)};
    CHECK(plugin_new(t, o, 2, &err) == NULL);
    CHECK(err.code == EIM_EINVAL && strstr(err.msg, CONF ":9") != NULL);
  }
  for (i = 0; i < sizeof bad_ttl / sizeof bad_ttl[0]; i++) {
    eim_opt o[2] = {opt("secret", S1, 3), opt("ttl", bad_ttl[i], 8)};
    CHECK(plugin_new(t, o, 2, &err) == NULL);
    CHECK(err.code == EIM_EINVAL && strstr(err.msg, CONF ":8") != NULL);
  }
  {
    eim_opt o[2] = {opt("secret", S1, 3), opt("issuer", "", 4)};
    CHECK(plugin_new(t, o, 2, &err) == NULL);
    CHECK(err.code == EIM_EINVAL && strstr(err.msg, CONF ":4") != NULL);
  }
  {
    eim_opt o[2] = {opt("secret", S1, 3), opt("ttl", "60", 8)};
    st = plugin_new(t, o, 2, &err);
    CHECK(st != NULL);
    CHECK(ops->issue(st, "gina", tok, &exp, &err) == EIM_OK);
    CHECK(exp == (t->now_ms / 1000 + 60) * 1000);
    t->now_ms += 61 * 1000;
    CHECK(verify(st, tok, NULL, NULL) == EIM_EEXPIRED);
    t->now_ms -= 61 * 1000;
    desc->fini(st);
  }
}

/* Prints how fast verify runs; not an assertion, a number for the report. */
static void measure(test_host *t) {
  void *st = plugin_with_secret(t, S1, NULL);
  char tok[EIM_TOKEN_MAX];
  struct timespec a, b;
  int64_t exp;
  eim_err err;
  int i, n = 20000, ok = 0;
  double s;

  CHECK(ops->issue(st, "user-42", tok, &exp, &err) == EIM_OK);
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (i = 0; i < n; i++)
    ok += verify(st, tok, NULL, NULL) == EIM_OK;
  clock_gettime(CLOCK_MONOTONIC, &b);
  CHECK(ok == n);
  s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
  printf("verify: %d tokens in %.3f s, %.1f us each\n", n, s, s * 1e6 / n);
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (i = 0; i < n; i++)
    ok += ops->issue(st, "user-42", tok, &exp, &err) == EIM_OK;
  clock_gettime(CLOCK_MONOTONIC, &b);
  s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
  printf("issue: %d tokens in %.3f s, %.1f us each\n", n, s, s * 1e6 / n);
  desc->fini(st);
}

int main(int argc, char **argv) {
  char dir[] = "/tmp/auth-jwt-unit.XXXXXX";
  eim_plugin_describe_fn describe;
  test_host t;
  void *so;

  if (argc != 2) {
    fprintf(stderr, "usage: %s PATH/auth-jwt.so\n", argv[0]);
    return 2;
  }
  if (sodium_init() < 0 || mkdtemp(dir) == NULL) {
    fprintf(stderr, "setup failed: %s\n", strerror(errno));
    return 2;
  }
  unsetenv("EXAMPLEIM_JWT_SECRET");
  so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (so == NULL) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 1;
  }
  describe = (eim_plugin_describe_fn)(uintptr_t)dlsym(so, EIM_PLUGIN_SYMBOL);
  CHECK(describe != NULL);
  if (describe == NULL)
    return 1;
  desc = describe();
  CHECK(desc->size >= EIM_PLUGIN_DESC_MIN_SIZE);
  CHECK(desc->abi_major == EIM_ABI_MAJOR);
  CHECK(strcmp(desc->name, "auth-jwt") == 0);
  CHECK(desc->auth != NULL && desc->store == NULL && desc->queue == NULL &&
        desc->filter == NULL);
  ops = desc->auth;
  CHECK(ops->version >= EIM_AUTH_OPS_V1 && ops->issue != NULL && ops->verify != NULL);

  th_init(&t, dir);
  test_round_trip(&t);
  test_bad_headers(&t);
  test_tampering(&t);
  test_times(&t);
  test_issuer(&t);
  test_subjects(&t);
  test_garbage(&t);
  test_generated_key(&t, dir);
  test_generated_key_race(&t, dir);
  test_secret_sources(&t, dir);
  test_options(&t);
  measure(&t);

  dlclose(so);
  rmdir(dir);
  if (failures > 0) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("auth-jwt: all checks passed\n");
  return 0;
}
