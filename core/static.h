/* The web client's static files. Everything under web_dir is read into
 * memory at start-up (so serving never touches the disk from the loop
 * thread, and a request path can only ever name a file that was loaded: no
 * traversal). Without a web_dir, `/` serves a small built-in page. */
#ifndef EIM_STATIC_H
#define EIM_STATIC_H

#include "net.h"

/* Loads dir (may be "" for none). Returns 0 or -1 after logging why. */
int eim_static_load(const char *dir);
/* Answers a GET or HEAD for a non-API path: the file, or 404. */
void eim_static_serve(eim_http_conn *c, const eim_http_req *req);
void eim_static_free(void);

#endif
