/* The matcher and masker directly: the acceptance examples, folding,
 * separators, overlaps, limits, and a randomised comparison with a
 * brute-force reference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fold.h"
#include "mask.h"
#include "matcher.h"
#include "utf8.h"

static int failures;

#define CHECK(c)                                                        \
  do {                                                                  \
    if (!(c)) {                                                         \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
      failures++;                                                       \
    }                                                                   \
  } while (0)

#define CHECK_STR(got, want)                                                  \
  do {                                                                        \
    const char *g_ = (got), *w_ = (want);                                     \
    if (strcmp(g_, w_) != 0) {                                                \
      fprintf(stderr, "%s:%d: got \"%s\", want \"%s\"\n", __FILE__, __LINE__, g_, w_); \
      failures++;                                                             \
    }                                                                         \
  } while (0)

static eim_fs_matcher *build(const char *const *terms, size_t n, unsigned flags) {
  size_t lens[64], i, bad = 0;
  eim_fs_matcher *m = NULL;
  eim_err err;
  for (i = 0; i < n; i++)
    lens[i] = strlen(terms[i]);
  if (eim_fs_matcher_build(terms, lens, n, flags, &m, &bad, &err) != EIM_OK) {
    fprintf(stderr, "build failed: term %zu: %s\n", bad, err.msg);
    exit(1);
  }
  return m;
}

/* The masked form of text, in a static buffer. */
static const char *masked(const eim_fs_matcher *m, const char *text, const char *mask) {
  static char out[65536];
  eim_fs_spans sp = {0};
  size_t len = strlen(text), n;
  if (eim_fs_find(m, text, len, &sp) != EIM_OK)
    exit(1);
  n = eim_fs_masked_len(text, len, &sp, strlen(mask));
  if (n >= sizeof out)
    exit(1);
  eim_fs_mask(text, len, &sp, mask, strlen(mask), out);
  out[n] = '\0';
  eim_fs_spans_free(&sp);
  return out;
}

static void test_acceptance(void) {
  static const char *const terms[] = {"badword", "敏感词"};
  eim_fs_matcher *plain = build(terms, 2, 0);
  eim_fs_matcher *skip = build(terms, 2, EIM_FS_SKIP_SEPARATORS);

  CHECK_STR(masked(plain, "a BaDwOrD here", "*"), "a ******* here");
  CHECK_STR(masked(plain, "这是敏感词", "*"), "这是***");
  CHECK_STR(masked(plain, "ｂａｄｗｏｒｄ", "*"), "*******");
  CHECK_STR(masked(plain, "ＢＡＤｗｏｒｄ!", "*"), "*******!");
  CHECK_STR(masked(plain, "b.a d-w o r d", "*"), "b.a d-w o r d");
  CHECK_STR(masked(plain, "敏 感 词", "*"), "敏 感 词");
  CHECK_STR(masked(skip, "b.a d-w o r d", "*"), "*************");
  CHECK_STR(masked(skip, "敏 感 词", "*"), "*****");
  CHECK_STR(masked(skip, "x, b.a d-w o r d!", "*"), "x, *************!");
  CHECK_STR(masked(skip, "敏\xE2\x80\x8B感\xEF\xBB\xBF词", "*"), "*****");
  CHECK_STR(masked(skip, "bad\xE2\x81\xA0word", "*"), "********");
  CHECK_STR(masked(skip, "敏　感，词。", "*"), "*****。");
  CHECK_STR(masked(skip, "badXword", "*"), "badXword");
  CHECK_STR(masked(skip, "bad😀word", "*"), "********");
  CHECK_STR(masked(plain, "a BaDwOrD here", "●"), "a ●●●●●●● here");
  CHECK_STR(masked(plain, "nothing to see", "*"), "nothing to see");
  eim_fs_matcher_free(plain);
  eim_fs_matcher_free(skip);
}

