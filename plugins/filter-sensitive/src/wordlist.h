/* The words_file format: UTF-8, one term per line; blank lines and lines
 * whose first non-blank character is '#' are ignored; leading and trailing
 * spaces and tabs, a trailing CR and a leading byte-order mark are dropped. */
#ifndef EIM_FS_WORDLIST_H
#define EIM_FS_WORDLIST_H

#include <stddef.h>

#include "matcher.h"

#define EIM_FS_WORDS_MAX_BYTES (16u << 20) /* whole file */
#define EIM_FS_LINE_MAX_BYTES 1024u        /* one term */
#define EIM_FS_TERMS_MAX 1000000u

/* Parses len bytes of word-list text (name is used in messages only) and
 * builds a matcher with the given EIM_FS_* flags. On success *out owns the
 * matcher and *nterms is the number of terms. A list with no term, a bad
 * term or a limit exceeded gives EIM_EINVAL with "name:line: why" in err. */
int eim_fs_words_parse(const char *buf, size_t len, const char *name,
                       unsigned flags, eim_fs_matcher **out, size_t *nterms,
                       eim_err *err);

/* Reads the file at path, then as eim_fs_words_parse(). A file that cannot
 * be read gives EIM_EINVAL naming the path and the system's reason. */
int eim_fs_words_load(const char *path, unsigned flags, eim_fs_matcher **out,
                      size_t *nterms, eim_err *err);

#endif
