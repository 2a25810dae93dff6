/*
 * The filter contract: whatever the input (empty, one byte, exactly the
 * maximum size, adversarial, random), inspect() returns EIM_OK with a known
 * verdict; a rewrite is valid UTF-8, holds no NUL and fits max_len; a
 * rejection says why; and the same input always gives the same result.
 * A reload, when the filter has one, leaves a working filter.
 */
#include "kit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

enum { KIT_FILTER_MAX = 8192, KIT_FILTER_RANDOM = 400 };

typedef struct kit_filter {
  const eim_host *host;
  const eim_filter_ops *ops;
  void *state;
  uint64_t rng;
} kit_filter;

typedef struct kit_result {
  int rc;
  eim_filter_verdict verdict;
  char *content; /* a copy, for comparing two runs */
  size_t len;
  char reason[EIM_ERR_MSG_MAX];
} kit_result;

/* Runs inspect once on (s, n) and checks the invariants; 0, or -1 with why. */
static int kit_inspect(kit_filter *f, const char *ctype, const char *s, size_t n, kit_result *out,
                       char *why, size_t whylen) {
  eim_filter_msg m = {"kit-conv", "kit-user", ctype, s, n, KIT_FILTER_MAX};
  eim_filter_result r;
  eim_err err = {0, ""};
  eim_arena *a = kit_arena_new();
  int rc = -1;

  memset(&r, 0, sizeof r);
  memset(out, 0, sizeof *out);
  if (a == NULL) {
    snprintf(why, whylen, "out of memory");
    return -1;
  }
  out->rc = f->ops->inspect(f->state, &m, &r, a, &err);
  if (out->rc != EIM_OK) {
    snprintf(why, whylen, "inspect returned %d (%s)", out->rc, err.msg);
    goto done;
  }
  out->verdict = r.verdict;
  switch (r.verdict) {
    case EIM_FILTER_PASS:
      break;
    case EIM_FILTER_REWRITE:
      if (r.content == NULL) {
        snprintf(why, whylen, "rewrite without content");
        goto done;
      }
      if (r.content_len > KIT_FILTER_MAX) {
        snprintf(why, whylen, "rewrite of %zu bytes, over max_len %d", r.content_len, KIT_FILTER_MAX);
        goto done;
      }
      if (!eim_utf8_valid(r.content, r.content_len) || memchr(r.content, '\0', r.content_len)) {
        snprintf(why, whylen, "rewrite is not valid UTF-8 text");
        goto done;
      }
      out->content = malloc(r.content_len + 1);
      if (out->content == NULL) {
        snprintf(why, whylen, "out of memory");
        goto done;
      }
      memcpy(out->content, r.content, r.content_len);
      out->len = r.content_len;
      break;
    case EIM_FILTER_REJECT:
      if (memchr(r.reason, '\0', sizeof r.reason) == NULL || r.reason[0] == '\0') {
        snprintf(why, whylen, "rejection without a NUL-terminated reason");
        goto done;
      }
      memcpy(out->reason, r.reason, sizeof out->reason);
      break;
    default:
      snprintf(why, whylen, "unknown verdict %d", (int)r.verdict);
      goto done;
  }
  rc = 0;
done:
  kit_arena_free(a);
  return rc;
}

/* Inspects twice; the invariants hold and both results agree. */
static int kit_inspect_twice(kit_filter *f, const char *ctype, const char *s, size_t n, char *why,
                             size_t whylen) {
  kit_result a, b;
  int rc = -1;

  if (kit_inspect(f, ctype, s, n, &a, why, whylen) != 0)
    return -1;
  if (kit_inspect(f, ctype, s, n, &b, why, whylen) != 0) {
    free(a.content);
    return -1;
  }
  if (a.verdict != b.verdict || a.len != b.len ||
      (a.len && memcmp(a.content, b.content, a.len) != 0) || strcmp(a.reason, b.reason) != 0)
    snprintf(why, whylen, "the same input gave two different results");
  else
    rc = 0;
  free(a.content);
  free(b.content);
  return rc;
}

/* Fills buf with exactly n bytes of repeated `unit` (whole code points),
 * padded with 'x' to the exact size. */
static void kit_fill(char *buf, size_t n, const char *unit) {
  size_t u = strlen(unit), i = 0;
  while (i + u <= n) {
    memcpy(buf + i, unit, u);
    i += u;
  }
  memset(buf + i, 'x', n - i);
}

static uint64_t kit_rand(kit_filter *f) {
  f->rng ^= f->rng << 13;
  f->rng ^= f->rng >> 7;
  f->rng ^= f->rng << 17;
  return f->rng;
}