static void test_folding(void) {
  static const char *const terms[] = {"straße", "łódź", "σοφια", "привет", "bad word",
                                      "ÿes", "ſun"};
  eim_fs_matcher *m = build(terms, 7, 0);
  CHECK_STR(masked(m, "STRAßE", "*"), "******");
  CHECK_STR(masked(m, "ŁÓDŹ!", "*"), "****!");
  CHECK_STR(masked(m, "ΣΟΦΙΑ", "*"), "*****");
  CHECK_STR(masked(m, "ПРИВЕТ", "*"), "******");
  CHECK_STR(masked(m, "BAD　WORD", "*"), "********");   /* ideographic space */
  CHECK_STR(masked(m, "ｂａｄ　ｗｏｒｄ", "*"), "********");
  CHECK_STR(masked(m, "ŸES", "*"), "***");
  CHECK_STR(masked(m, "SUN sun ſun", "*"), "*** *** ***");
  CHECK(eim_fs_fold(0x130) == 0x130); /* no simple folding for dotted I */
  eim_fs_matcher_free(m);
}

static void test_overlaps(void) {
  static const char *const t1[] = {"ab", "bc", "cd"};
  static const char *const t2[] = {"he", "she", "hers", "his"};
  static const char *const t3[] = {"aa"};
  static const char *const t4[] = {"b", "d", "abcde"};
  eim_fs_matcher *m1 = build(t1, 3, 0), *m2 = build(t2, 4, 0), *m3 = build(t3, 1, 0),
                 *m4 = build(t4, 3, 0);
  CHECK_STR(masked(m1, "abcd", "*"), "****");
  CHECK_STR(masked(m1, "abxcd", "*"), "**x**");
  CHECK_STR(masked(m1, "xbx", "*"), "xbx");
  CHECK_STR(masked(m2, "ushers", "*"), "u*****");
  CHECK_STR(masked(m2, "this", "*"), "t***");
  CHECK_STR(masked(m3, "aaaaa", "*"), "*****");
  CHECK_STR(masked(m3, "a", "*"), "a");
  CHECK_STR(masked(m4, "xabcdex", "*"), "x*****x");
  CHECK_STR(masked(m4, "xbxdx", "*"), "x*x*x");
  eim_fs_matcher_free(m1);
  eim_fs_matcher_free(m2);
  eim_fs_matcher_free(m3);
  eim_fs_matcher_free(m4);
}

static void test_edges(void) {
  static const char *const terms[] = {"a", "badword", "敏感词"};
  eim_fs_matcher *m = build(terms, 3, EIM_FS_SKIP_SEPARATORS);
  eim_fs_spans sp = {0};
  char *big = malloc(8192), *seps = malloc(8192);
  size_t i;

  CHECK(eim_fs_find(m, "", 0, &sp) == EIM_OK && sp.n == 0);
  CHECK(eim_fs_find(m, NULL, 0, &sp) == EIM_OK && sp.n == 0);
  CHECK_STR(masked(m, "a", "*"), "*");
  CHECK_STR(masked(m, "b", "*"), "b");
  CHECK_STR(masked(m, "\xE6", "*"), "\xE6"); /* truncated sequence */
  CHECK_STR(masked(m, "bad\xFFword", "*"), "b*d\xFFword");
  CHECK_STR(masked(m, "\xE6\x95\xE6\x95\x8F感词", "*"), "\xE6\x95***");

  /* 8 KiB: terms at both ends, filler between. */
  memset(big, 'x', 8192);
  memcpy(big, "BADWORD", 7);
  memcpy(big + 8192 - 9, "敏感词", 9);
  CHECK(eim_fs_find(m, big, 8192, &sp) == EIM_OK);
  CHECK(sp.n == 2 && sp.v[0].start == 0 && sp.v[0].end == 7 &&
        sp.v[1].start == 8183 && sp.v[1].end == 8192);
  CHECK(eim_fs_masked_len(big, 8192, &sp, 1) == 8192 - 6);

  /* 8 KiB of separators (with zero-width ones) matches nothing. */
  for (i = 0; i + 3 <= 8192; i += 3)
    memcpy(seps + i, i % 2 ? "\xE2\x80\x8B" : " .-", 3);
  memset(seps + i, ' ', 8192 - i);
  CHECK(eim_fs_find(m, seps, 8192, &sp) == EIM_OK && sp.n == 0);
  /* ... and a term spread across all of it still matches. */
  seps[0] = 'b';
  seps[1] = 'a';
  seps[3996] = 'd';
  memcpy(seps + 8185, "word", 4); /* cuts a zero-width space: junk after it */
  CHECK(eim_fs_find(m, seps, 8192, &sp) == EIM_OK);
  CHECK(sp.n == 1 && sp.v[0].start == 0 && sp.v[0].end == 8189);

  eim_fs_spans_free(&sp);
  free(big);
  free(seps);
  eim_fs_matcher_free(m);
}

