#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "config.h"

int main(void) {
  eim_config c;
  char err[256];
  eim_config_init(&c);
  CHECK_STR(c.listen, "127.0.0.1:8080");
  CHECK(c.max_content_bytes == 8192);
  CHECK(eim_config_set(&c, "listen", "0.0.0.0:9000", err, sizeof err) == 0);
  CHECK_STR(eim_config_get(&c, "listen"), "0.0.0.0:9000");
  CHECK(eim_config_set(&c, "max_content_bytes", "100", err, sizeof err) == 0 && c.max_content_bytes == 100);
  CHECK(eim_config_set(&c, "max_content_bytes", "0", err, sizeof err) != 0);
  CHECK(eim_config_set(&c, "max_content_bytes", "abc", err, sizeof err) != 0);
  CHECK(strstr(err, "max_content_bytes") != NULL);
  CHECK(eim_config_set(&c, "bogus", "1", err, sizeof err) != 0);
  CHECK(strstr(err, "unknown key 'bogus'") != NULL);
  CHECK(eim_config_set(&c, "log_level", "debug", err, sizeof err) == 0 && c.log_level == 3);
  CHECK(eim_config_set(&c, "log_level", "loud", err, sizeof err) != 0);

  char path[] = "/tmp/eim-config-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  FILE *fp = fdopen(fd, "w");
  fputs("data_dir = /tmp/x\n# c\nstore_workers = 2\nnot_a_key = 3\n", fp);
  fclose(fp);
  CHECK(eim_config_load(&c, path, err, sizeof err) != 0);
  CHECK(strstr(err, path) != NULL && strstr(err, ":4:") != NULL);
  fp = fopen(path, "w");
  fputs("data_dir = /tmp/x\nstore_workers = 2\n", fp);
  fclose(fp);
  CHECK(eim_config_load(&c, path, err, sizeof err) == 0);
  CHECK_STR(eim_config_get(&c, "data_dir"), "/tmp/x");
  CHECK(c.store_workers == 2);
  CHECK_STR(eim_config_get(&c, "store_workers"), "2");
  CHECK(eim_config_get(&c, "nope") == NULL);
  unlink(path);

  char host[64];
  int port;
  CHECK(eim_split_host_port("127.0.0.1:80", host, sizeof host, &port) == 0 && port == 80);
  CHECK_STR(host, "127.0.0.1");
  CHECK(eim_split_host_port("[::1]:8080", host, sizeof host, &port) == 0 && port == 8080);
  CHECK_STR(host, "::1");
  CHECK(eim_split_host_port("localhost", host, sizeof host, &port) != 0);
  CHECK(eim_split_host_port(":80", host, sizeof host, &port) != 0);
  CHECK(eim_split_host_port("h:70000", host, sizeof host, &port) != 0);
  eim_config_free(&c);
  return check_done("config");
}
