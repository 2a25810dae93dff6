#include "log.h"

#include <stdatomic.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = EIM_LOG_INFO;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

void eim_log_set_level(int level) { atomic_store(&log_level, level); }
int eim_log_level(void) { return atomic_load(&log_level); }

int eim_log_parse_level(const char *s) {
  for (int i = 0; i < 4; i++)
    if (strcmp(s, level_names[i]) == 0) return i;
  return -1;
}

void eim_logv(int level, const char *fmt, va_list ap) {
  if (level > atomic_load(&log_level)) return;
  if (level < 0) level = 0;
  if (level > 3) level = 3;
  char line[2048];
  struct timeval tv;
  struct tm tm;
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s ",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                   tm.tm_sec, (long)(tv.tv_usec / 1000), level_names[level]);
  int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
  if (len > sizeof line - 2) len = sizeof line - 2;
  line[len++] = '\n';
  ssize_t w = write(STDERR_FILENO, line, len);
  (void)w;
}

void eim_log(int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  eim_logv(level, fmt, ap);
  va_end(ap);
}
