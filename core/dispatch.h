/* The WebSocket side of the server (dispatch.c). */
#ifndef EIM_DISPATCH_H
#define EIM_DISPATCH_H

#include <stdint.h>

#include "net.h"

/* Completes a WebSocket upgrade for an authenticated user: loads the user's
 * peers, then answers 101 (or an error). */
void eim_ws_upgrade(eim_http_conn *c, const eim_http_req *req, const char *user_id,
                    int64_t expires_at);

#endif
