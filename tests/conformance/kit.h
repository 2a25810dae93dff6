/*
 * exampleim-conformance: shared declarations of the kit. The kit loads a
 * plugin through the ABI alone, hands it a test host table (kit_host.c) and
 * checks its contract, one line per check.
 */
#ifndef EIM_KIT_H
#define EIM_KIT_H

#include <exampleim/plugin.h>
#include <stdio.h>

/* kit_main.c: the tally and its one line per check. */
typedef struct kit_tally {
  int passed, failed;
} kit_tally;
void kit_report(kit_tally *t, const char *name, int ok, const char *why);

/* kit_filter.c: the filter contract. */
void kit_filter_checks(kit_tally *t, const eim_plugin_desc *d, const char *cfg_path);

/* kit_host.c: the test host. The data directory is a fresh temporary one
 * that kit_host_close removes. */
int kit_host_open(eim_host *h, const char *plugin_name);
void kit_host_drain(const eim_host *h);
void kit_host_close(eim_host *h);
eim_arena *kit_arena_new(void);
void kit_arena_free(eim_arena *a);

/* kit_config.c: a plugins.d-style file, minus the loader's keys. */
typedef struct kit_config {
  eim_opt *opts;
  size_t n;
} kit_config;
int kit_config_read(const char *path, kit_config *cfg, char *why, size_t whylen);
void kit_config_free(kit_config *cfg);

/* What the store checks share. Each check gets a fresh arena `a`, freed
 * after it, and reports why it failed in `why`. */
typedef struct kit_store {
  const eim_host *host;
  const eim_store_ops *ops;
  void *state;
  void *conn;
  eim_arena *a;
  eim_err err;
  char prefix[16];  /* random per run: usernames never collide with old data */
  int64_t clock;    /* created_at values, strictly increasing */
  char why[512];
} kit_store;

typedef struct kit_check {
  const char *name;
  int (*run)(kit_store *k);
} kit_check;

extern const kit_check kit_store_basic_checks[];
extern const kit_check kit_store_msg_checks[];
extern const kit_check kit_store_data_checks[];

/* Fails the current check (returns -1 from it) unless cond holds. */
#define KIT_EXPECT(k, cond, ...)                              \
  do {                                                        \
    if (!(cond)) {                                            \
      snprintf((k)->why, sizeof (k)->why, __VA_ARGS__);       \
      return -1;                                              \
    }                                                         \
  } while (0)

/* Fails the current check unless the store call returns want. */
#define KIT_CODE(k, want, what, call)                                               \
  do {                                                                              \
    int kit_rc_ = (call);                                                           \
    if (kit_rc_ != (want)) {                                                        \
      snprintf((k)->why, sizeof (k)->why, "%s returned %d, want %d (%s)", (what),   \
               kit_rc_, (want), kit_rc_ != EIM_OK ? (k)->err.msg : "no error");     \
      return -1;                                                                    \
    }                                                                               \
  } while (0)

#define KIT_OK(k, what, call) KIT_CODE(k, EIM_OK, what, call)

/* kit_util.c: fixtures. Each returns 0, or -1 with k->why set. */
int64_t kit_time(kit_store *k);
char *kit_fmt(kit_store *k, const char *fmt, ...) EIM_PRINTF(2, 3);
int kit_user(kit_store *k, const char *tag, const char **id);
int kit_single(kit_store *k, const char *creator, const char *peer, const char **conv);
int kit_group(kit_store *k, const char *creator, const char *const *members, size_t n,
              const char **conv);
int kit_send(kit_store *k, const char *conv, const char *sender, const char *cmid,
             const char *content, eim_msg *out);
int kit_history_all(kit_store *k, void *conn, const char *conv, eim_msg **msgs, size_t *n);
int kit_ids_equal(const char *const *a, size_t na, const char *const *b, size_t nb);
int kit_ids_same_set(const char *const *a, size_t na, const char *const *b, size_t nb);

#endif
