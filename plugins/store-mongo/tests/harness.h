/* A minimal host for loading store-mongo in tests: arena, log, clock, and
 * the plugin loaded with dlopen as the server would. */
#ifndef STORE_MONGO_TEST_HARNESS_H
#define STORE_MONGO_TEST_HARNESS_H

#include <exampleim/plugin.h>

typedef struct th_plugin {
  void *dl;
  const eim_plugin_desc *desc;
  const eim_store_ops *ops;
  void *state;
} th_plugin;

extern const eim_host th_host;
extern int th_failures;

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
      th_failures++;                                                             \
    }                                                                            \
  } while (0)

eim_arena *th_arena_new(void);
void th_arena_free(eim_arena *a);

/* Loads PATH and calls init with the given key/value pairs (NULL-ended
 * array key, value, key, value...). Returns init's result; on failure
 * the plugin is unloaded and err holds the message. */
int th_load(th_plugin *p, const char *path, const char *const *kv, eim_err *err);
void th_unload(th_plugin *p);

/* The environment variable or a loud failure (tests never skip). */
const char *th_env(const char *name);
/* A scratch database name for this run, "exampleim_t..." (the same in the
 * children of a test: it is kept in the environment), and a way to drop it
 * at the end with the store-mongo-test-dropdb program at dropdb. */
const char *th_database(void);
int th_drop_database(const char *dropdb);
/* Fills buf with a string unique to this process and moment. */
void th_unique(char *buf, size_t size, const char *prefix);
int64_t th_now_ms(void);

#endif
