#include "mask.h"

#include <stdlib.h>
#include <string.h>

/* Matches arrive in increasing end order, so a new span can only overlap
 * the spans at the top of the stack: pop those and merge them in. */
static void collect(void *ctx, size_t start, size_t end) {
  eim_fs_spans *sp = ctx;
  while (sp->n > 0 && sp->v[sp->n - 1].end >= start) {
    if (sp->v[sp->n - 1].start < start)
      start = sp->v[sp->n - 1].start;
    sp->n--;
  }
  if (sp->n == sp->cap) {
    size_t cap = sp->cap ? sp->cap * 2 : 16;
    eim_fs_span *v = realloc(sp->v, cap * sizeof *v);
    if (v == NULL) {
      sp->oom = 1;
      return;
    }
    sp->v = v;
    sp->cap = cap;
  }
  sp->v[sp->n].start = start;
  sp->v[sp->n].end = end;
  sp->n++;
}

int eim_fs_find(const eim_fs_matcher *m, const char *text, size_t len,
                eim_fs_spans *sp) {
  sp->n = 0;
  sp->oom = 0;
  eim_fs_matcher_scan(m, text, len, collect, sp);
  return sp->oom ? EIM_ENOMEM : EIM_OK;
}

void eim_fs_spans_free(eim_fs_spans *sp) {
  free(sp->v);
  memset(sp, 0, sizeof *sp);
}

/* Code points in s[0..n): bytes that do not continue a sequence. */
static size_t count_cps(const char *s, size_t n) {
  size_t i, c = 0;
  for (i = 0; i < n; i++)
    c += ((unsigned char)s[i] & 0xC0) != 0x80;
  return c;
}

size_t eim_fs_masked_len(const char *text, size_t len, const eim_fs_spans *sp,
                         size_t mask_len) {
  size_t i, out = len;
  for (i = 0; i < sp->n; i++) {
    size_t bytes = sp->v[i].end - sp->v[i].start;
    out = out - bytes + count_cps(text + sp->v[i].start, bytes) * mask_len;
  }
  return out;
}

void eim_fs_mask(const char *text, size_t len, const eim_fs_spans *sp,
                 const char *mask, size_t mask_len, char *out) {
  size_t i, j, at = 0;
  for (i = 0; i < sp->n; i++) {
    memcpy(out, text + at, sp->v[i].start - at);
    out += sp->v[i].start - at;
    for (j = sp->v[i].start; j < sp->v[i].end; j++) {
      if (((unsigned char)text[j] & 0xC0) != 0x80) {
        memcpy(out, mask, mask_len);
        out += mask_len;
      }
    }
    at = sp->v[i].end;
  }
  memcpy(out, text + at, len - at);
}
