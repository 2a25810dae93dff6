/* A minimal host for loading store-mysql in its own tests: a malloc arena,
 * stderr logging, the plugin loaded with dlopen and options built from the
 * MYSQL_* environment that tests/services/up mariadb prints. */
#ifndef STORE_MYSQL_TH_H
#define STORE_MYSQL_TH_H

#include <exampleim/plugin.h>

typedef struct th_plugin {
  void *dl;
  const eim_plugin_desc *desc;
  const eim_store_ops *ops;
} th_plugin;

extern const eim_host th_host;
extern int th_failures;

/* Loads the plugin at path; exits on failure. */
void th_load(th_plugin *p, const char *path);
/* Options for the test database: host, port, user, password, database
 * from MYSQL_* (file test.conf, lines 1 to 5), plus extra (NULL-terminated
 * key, value pairs, lines 6 on). Exits with
 * a failure when a MYSQL_* variable is missing. Returns the count. */
size_t th_opts(eim_opt *opts, size_t max, const char *const *extra);
/* init + conn_open with th_opts; exits on failure. */
void *th_open(th_plugin *p, void **state, const char *const *extra);

eim_arena *th_arena_new(void);
void th_arena_free(eim_arena *a);
int64_t th_now(void);
/* A name unique to this process and call, for users that never collide
 * with earlier runs on the same database. */
const char *th_unique(eim_arena *a, const char *tag);

/* Prints and counts a failed expectation; the test goes on. */
#define TH_CHECK(cond, ...)                                             \
  do {                                                                  \
    if (!(cond)) {                                                      \
      th_failures++;                                                    \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);              \
      fprintf(stderr, __VA_ARGS__);                                     \
      fputc('\n', stderr);                                              \
    }                                                                   \
  } while (0)
#define TH_OK(call, err)                                                \
  do {                                                                  \
    int th_rc_ = (call);                                                \
    TH_CHECK(th_rc_ == EIM_OK, "%s = %d (%s)", #call, th_rc_, (err)->msg); \
  } while (0)

#endif

/* Shared fixtures (fixtures.c). Each returns an id from a, or NULL after
 * counting a failure. */
const char *th_user(th_plugin *p, void *conn, eim_arena *a, const char *tag);
const char *th_group(th_plugin *p, void *conn, eim_arena *a, const char *creator,
                     const char *const *members, size_t n);
/* Appends n messages from sender to conv with client_msg_ids "<tag>-<i>",
 * in batches of `batch`, re-sending every 10th batch once to check that a
 * retry is answered as a duplicate. Returns the failures seen. */
int th_append_run(th_plugin *p, void *conn, const char *conv, const char *sender,
                  const char *tag, size_t n, size_t batch);
/* Checks that conv holds exactly seqs 1..total with distinct client_msg_ids. */
void th_check_gapless(th_plugin *p, void *conn, const char *conv, uint64_t total);

/* The test programs (one file each). */
int th_main_basic(const char *plugin);
int th_main_threads(const char *plugin);
int th_main_multiproc(const char *self, const char *plugin);
int th_main_worker(const char *plugin, const char *conv, const char *sender,
                   const char *tag, size_t n);
int th_main_reconnect(const char *plugin, const char *services);
int th_main_bench(const char *plugin, size_t n, size_t batch, size_t threads);
