/*
 * Reads a plugin config file in the plugins.d format: `key = value` lines,
 * blank lines and lines starting with `#` ignored, spaces around key and
 * value trimmed. The loader's own keys (plugin, enabled) are dropped, as the
 * server drops them, so the plugin sees what it would see in production.
 */
#include "kit.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define KIT_LINE_MAX 8192

static char *kit_trim(char *s) {
  char *end;

  while (isspace((unsigned char)*s))
    s++;
  end = s + strlen(s);
  while (end > s && isspace((unsigned char)end[-1]))
    *--end = '\0';
  return s;
}

void kit_config_free(kit_config *cfg) {
  for (size_t i = 0; i < cfg->n; i++) {
    free((char *)cfg->opts[i].key);
    free((char *)cfg->opts[i].value);
  }
  free(cfg->opts);
  cfg->opts = NULL;
  cfg->n = 0;
}

/* Fills cfg (freed with kit_config_free, also after a failure); opt.file
 * points at path, which must outlive cfg. Returns 0, or -1 with why. */
int kit_config_read(const char *path, kit_config *cfg, char *why, size_t whylen) {
  char line[KIT_LINE_MAX];
  FILE *f;
  int lineno = 0;
  int rc = -1;

  cfg->opts = NULL;
  cfg->n = 0;
  f = fopen(path, "r");
  if (f == NULL) {
    snprintf(why, whylen, "cannot open %s", path);
    return -1;
  }
  while (fgets(line, sizeof line, f) != NULL) {
    char *s, *eq, *key, *value;
    eim_opt *grown;

    lineno++;
    if (strchr(line, '\n') == NULL && !feof(f)) {
      snprintf(why, whylen, "%s:%d: line too long", path, lineno);
      goto done;
    }
    s = kit_trim(line);
    if (*s == '\0' || *s == '#')
      continue;
    eq = strchr(s, '=');
    if (eq == NULL) {
      snprintf(why, whylen, "%s:%d: expected key = value", path, lineno);
      goto done;
    }
    *eq = '\0';
    key = kit_trim(s);
    value = kit_trim(eq + 1);
    if (*key == '\0') {
      snprintf(why, whylen, "%s:%d: empty key", path, lineno);
      goto done;
    }
    if (strcmp(key, "plugin") == 0 || strcmp(key, "enabled") == 0)
      continue;
    grown = realloc(cfg->opts, (cfg->n + 1) * sizeof *grown);
    if (grown == NULL) {
      snprintf(why, whylen, "out of memory");
      goto done;
    }
    cfg->opts = grown;
    cfg->opts[cfg->n].key = strdup(key);
    cfg->opts[cfg->n].value = strdup(value);
    cfg->opts[cfg->n].file = path;
    cfg->opts[cfg->n].line = lineno;
    cfg->n++;
    if (cfg->opts[cfg->n - 1].key == NULL || cfg->opts[cfg->n - 1].value == NULL) {
      snprintf(why, whylen, "out of memory");
      goto done;
    }
  }
  rc = 0;

done:
  fclose(f);
  return rc;
}
