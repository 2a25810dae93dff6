/* The filter chain: every enabled filter plugin, in plugins.d order, on the
 * loop thread, before storage. */
#ifndef EIM_FILTERS_H
#define EIM_FILTERS_H

#include <stddef.h>

#include "errors.h"

/* Runs the chain over content (valid UTF-8, checked by the caller). Returns
 * 0 and sets *out and *outlen to a malloc'd final text when a filter rewrote it
 * (NULL when unchanged); or a protocol error (EIM_PE_REJECTED with the
 * filter's reason, EIM_PE_INTERNAL when a filter broke its contract) with
 * the message in why. */
int eim_filters_run(const char *conversation_id, const char *sender, const char *content_type,
                    const char *content, size_t len, size_t max_len, char **out,
                    size_t *outlen, char *why, size_t whylen);

#endif