static void test_build_errors(void) {
  const char *terms[2];
  size_t lens[2], bad = 99;
  eim_fs_matcher *m = NULL;
  eim_err err;
  char long_term[4 * 65 + 1];
  int i;

  terms[0] = "ok";
  terms[1] = "b\xC0\xAF";
  lens[0] = 2;
  lens[1] = 3;
  CHECK(eim_fs_matcher_build(terms, lens, 2, 0, &m, &bad, &err) == EIM_EINVAL);
  CHECK(bad == 1 && m == NULL && strstr(err.msg, "UTF-8") != NULL);

  terms[1] = " .- ";
  lens[1] = 4;
  CHECK(eim_fs_matcher_build(terms, lens, 2, 0, &m, &bad, &err) == EIM_OK);
  eim_fs_matcher_free(m);
  CHECK(eim_fs_matcher_build(terms, lens, 2, EIM_FS_SKIP_SEPARATORS, &m, &bad, &err) ==
        EIM_EINVAL);
  CHECK(bad == 1 && m == NULL);

  long_term[0] = '\0';
  for (i = 0; i < 64; i++)
    strcat(long_term, "敏");
  terms[1] = long_term;
  lens[1] = strlen(long_term);
  CHECK(eim_fs_matcher_build(terms, lens, 2, 0, &m, &bad, &err) == EIM_OK);
  CHECK_STR(masked(m, long_term, "*"),
            "****************************************************************");
  eim_fs_matcher_free(m);
  strcat(long_term, "x");
  lens[1] = strlen(long_term);
  CHECK(eim_fs_matcher_build(terms, lens, 2, 0, &m, &bad, &err) == EIM_EINVAL);
  CHECK(bad == 1 && strstr(err.msg, "longer") != NULL);

  CHECK(eim_fs_matcher_build(terms, lens, 0, 0, &m, &bad, &err) == EIM_OK);
  CHECK_STR(masked(m, "anything", "*"), "anything");
  eim_fs_matcher_free(m);
}

static uint32_t rng_state = 12345;
static uint32_t rnd(uint32_t n) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return rng_state % n;
}

/* Reference: every occurrence found by trying every term at every start,
 * marked byte by byte. */
static void brute_mask(const char *const *terms, size_t nt, const char *text,
                       size_t len, int skip, char *mark) {
  uint32_t cps[512];
  size_t off[513], n = 0, at = 0, i, t;
  while (at < len && n < 512) {
    uint32_t cp;
    size_t k = eim_fs_utf8_decode((const unsigned char *)text + at, len - at, &cp);
    if (k == 0) {
      k = 1;
      cp = 0x110000; /* no term has it */
    }
    off[n] = at;
    cps[n++] = eim_fs_fold(cp);
    at += k;
  }
  off[n] = at;
  memset(mark, 0, len);
  for (i = 0; i < n; i++) {
    if (skip && eim_fs_is_separator(cps[i]))
      continue;
    for (t = 0; t < nt; t++) {
      const unsigned char *p = (const unsigned char *)terms[t];
      size_t tl = strlen(terms[t]), j = 0, q = i, last = i;
      int ok = 1;
      while (j < tl) {
        uint32_t cp = 0;
        j += eim_fs_utf8_decode(p + j, tl - j, &cp);
        cp = eim_fs_fold(cp);
        if (skip && eim_fs_is_separator(cp))
          continue;
        while (skip && q < n && q > i && eim_fs_is_separator(cps[q]))
          q++;
        if (q >= n || cps[q] != cp) {
          ok = 0;
          break;
        }
        last = q++;
      }
      if (ok)
        memset(mark + off[i], 1, off[last + 1] - off[i]);
    }
  }
}

