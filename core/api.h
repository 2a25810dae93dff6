/* The HTTP API (api.c): routing, authentication, the REST handlers. */
#ifndef EIM_API_H
#define EIM_API_H

#include <stdint.h>

#include "net.h"

/* Prepares what login needs (the timing-equaliser hash, the failed-login
 * limiters). Returns 0 or -1. */
int eim_api_init(void);
/* Forgets failed-login buckets that are full again; call every second. */
void eim_api_sweep(int64_t now_ms);
void eim_api_free(void);

/* The transport's request handler. */
void eim_api_on_request(void *ctx, eim_http_conn *c, const eim_http_req *req);
/* Writes an HTTP error with the protocol's JSON body. */
void eim_api_error(eim_http_conn *c, int perr, const char *message);

#endif