/* Appends code point cp as UTF-8; returns bytes written (0 if no room). */
static size_t kit_put_cp(char *p, size_t room, uint32_t cp) {
  if (cp < 0x80 && room >= 1) {
    p[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800 && room >= 2) {
    p[0] = (char)(0xC0 | (cp >> 6));
    p[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000 && room >= 3) {
    p[0] = (char)(0xE0 | (cp >> 12));
    p[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    p[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  if (cp >= 0x10000 && room >= 4) {
    p[0] = (char)(0xF0 | (cp >> 18));
    p[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    p[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    p[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
  }
  return 0;
}

/* Random valid UTF-8 of at most max bytes, drawn from the ranges filters
 * care about: ASCII, Latin-1, CJK, full-width forms, zero-width and
 * punctuation, emoji. */
static size_t kit_random_text(kit_filter *f, char *buf, size_t max) {
  static const uint32_t ranges[][2] = {
      {0x20, 0x7E},     {0xA0, 0x17F},     {0x4E00, 0x4E80}, {0x654F, 0x654F}, {0x611F, 0x611F},
      {0x8BCD, 0x8BCD}, {0xFF01, 0xFF5E},  {0x200B, 0x200D}, {0x2060, 0x2060}, {0xFEFF, 0xFEFF},
      {0x3000, 0x3003}, {0x1F600, 0x1F64F}, {0x300, 0x36F},
  };
  size_t len = (size_t)(kit_rand(f) % (max + 1)), n = 0;
  while (n < len) {
    const uint32_t *r = ranges[kit_rand(f) % (sizeof ranges / sizeof ranges[0])];
    uint32_t cp = r[0] + (uint32_t)(kit_rand(f) % (r[1] - r[0] + 1));
    size_t w = kit_put_cp(buf + n, len - n, cp);
    if (w == 0)
      break;
    n += w;
  }
  return n;
}

void kit_filter_checks(kit_tally *t, const eim_plugin_desc *d, const char *cfg_path) {
  kit_config cfg;
  eim_host host;
  kit_filter f = {0};
  eim_err err = {0, ""};
  char why[512];
  char *buf = malloc(KIT_FILTER_MAX + 1);
  int ok;

  ok = d->filter != NULL && d->filter->version >= EIM_FILTER_OPS_V1 && d->filter->inspect != NULL;
  kit_report(t, "descriptor.filter_ops", ok, "no filter ops with inspect()");
  if (!ok || buf == NULL)
    goto out;
  if (kit_config_read(cfg_path, &cfg, why, sizeof why) != 0) {
    kit_report(t, "config", 0, why);
    kit_config_free(&cfg);
    goto out;
  }
  if (kit_host_open(&host, d->name) != 0) {
    kit_report(t, "host", 0, "cannot create a temporary data directory");
    kit_config_free(&cfg);
    goto out;
  }
  f.host = &host;
  f.ops = d->filter;
  f.rng = 0x9E3779B97F4A7C15ULL;
  ok = d->init(&f.state, &host, cfg.opts, cfg.n, &err) == EIM_OK;
  kit_report(t, "init", ok, err.msg);
  if (ok) {
    static const struct {
      const char *name, *unit;
    } fills[] = {
        {"input.max_ascii", "abcdefgh "},
        {"input.max_cjk", "\xe6\x95\x8f\xe6\x84\x9f\xe8\xaf\x8d"},
        {"input.max_emoji", "\xf0\x9f\x98\x80"},
        {"input.max_separators", " .-_*,;:!?/\\|~"},
        {"input.max_zero_width", "\xe2\x80\x8b"},
        {"input.max_fullwidth", "\xef\xbd\x82\xef\xbd\x81\xef\xbd\x84"},
        {"input.max_combining", "a\xcc\x81"},
        {"input.max_mixed", "b a\xe2\x80\x8b" "d-w\xef\xbd\x8f r d \xe6\x95\x8f \xe6\x84\x9f"},
    };
    ok = kit_inspect_twice(&f, "text", "", 0, why, sizeof why) == 0;
    kit_report(t, "input.empty", ok, why);
    ok = kit_inspect_twice(&f, "text", "a", 1, why, sizeof why) == 0;
    kit_report(t, "input.one_byte", ok, why);
    for (size_t i = 0; i < sizeof fills / sizeof fills[0]; i++) {
      kit_fill(buf, KIT_FILTER_MAX, fills[i].unit);
      ok = kit_inspect_twice(&f, "text", buf, KIT_FILTER_MAX, why, sizeof why) == 0;
      kit_report(t, fills[i].name, ok, why);
    }
    ok = kit_inspect_twice(&f, "image", "a photo", 7, why, sizeof why) == 0;
    kit_report(t, "input.other_content_type", ok, why);
    ok = 1;
    for (int i = 0; ok && i < KIT_FILTER_RANDOM; i++) {
      size_t n = kit_random_text(&f, buf, i % 10 == 0 ? KIT_FILTER_MAX : 300);
      ok = kit_inspect_twice(&f, "text", buf, n, why, sizeof why) == 0;
    }
    kit_report(t, "input.random_utf8", ok, why);
    if (f.ops->reload != NULL) {
      err.msg[0] = '\0';
      int rrc = f.ops->reload(f.state, &err);
      ok = rrc == EIM_OK || err.msg[0] != '\0';
      kit_report(t, "reload", ok, "reload failed without saying why");
      ok = kit_inspect_twice(&f, "text", "after reload", 12, why, sizeof why) == 0;
      kit_report(t, "reload.still_works", ok, why);
    }
    d->fini(f.state);
  }
  kit_host_close(&host);
  kit_config_free(&cfg);
out:
  free(buf);
}
