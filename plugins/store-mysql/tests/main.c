/* store-mysql-test MODE PLUGIN [ARGS]: the store-mysql tests and benchmark,
 * against the MariaDB named by MYSQL_HOST, MYSQL_PORT, MYSQL_USER,
 * MYSQL_PASSWORD and MYSQL_DATABASE (required: missing ones fail). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "th.h"

static int usage(void) {
  fprintf(stderr,
          "usage: store-mysql-test basic|threads|multiprocess PLUGIN\n"
          "       store-mysql-test reconnect PLUGIN SERVICES_DIR\n"
          "       store-mysql-test bench PLUGIN N BATCH THREADS\n");
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 3)
    return usage();
  if (strcmp(argv[1], "basic") == 0)
    return th_main_basic(argv[2]);
  if (strcmp(argv[1], "threads") == 0)
    return th_main_threads(argv[2]);
  if (strcmp(argv[1], "multiprocess") == 0)
    return th_main_multiproc(argv[0], argv[2]);
  if (strcmp(argv[1], "worker") == 0 && argc == 7)
    return th_main_worker(argv[2], argv[3], argv[4], argv[5],
                          strtoul(argv[6], NULL, 10));
  if (strcmp(argv[1], "reconnect") == 0 && argc == 4)
    return th_main_reconnect(argv[2], argv[3]);
  if (strcmp(argv[1], "bench") == 0 && argc == 6)
    return th_main_bench(argv[2], strtoul(argv[3], NULL, 10),
                         strtoul(argv[4], NULL, 10), strtoul(argv[5], NULL, 10));
  return usage();
}
