/* Metrics in the Prometheus text format. Counters and histograms are
 * atomics, so any thread may update them; rendering runs on the loop. */
#ifndef EIM_METRICS_H
#define EIM_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  EIM_M_MSG_IN_CHAT,
  EIM_M_MSG_IN_PUSH,
  EIM_M_MSG_IN_READ,
  EIM_M_MSG_IN_SYNC,
  EIM_M_MSG_IN_ONLINE,
  EIM_M_MSG_IN_PING,
  EIM_M_MSG_IN_OTHER,
  EIM_M_MSG_IN__COUNT
} eim_metric_in;

typedef enum {
  EIM_M_EV_CHAT,
  EIM_M_EV_PUSH,
  EIM_M_EV_READ,
  EIM_M_EV_PRESENCE,
  EIM_M_EV_CREATED,
  EIM_M_EV__COUNT
} eim_metric_event;

/* Error codes, in the protocol's order (see errors.h). */
#define EIM_M_ERR__COUNT 10

typedef enum {
  EIM_H_STORE_LATENCY, /* seconds per store call */
  EIM_H_BATCH_SIZE,    /* messages per append batch */
  EIM_H__COUNT
} eim_metric_hist;

void eim_metrics_init(void);
void eim_metrics_msg_in(eim_metric_in t);
void eim_metrics_event_out(eim_metric_event t, uint64_t n);
void eim_metrics_error(int proto_code_index);
void eim_metrics_ack(void);
void eim_metrics_filter_hit(const char *verdict_name);
void eim_metrics_observe(eim_metric_hist h, double v);
/* Named metrics from plugins (prefixed exampleim_plugin_). kind: 'c', 'g'
 * or 'h'. */
void eim_metrics_plugin(const char *plugin, const char *name, char kind, double v);

/* Appends the exposition to a malloc'd buffer; extra is the transport's
 * and sessions' gauges, already formatted. Returns NULL on OOM. */
char *eim_metrics_render(const char *extra, size_t *len);
void eim_metrics_shutdown(void);

#endif
