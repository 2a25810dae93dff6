/*
 * exampleim-conformance KIND PLUGIN.so CONFIG_FILE    (KIND: store or filter)
 *
 * Loads a plugin the way the server does (dlopen RTLD_NOW | RTLD_LOCAL, one
 * descriptor function), checks its descriptor, starts it with the kit's own
 * host table and the options of CONFIG_FILE, and checks the contract of its
 * kind. Prints `ok - NAME` or `FAIL - NAME: why` per check, comment lines
 * starting with `#`, and last `N passed, M failed`. Exits 0 only when
 * nothing failed; 2 on a usage error.
 */
#include "kit.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

void kit_report(kit_tally *t, const char *name, int ok, const char *why) {
  if (ok) {
    t->passed++;
    printf("ok - %s\n", name);
  } else {
    t->failed++;
    printf("FAIL - %s: %s\n", name, why);
  }
  fflush(stdout);
}

/* Reports which v1 store functions are missing into why; 1 if none. */
static int kit_store_ops_complete(const eim_store_ops *o, char *why, size_t len) {
  const struct {
    const char *name;
    int present;
  } fns[] = {
      {"conn_open", o->conn_open != NULL},     {"conn_close", o->conn_close != NULL},
      {"ping", o->ping != NULL},               {"user_create", o->user_create != NULL},
      {"user_by_name", o->user_by_name != NULL}, {"user_by_id", o->user_by_id != NULL},
      {"conv_create", o->conv_create != NULL}, {"conv_get", o->conv_get != NULL},
      {"conv_list", o->conv_list != NULL},     {"conv_add_members", o->conv_add_members != NULL},
      {"conv_members", o->conv_members != NULL}, {"user_peers", o->user_peers != NULL},
      {"append", o->append != NULL},           {"history", o->history != NULL},
      {"read_set", o->read_set != NULL},
  };
  size_t used = 0;

  why[0] = '\0';
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    if (!fns[i].present && used < len)
      used += (size_t)snprintf(why + used, len - used, "%s%s", used ? ", " : "missing ",
                               fns[i].name);
  }
  return why[0] == '\0';
}

/* Checks the descriptor as the server's loader does; 1 when usable. */
static int kit_descriptor(kit_tally *t, const eim_plugin_desc *d) {
  char why[512];
  int ok;

  ok = d->abi_major == EIM_ABI_MAJOR;
  snprintf(why, sizeof why, "ABI major %u, kit speaks %u", d->abi_major, EIM_ABI_MAJOR);
  kit_report(t, "descriptor.abi_major", ok, why);
  if (!ok)
    return 0;
  ok = d->size >= EIM_PLUGIN_DESC_MIN_SIZE;
  snprintf(why, sizeof why, "size %u, below the minimum %u", d->size,
           (unsigned)EIM_PLUGIN_DESC_MIN_SIZE);
  kit_report(t, "descriptor.size", ok, why);
  if (!ok)
    return 0;
  ok = d->name != NULL && d->version != NULL && d->init != NULL && d->fini != NULL;
  kit_report(t, "descriptor.fields", ok, "name, version, init and fini are required");
  if (!ok)
    return 0;
  return 1;
}

/* Checks that the descriptor provides a store, with every v1 function. */
static int kit_store_descriptor(kit_tally *t, const eim_plugin_desc *d) {
  char why[512];
  int ok = d->store != NULL && d->store->version >= EIM_STORE_OPS_V1;

  snprintf(why, sizeof why, "%s", d->store == NULL ? "no store ops" : "store ops version 0");
  kit_report(t, "descriptor.store_ops", ok, why);
  if (!ok)
    return 0;
  ok = kit_store_ops_complete(d->store, why, sizeof why);
  kit_report(t, "descriptor.store_v1_complete", ok, why);
  return ok;
}

static void kit_run(kit_tally *t, kit_store *k, const kit_check *checks) {
  for (const kit_check *c = checks; c->name != NULL; c++) {
    int ok;

    k->a = kit_arena_new();
    k->why[0] = '\0';
    memset(&k->err, 0, sizeof k->err);
    ok = k->a != NULL && c->run(k) == 0;
    kit_report(t, c->name, ok, k->a != NULL ? k->why : "out of memory");
    kit_arena_free(k->a);
    k->a = NULL;
    kit_host_drain(k->host);
  }
}

static void kit_store_checks(kit_tally *t, const eim_plugin_desc *d, const char *cfg_path) {
  kit_config cfg;
  eim_host host;
  kit_store k = {0};
  unsigned char rnd[4];
  char why[512];
  int ok;

  if (kit_config_read(cfg_path, &cfg, why, sizeof why) != 0) {
    kit_report(t, "config", 0, why);
    kit_config_free(&cfg);
    return;
  }
  if (kit_host_open(&host, d->name) != 0) {
    kit_report(t, "host", 0, "cannot create a temporary data directory");
    kit_config_free(&cfg);
    return;
  }
  k.host = &host;
  k.ops = d->store;
  k.clock = host.now_ms(&host);
  if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
    memset(rnd, 0, sizeof rnd);
  snprintf(k.prefix, sizeof k.prefix, "k%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
  printf("# run prefix %s\n", k.prefix);

  ok = d->init(&k.state, &host, cfg.opts, cfg.n, &k.err) == EIM_OK;
  kit_report(t, "init", ok, k.err.msg);
  if (ok) {
    ok = k.ops->conn_open(k.state, &k.conn, &k.err) == EIM_OK;
    kit_report(t, "conn_open", ok, k.err.msg);
    if (ok) {
      kit_run(t, &k, kit_store_basic_checks);
      kit_run(t, &k, kit_store_msg_checks);
      kit_run(t, &k, kit_store_data_checks);
      k.ops->conn_close(k.state, k.conn);
    }
    d->fini(k.state);
  }
  kit_host_close(&host);
  kit_config_free(&cfg);
}

int main(int argc, char **argv) {
  kit_tally t = {0, 0};
  eim_plugin_describe_fn describe;
  const eim_plugin_desc *d;
  void *so;

  int store = argc == 4 && strcmp(argv[1], "store") == 0;
  int filter = argc == 4 && strcmp(argv[1], "filter") == 0;

  if (!store && !filter) {
    fprintf(stderr, "usage: %s store|filter PLUGIN.so CONFIG_FILE\n", argv[0]);
    return 2;
  }
  so = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
  if (so == NULL) {
    kit_report(&t, "load", 0, dlerror());
    goto done;
  }
  *(void **)&describe = dlsym(so, EIM_PLUGIN_SYMBOL);
  d = describe != NULL ? describe() : NULL;
  kit_report(&t, "load", d != NULL, "no " EIM_PLUGIN_SYMBOL "() or it returned NULL");
  if (d != NULL && kit_descriptor(&t, d)) {
    if (store && kit_store_descriptor(&t, d))
      kit_store_checks(&t, d, argv[3]);
    if (filter)
      kit_filter_checks(&t, d, argv[3]);
  }
  dlclose(so);

done:
  printf("%d passed, %d failed\n", t.passed, t.failed);
  return t.failed == 0 && t.passed > 0 ? 0 : 1;
}
