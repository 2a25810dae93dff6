/* queue-kafka options: the plugin's own keys and the kafka.* pass-through. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kq.h"

#define KQ_BROKERS_MAX 1024

static const char *where_file(const eim_opt *o) {
  return o->file != NULL ? o->file : "(options)";
}

int kq_is_name(const char *s, size_t max) {
  size_t n = strlen(s);
  if (n == 0 || n > max) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
      return 0;
  }
  return 1;
}

/* Parses a decimal integer in [lo, hi]; 0 on success. */
static int parse_int(const char *s, long lo, long hi, int *out) {
  char *end;
  long v;
  errno = 0;
  v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) return -1;
  *out = (int)v;
  return 0;
}

/* These are derived from the plugin's own keys; letting kafka.* set them
 * would break the one-group-per-node rule or hide the brokers key. */
static int is_managed_prop(const char *name) {
  static const char *const managed[] = {"bootstrap.servers", "metadata.broker.list",
                                        "group.id", "group.instance.id"};
  for (size_t i = 0; i < sizeof managed / sizeof managed[0]; i++)
    if (strcmp(name, managed[i]) == 0) return 1;
  return 0;
}

int kq_config_parse(kq_config *cfg, const eim_opt *opts, size_t nopts,
                    eim_err *err) {
  int seen_brokers = 0, seen_prefix = 0, seen_node = 0, seen_parts = 0;
  int seen_start = 0, seen_flush = 0;

  memset(cfg, 0, sizeof *cfg);
  strcpy(cfg->prefix, "exampleim");
  cfg->partitions = 8;
  cfg->start_timeout_ms = 30000;
  cfg->flush_timeout_ms = 10000;

  for (size_t i = 0; i < nopts; i++) {
    const eim_opt *o = &opts[i];
    const char *k = o->key, *v = o->value != NULL ? o->value : "";
    int *seen = NULL;

    if (strcmp(k, "brokers") == 0) {
      seen = &seen_brokers;
      if (v[0] == '\0' || strlen(v) > KQ_BROKERS_MAX || strpbrk(v, " \t") != NULL)
        return eim_err_set(err, EIM_EINVAL,
                           "%s:%d: brokers must be a comma-separated host:port list",
                           where_file(o), o->line);
      cfg->brokers = v;
    } else if (strcmp(k, "topic_prefix") == 0) {
      seen = &seen_prefix;
      if (!kq_is_name(v, KQ_PREFIX_MAX))
        return eim_err_set(err, EIM_EINVAL,
                           "%s:%d: topic_prefix must be 1-%d of A-Z a-z 0-9 . _ -",
                           where_file(o), o->line, KQ_PREFIX_MAX);
      strcpy(cfg->prefix, v);
    } else if (strcmp(k, "node_id") == 0) {
      seen = &seen_node;
      if (!kq_is_name(v, KQ_NODE_ID_MAX))
        return eim_err_set(err, EIM_EINVAL,
                           "%s:%d: node_id must be 1-%d of A-Z a-z 0-9 . _ -",
                           where_file(o), o->line, KQ_NODE_ID_MAX);
      strcpy(cfg->node_id, v);
    } else if (strcmp(k, "partitions") == 0) {
      seen = &seen_parts;
      if (parse_int(v, 1, 10000, &cfg->partitions) != 0)
        return eim_err_set(err, EIM_EINVAL, "%s:%d: partitions must be 1-10000",
                           where_file(o), o->line);
    } else if (strcmp(k, "start_timeout_ms") == 0) {
      seen = &seen_start;
      if (parse_int(v, 100, 600000, &cfg->start_timeout_ms) != 0)
        return eim_err_set(err, EIM_EINVAL,
                           "%s:%d: start_timeout_ms must be 100-600000",
                           where_file(o), o->line);
    } else if (strcmp(k, "flush_timeout_ms") == 0) {
      seen = &seen_flush;
      if (parse_int(v, 0, 600000, &cfg->flush_timeout_ms) != 0)
        return eim_err_set(err, EIM_EINVAL,
                           "%s:%d: flush_timeout_ms must be 0-600000",
                           where_file(o), o->line);
    } else if (strncmp(k, "kafka.", 6) == 0 && k[6] != '\0') {
      const char *name = k + 6;
      if (is_managed_prop(name))
        return eim_err_set(err, EIM_EINVAL,
                           "%s:%d: '%s' is set by the plugin itself (use brokers, node_id)",
                           where_file(o), o->line, k);
      for (size_t j = 0; j < cfg->nprops; j++)
        if (strcmp(cfg->props[j].name, name) == 0)
          return eim_err_set(err, EIM_EINVAL, "%s:%d: duplicate key '%s'",
                             where_file(o), o->line, k);
      if (cfg->nprops == KQ_MAX_PROPS)
        return eim_err_set(err, EIM_EINVAL, "%s:%d: more than %d kafka.* keys",
                           where_file(o), o->line, KQ_MAX_PROPS);
      cfg->props[cfg->nprops++] = (kq_prop){name, v, o->file, o->line};
    } else {
      return eim_err_set(err, EIM_EINVAL, "%s:%d: unknown key '%s'",
                         where_file(o), o->line, k);
    }
    if (seen != NULL && (*seen)++)
      return eim_err_set(err, EIM_EINVAL, "%s:%d: duplicate key '%s'",
                         where_file(o), o->line, k);
  }
  if (cfg->brokers == NULL)
    return eim_err_set(err, EIM_EINVAL, "missing key 'brokers' (e.g. brokers = 127.0.0.1:9092)");
  return EIM_OK;
}

int kq_config_apply_props(const kq_config *cfg, rd_kafka_conf_t *conf,
                          eim_err *err) {
  char why[256];
  for (size_t i = 0; i < cfg->nprops; i++) {
    const kq_prop *p = &cfg->props[i];
    if (rd_kafka_conf_set(conf, p->name, p->value, why, sizeof why) != RD_KAFKA_CONF_OK)
      return eim_err_set(err, EIM_EINVAL, "%s:%d: kafka.%s: %s",
                         p->file != NULL ? p->file : "(options)", p->line, p->name, why);
  }
  return EIM_OK;
}
