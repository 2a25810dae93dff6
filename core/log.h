/* Logging: one line per event, `ts=... level=... msg="..." key=value ...`,
 * to stderr. Safe from any thread (one write(2) per line). */
#ifndef EIM_LOG_H
#define EIM_LOG_H

#include "exampleim/plugin.h" /* EIM_LOG_* levels, EIM_PRINTF */

/* Lines above this level are dropped. Set once at start-up. */
void eim_log_set_level(int level);
int eim_log_level(void);
/* Parses "error|warn|info|debug"; -1 when unknown. */
int eim_log_parse_level(const char *s);

/* fmt produces the rest of the line after the level, conventionally
 * `msg="..." key=value`. The newline is added. */
void eim_log(int level, const char *fmt, ...) EIM_PRINTF(2, 3);
void eim_logv(int level, const char *fmt, va_list ap);

#define EIM_LOG_E(...) eim_log(EIM_LOG_ERROR, __VA_ARGS__)
#define EIM_LOG_W(...) eim_log(EIM_LOG_WARN, __VA_ARGS__)
#define EIM_LOG_I(...) eim_log(EIM_LOG_INFO, __VA_ARGS__)
#define EIM_LOG_D(...) \
  do { if (eim_log_level() >= EIM_LOG_DEBUG) eim_log(EIM_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
