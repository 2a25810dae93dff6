#include "fixture.h"

int fixture_init(void **state, const eim_host *host, const eim_opt *opts, size_t nopts,
                 eim_err *err) {
  *state = NULL;
  return EIM_OK;
}

void fixture_fini(void *state) {}

static int fixture_inspect(void *state, const eim_filter_msg *m, eim_filter_result *r,
                           eim_arena *a, eim_err *err) {
  r->verdict = EIM_FILTER_PASS;
  return EIM_OK;
}

const eim_filter_ops fixture_filter_ops = {
    .version = EIM_FILTER_OPS_V1,
    .inspect = fixture_inspect,
};
