/* Character normalisation for matching: case folding, width folding, and
 * the separator class that skip_separators ignores. */
#ifndef EIM_FS_FOLD_H
#define EIM_FS_FOLD_H

#include <stddef.h>
#include <stdint.h>

typedef struct eim_fs_range {
  uint32_t lo, hi; /* inclusive */
} eim_fs_range;

/* Every code point outside these ranges folds to itself and is no
 * separator, so a table built from the functions below need only look at
 * these. */
extern const eim_fs_range eim_fs_special[];
extern const size_t eim_fs_nspecial;

/* Simple case folding for ASCII, Latin-1, Latin Extended-A, basic Greek and
 * Cyrillic; full-width ASCII (U+FF01..U+FF5E) to its half-width form;
 * ideographic space to space. Idempotent: fold(fold(c)) == fold(c). */
uint32_t eim_fs_fold(uint32_t c);

/* 1 when the folded code point c is a space, control, punctuation, symbol
 * or zero-width character (U+200B..U+200D, U+2060, U+FEFF). */
int eim_fs_is_separator(uint32_t c);

#endif
