/* From matches to masked text: merges the spans the matcher reports into
 * their union, and writes the text with every code point of the union
 * replaced by the mask character. */
#ifndef EIM_FS_MASK_H
#define EIM_FS_MASK_H

#include <stddef.h>

#include "matcher.h"

typedef struct eim_fs_span {
  size_t start, end; /* bytes, [start, end) */
} eim_fs_span;

/* A reusable span buffer: zero-initialise it, pass it to any number of
 * eim_fs_find calls, release it with eim_fs_spans_free. */
typedef struct eim_fs_spans {
  eim_fs_span *v;
  size_t n, cap;
  int oom;
} eim_fs_spans;

/* Scans text and leaves in sp the union of all term occurrences, as sorted,
 * disjoint, non-touching byte spans (sp->n == 0: nothing matched). Returns
 * EIM_OK, or EIM_ENOMEM when the buffer could not grow. */
int eim_fs_find(const eim_fs_matcher *m, const char *text, size_t len,
                eim_fs_spans *sp);

void eim_fs_spans_free(eim_fs_spans *sp);

/* Length in bytes of text once every code point inside sp is replaced by a
 * mask of mask_len bytes. */
size_t eim_fs_masked_len(const char *text, size_t len, const eim_fs_spans *sp,
                         size_t mask_len);

/* Writes the masked text, eim_fs_masked_len() bytes, to out (not
 * NUL-terminated). */
void eim_fs_mask(const char *text, size_t len, const eim_fs_spans *sp,
                 const char *mask, size_t mask_len, char *out);

#endif
