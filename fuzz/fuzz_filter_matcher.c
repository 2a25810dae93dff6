/* The filter-sensitive matcher and masker on arbitrary text. The matchers
 * are built once from a fixed word list (Latin, Chinese, full-width, Greek,
 * Cyrillic, a phrase) through the word-list parser, one plain and one with
 * EIM_FS_SKIP_SEPARATORS. Inputs that are not valid UTF-8 are skipped: the
 * core hands filters only valid text. Checked, besides memory errors:
 *   - the spans are sorted, disjoint, non-touching and on code point
 *     boundaries;
 *   - the masked text (with a 1-byte and a 3-byte mask) is valid UTF-8, has
 *     as many code points as the input, equals the input outside the spans
 *     and is the mask inside them;
 *   - everything the plain matcher masks, the skipping one masks too;
 *   - masking is complete: the plain matcher finds nothing in its own
 *     output (a term cannot contain the mask). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mask.h"
#include "matcher.h"
#include "utf8.h"
#include "wordlist.h"

#define REQUIRE(cond)                                                          \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: broken contract: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                 \
    }                                                                          \
  } while (0)

static const char words[] =
    "# fixed list for the fuzzer\n"
    "badword\n"
    "forbidden phrase\n"
    "ab\n"
    "\xe6\x95\x8f\xe6\x84\x9f\xe8\xaf\x8d\n"                 /* 敏感词 */
    "\xe8\xbf\x9d\xe7\xa6\x81\xe5\x93\x81\n"                 /* 违禁品 */
    "\xe8\xbf\x9d\xe7\xa6\x81\n"                             /* 违禁 */
    "\xef\xbc\xb3\xef\xbc\xb0\xef\xbc\xa1\xef\xbc\xad\n"     /* ＳＰＡＭ */
    "\xce\xba\xce\xb1\xce\xba\xcf\x8c\n"                     /* κακό */
    "\xd0\xbf\xd0\xbb\xd0\xbe\xd1\x85\xd0\xbe\n"             /* плохо */
    "\xc3\xa9t\xc3\xa9\n";                                   /* été */

static eim_fs_matcher *plain, *skip;
static eim_fs_spans sp_plain, sp_skip, sp_again;

static eim_fs_matcher *build(unsigned flags) {
  eim_fs_matcher *m = NULL;
  size_t n = 0;
  eim_err err = {0, ""};
  if (eim_fs_words_parse(words, sizeof words - 1, "fuzz-words", flags, &m, &n, &err) != EIM_OK) {
    fprintf(stderr, "word list refused: %s\n", err.msg);
    abort();
  }
  return m;
}

static int is_cont(unsigned char c) { return (c & 0xC0) == 0x80; }

static size_t count_cps(const char *s, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++) c += !is_cont((unsigned char)s[i]);
  return c;
}

static void check_spans(const char *text, size_t len, const eim_fs_spans *sp) {
  for (size_t i = 0; i < sp->n; i++) {
    size_t s = sp->v[i].start, e = sp->v[i].end;
    REQUIRE(s < e && e <= len);
    REQUIRE(!is_cont((unsigned char)text[s]));
    REQUIRE(e == len || !is_cont((unsigned char)text[e]));
    if (i > 0) REQUIRE(sp->v[i - 1].end < s);
  }
}

static int covered(const eim_fs_spans *sp, size_t at) {
  for (size_t i = 0; i < sp->n; i++)
    if (sp->v[i].start <= at && at < sp->v[i].end) return 1;
  return 0;
}

/* Masks text per sp with mask and checks the result; returns it (malloc). */
static char *check_mask(const char *text, size_t len, const eim_fs_spans *sp, const char *mask,
                        size_t *outlen) {
  size_t ml = strlen(mask);
  size_t n = eim_fs_masked_len(text, len, sp, ml);
  char *out = malloc(n + 1);
  REQUIRE(out != NULL);
  eim_fs_mask(text, len, sp, mask, ml, out);
  REQUIRE(eim_fs_utf8_valid(out, n));
  REQUIRE(count_cps(out, n) == count_cps(text, len));
  size_t o = 0, at = 0;
  for (size_t i = 0; i < sp->n; i++) {
    size_t gap = sp->v[i].start - at;
    REQUIRE(memcmp(out + o, text + at, gap) == 0);
    o += gap;
    for (size_t k = count_cps(text + sp->v[i].start, sp->v[i].end - sp->v[i].start); k > 0; k--) {
      REQUIRE(memcmp(out + o, mask, ml) == 0);
      o += ml;
    }
    at = sp->v[i].end;
  }
  REQUIRE(n - o == len - at && memcmp(out + o, text + at, len - at) == 0);
  *outlen = n;
  return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  if (plain == NULL) {
    plain = build(0);
    skip = build(EIM_FS_SKIP_SEPARATORS);
  }
  if (!eim_fs_utf8_valid(text, size)) return 0;
  REQUIRE(eim_fs_find(plain, text, size, &sp_plain) == EIM_OK);
  REQUIRE(eim_fs_find(skip, text, size, &sp_skip) == EIM_OK);
  check_spans(text, size, &sp_plain);
  check_spans(text, size, &sp_skip);
  for (size_t i = 0; i < sp_plain.n; i++)
    for (size_t b = sp_plain.v[i].start; b < sp_plain.v[i].end; b++) REQUIRE(covered(&sp_skip, b));

  size_t n;
  char *out = check_mask(text, size, &sp_plain, "*", &n);
  REQUIRE(eim_fs_find(plain, out, n, &sp_again) == EIM_OK);
  REQUIRE(sp_again.n == 0);
  free(out);
  out = check_mask(text, size, &sp_plain, "\xef\xbc\x8a", &n); /* ＊ */
  free(out);
  out = check_mask(text, size, &sp_skip, "*", &n);
  free(out);
  return 0;
}
