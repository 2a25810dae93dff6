#include "filters.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "log.h"
#include "metrics.h"
#include "server.h"
#include "utf8.h"

int eim_filters_run(const char *conversation_id, const char *sender, const char *content_type,
                    const char *content, size_t len, size_t max_len, char **out,
                    size_t *outlen, char *why, size_t whylen) {
  *out = NULL;
  *outlen = 0;
  if (eim_srv.plugins.nfilters == 0) return 0;
  eim_arena a;
  eim_arena_init(&a);
  const char *cur = content;
  size_t curlen = len;
  int changed = 0, rc = 0;
  for (size_t i = 0; i < eim_srv.plugins.nfilters; i++) {
    eim_plugin_inst *pi = eim_srv.plugins.filters[i];
    eim_filter_msg m = {conversation_id, sender, content_type, cur, curlen, max_len};
    eim_filter_result r;
    memset(&r, 0, sizeof r);
    eim_err err = {0, ""};
    int frc = pi->desc->filter->inspect(pi->state, &m, &r, &a, &err);
    if (frc != EIM_OK) {
      EIM_LOG_E("msg=\"filter failed\" plugin=%s reason=\"%s\"", pi->desc->name, err.msg);
      snprintf(why, whylen, "filter %s failed", pi->desc->name);
      rc = EIM_PE_INTERNAL;
      goto done;
    }
    switch (r.verdict) {
      case EIM_FILTER_PASS:
        eim_metrics_filter_hit("pass");
        break;
      case EIM_FILTER_REWRITE:
        eim_metrics_filter_hit("rewrite");
        if (r.content == NULL || r.content_len > max_len || !eim_utf8_valid(r.content, r.content_len) ||
            memchr(r.content, '\0', r.content_len) != NULL) {
          EIM_LOG_E("msg=\"filter rewrote to invalid text\" plugin=%s", pi->desc->name);
          snprintf(why, whylen, "filter %s produced invalid text", pi->desc->name);
          rc = EIM_PE_INTERNAL;
          goto done;
        }
        cur = r.content;
        curlen = r.content_len;
        changed = 1;
        break;
      case EIM_FILTER_REJECT:
        eim_metrics_filter_hit("reject");
        r.reason[sizeof r.reason - 1] = '\0';
        snprintf(why, whylen, "%s", r.reason[0] ? r.reason : "refused by a filter");
        rc = EIM_PE_REJECTED;
        goto done;
      default:
        snprintf(why, whylen, "filter %s returned an unknown verdict", pi->desc->name);
        rc = EIM_PE_INTERNAL;
        goto done;
    }
  }
  if (changed) {
    *out = malloc(curlen + 1);
    if (*out == NULL) {
      snprintf(why, whylen, "out of memory");
      rc = EIM_PE_INTERNAL;
      goto done;
    }
    memcpy(*out, cur, curlen);
    (*out)[curlen] = '\0';
    *outlen = curlen;
  }
done:
  eim_arena_reset(&a);
  return rc;
}
