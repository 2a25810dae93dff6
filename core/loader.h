/* Plugin loader: reads the *.conf files of plugins.d in file-name order, dlopen()s each
 * enabled plugin with RTLD_NOW | RTLD_LOCAL, checks its descriptor against
 * ABI rules (see include/exampleim/plugin.h) and calls init with its own host
 * table. Start-up either loads every enabled plugin or none: any refusal
 * unloads what was loaded and returns the reason, naming the file. */
#ifndef EIM_LOADER_H
#define EIM_LOADER_H

#include <stddef.h>

#include "config.h"
#include "kvfile.h"
#include "exampleim/plugin.h"

typedef struct eim_plugin_inst {
  char *conf_path;           /* the plugins.d file */
  char *so_path;
  void *dl;
  const eim_plugin_desc *desc;
  void *state;
  eim_host host;             /* this plugin's own host table */
  eim_kvfile file;           /* its plugins.d file: options stay valid until fini */
  eim_opt *opts;
  int initialized;
} eim_plugin_inst;

typedef struct eim_plugins {
  eim_plugin_inst *items;
  size_t n;
  eim_plugin_inst *auth, *store, *queue; /* queue may be NULL */
  eim_plugin_inst **filters;             /* in file-name order */
  size_t nfilters;
} eim_plugins;

/* Loads the plugins of cfg->plugins_dir. Returns 0, or -1 with
 * "FILE: reason" in errbuf after unloading everything. cfg must outlive
 * the plugins (host config_get reads it). */
int eim_plugins_load(eim_plugins *p, const eim_config *cfg, char *errbuf, size_t errlen);
/* Calls fini in reverse order and dlcloses. */
void eim_plugins_unload(eim_plugins *p);

#endif
