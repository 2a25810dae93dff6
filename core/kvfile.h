/* The configuration file format shared by exampleim.conf and plugins.d:
 * `key = value` lines; `#` starts a comment line; blank lines are ignored;
 * keys are [A-Za-z0-9_.-]+; the value is the rest of the line, trimmed (no
 * quoting). A repeated key is an error. */
#ifndef EIM_KVFILE_H
#define EIM_KVFILE_H

#include <stddef.h>

typedef struct eim_kv {
  char *key;
  char *value;
  int line;
} eim_kv;

typedef struct eim_kvfile {
  char *path;
  eim_kv *items;
  size_t n;
} eim_kvfile;

/* Parses buf (len bytes, need not be NUL-terminated). On error returns -1
 * with "PATH:LINE: why" in errbuf and leaves *out empty. path only names the
 * source in messages and out->path. */
int eim_kvfile_parse_buf(const char *path, const char *buf, size_t len,
                         eim_kvfile *out, char *errbuf, size_t errlen);
/* Reads and parses a file (at most 1 MiB). */
int eim_kvfile_load(const char *path, eim_kvfile *out, char *errbuf, size_t errlen);
void eim_kvfile_free(eim_kvfile *f);
const eim_kv *eim_kvfile_get(const eim_kvfile *f, const char *key);

/* Parses a boolean (true/false/yes/no/on/off/1/0). Returns 0/1, -1 if not. */
int eim_parse_bool(const char *s);
/* Parses a decimal integer in [min, max]. Returns 0 or -1. */
int eim_parse_i64(const char *s, long long min, long long max, long long *out);

#endif
