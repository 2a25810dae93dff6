/* Broken on purpose: init always fails with its own message, which the
 * loader must pass on after "init failed". */
#include "fixture.h"

static int init_fails(void **state, const eim_host *host, const eim_opt *opts, size_t nopts,
                      eim_err *err) {
  *state = NULL;
  return eim_err_set(err, EIM_EUNAVAIL,
                     "cannot reach the licence server at 127.0.0.1:9 (fails on purpose)");
}

EIM_PLUGIN_DEFINE("broken-init-fails", "0.0.1", init_fails, fixture_fini,
                  .filter = &fixture_filter_ops)
