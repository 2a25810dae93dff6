/* Aho-Corasick matcher over folded code points.
 *
 * Built once from a list of terms, then read-only: any number of threads may
 * scan with the same matcher. Independent of the plugin wrapper so that the
 * unit tests, fuzzers and the benchmark use it directly. */
#ifndef EIM_FS_MATCHER_H
#define EIM_FS_MATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "exampleim/plugin.h"

/* Longest term, in code points after folding (and, with
 * EIM_FS_SKIP_SEPARATORS, after removing separators). */
#define EIM_FS_TERM_MAX_CPS 64

enum {
  /* Separators in the text are skipped between the characters of a term;
   * separators in a term are ignored. */
  EIM_FS_SKIP_SEPARATORS = 1u
};

typedef struct eim_fs_matcher eim_fs_matcher;

/* Builds a matcher from n terms (terms[i] is lens[i] bytes of UTF-8, not
 * necessarily NUL-terminated). On success *out owns the new matcher (free it
 * with eim_fs_matcher_free) and EIM_OK is returned. A term that is not valid
 * UTF-8, is empty after folding or is longer than EIM_FS_TERM_MAX_CPS gives
 * EIM_EINVAL, its index in *bad_term (if not NULL) and the reason in err;
 * memory exhaustion gives EIM_ENOMEM. Duplicate terms are harmless. */
int eim_fs_matcher_build(const char *const *terms, const size_t *lens,
                         size_t n, unsigned flags, eim_fs_matcher **out,
                         size_t *bad_term, eim_err *err);

void eim_fs_matcher_free(eim_fs_matcher *m);

/* Called for every text position where a term occurrence ends, with the
 * byte span [start, end) of the longest occurrence ending there (shorter
 * ones ending at the same place lie inside it). Calls come in increasing
 * `end` order; spans may overlap and a later span may start before an
 * earlier one. */
typedef void (*eim_fs_match_cb)(void *ctx, size_t start, size_t end);

/* Scans len bytes of text. Invalid UTF-8 bytes match nothing and break
 * any occurrence they sit in. */
void eim_fs_matcher_scan(const eim_fs_matcher *m, const char *text, size_t len,
                         eim_fs_match_cb cb, void *ctx);

/* Automaton size, for logs and the benchmark. */
size_t eim_fs_matcher_states(const eim_fs_matcher *m);

#endif
