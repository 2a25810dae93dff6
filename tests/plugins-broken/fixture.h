/* Shared by the broken-plugin fixtures (fixture.c): a filter kind that
 * passes every message, so that each fixture is a complete plugin except
 * for the one defect it exists to show. */
#ifndef EIM_BROKEN_FIXTURE_H
#define EIM_BROKEN_FIXTURE_H

#include "exampleim/plugin.h"

int fixture_init(void **state, const eim_host *host, const eim_opt *opts, size_t nopts,
                 eim_err *err);
void fixture_fini(void *state);
extern const eim_filter_ops fixture_filter_ops;

#endif
