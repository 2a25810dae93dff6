/* Broken on purpose, or rather strict on purpose: it knows no keys at all,
 * so the test's `bogus_key = 1` line makes init refuse, naming file and line
 * as every plugin must. */
#include "fixture.h"

static int init_strict(void **state, const eim_host *host, const eim_opt *opts, size_t nopts,
                       eim_err *err) {
  *state = NULL;
  if (nopts > 0)
    return eim_err_set(err, EIM_EINVAL, "%s:%d: unknown key '%s'", opts[0].file,
                       opts[0].line, opts[0].key);
  return EIM_OK;
}

EIM_PLUGIN_DEFINE("broken-unknown-key", "0.0.1", init_strict, fixture_fini,
                  .filter = &fixture_filter_ops)
