/*
 * A filter that breaks the contract the way careless filters do: it rewrites
 * every other message by truncating it to half its bytes (cutting UTF-8
 * sequences in two), and its verdict depends on a call counter, so the same
 * input gives different results. The conformance kit must catch it.
 */
#include <exampleim/plugin.h>
#include <stdlib.h>

typedef struct {
  const eim_host *host;
  unsigned calls;
} broken_filter;

static int bf_init(void **state, const eim_host *host, const eim_opt *opts, size_t nopts,
                   eim_err *err) {
  (void)opts;
  (void)nopts;
  broken_filter *f = calloc(1, sizeof *f);
  if (f == NULL) return eim_err_set(err, EIM_ENOMEM, "out of memory");
  f->host = host;
  *state = f;
  return EIM_OK;
}

static void bf_fini(void *state) { free(state); }

static int bf_inspect(void *state, const eim_filter_msg *m, eim_filter_result *r, eim_arena *a,
                      eim_err *err) {
  broken_filter *f = state;
  (void)err;
  if (f->calls++ % 2 == 0 || m->content_len < 2) {
    r->verdict = EIM_FILTER_PASS;
    return EIM_OK;
  }
  size_t n = m->content_len / 2;
  char *out = f->host->arena_strndup(a, m->content, n);
  r->verdict = EIM_FILTER_REWRITE;
  r->content = out;
  r->content_len = n;
  return EIM_OK;
}

static const eim_filter_ops bf_ops = {EIM_FILTER_OPS_V1, bf_inspect, NULL};

EIM_PLUGIN_DEFINE("broken-filter", "0.0.1", bf_init, bf_fini, .filter = &bf_ops)