static void test_random(void) {
  /* Terms draw from the first five; texts from all, invalid bytes included. */
  static const char *const alphabet[] = {"a", "b", "c", "A", "敏", " ", ".", "\xE2\x80\x8B",
                                         "\xFF", "\xE6\x95"};
  char terms_buf[8][32], text[256], mark[256], got[256];
  const char *terms[8];
  int round;

  for (round = 0; round < 4000; round++) {
    size_t nt = 1 + rnd(6), i, len = 0, s;
    int skip = (int)rnd(2);
    eim_fs_matcher *m;
    eim_fs_spans sp = {0};
    for (i = 0; i < nt; i++) {
      size_t tl = 1 + rnd(4), k;
      terms_buf[i][0] = '\0';
      for (k = 0; k < tl; k++)
        strcat(terms_buf[i], alphabet[rnd(5)]);
      terms[i] = terms_buf[i];
    }
    while (len < 200) {
      const char *c = alphabet[rnd(10)];
      memcpy(text + len, c, strlen(c));
      len += strlen(c);
    }
    m = build(terms, nt, skip ? EIM_FS_SKIP_SEPARATORS : 0);
    brute_mask(terms, nt, text, len, skip, mark);
    CHECK(eim_fs_find(m, text, len, &sp) == EIM_OK);
    memset(got, 0, len);
    for (s = 0; s < sp.n; s++) {
      CHECK(sp.v[s].start < sp.v[s].end && sp.v[s].end <= len);
      CHECK(s == 0 || sp.v[s - 1].end < sp.v[s].start);
      memset(got + sp.v[s].start, 1, sp.v[s].end - sp.v[s].start);
    }
    if (memcmp(got, mark, len) != 0) {
      fprintf(stderr, "random round %d differs from the reference (skip=%d)\n", round, skip);
      failures++;
      round = 1 << 30;
    }
    eim_fs_spans_free(&sp);
    eim_fs_matcher_free(m);
  }
}

static void test_many_terms(void) {
  static const char *const syll[] = {"敏", "感", "词", "ka", "zu", "mi", "ro", "禁", "语"};
  enum { N = 10000 };
  char (*buf)[48] = malloc(N * sizeof *buf);
  const char **terms = malloc(N * sizeof *terms);
  size_t *lens = malloc(N * sizeof *lens), i, bad;
  eim_fs_matcher *m = NULL;
  eim_fs_spans sp = {0};
  eim_err err;

  for (i = 0; i < N; i++) {
    size_t k, v = i;
    strcpy(buf[i], "q");
    for (k = 0; k < 5; k++, v /= 9)
      strcat(buf[i], syll[v % 9]);
    terms[i] = buf[i];
    lens[i] = strlen(buf[i]);
  }
  CHECK(eim_fs_matcher_build(terms, lens, N, 0, &m, &bad, &err) == EIM_OK);
  for (i = 0; m != NULL && i < N; i += 97) {
    char text[128];
    snprintf(text, sizeof text, "say %s now", buf[i]);
    CHECK(eim_fs_find(m, text, strlen(text), &sp) == EIM_OK);
    CHECK(sp.n == 1 && sp.v[0].start == 4 && sp.v[0].end == 4 + lens[i]);
  }
  if (m != NULL) {
    /* The prefix alone is no term. */
    CHECK(eim_fs_find(m, "q敏感词ka", strlen("q敏感词ka"), &sp) == EIM_OK && sp.n == 0);
  }
  eim_fs_spans_free(&sp);
  eim_fs_matcher_free(m);
  free(buf);
  free(terms);
  free(lens);
}

int main(void) {
  test_acceptance();
  test_folding();
  test_overlaps();
  test_edges();
  test_build_errors();
  test_random();
  test_many_terms();
  if (failures)
    fprintf(stderr, "%d check(s) failed\n", failures);
  else
    printf("filter-sensitive matcher: all checks passed\n");
  return failures ? 1 : 0;
}
