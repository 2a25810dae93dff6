/* exampleim: the server binary. Reads exampleim.conf and flags, loads the
 * plugins of plugins.d, and serves until SIGINT or SIGTERM. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "log.h"
#include "mailbox.h"
#include "server.h"
#include "workers.h"

static uv_signal_t sig_int, sig_term, sig_hup;

static void usage(FILE *out) {
  fprintf(out,
          "usage: exampleim [--config FILE] [--listen HOST:PORT] [--data-dir DIR]\n"
          "                 [--plugins-dir DIR] [--plugin-path DIR] [--help] [--version]\n"
          "\n"
          "  --config FILE       server configuration (exampleim.conf); flags override it\n"
          "  --listen HOST:PORT  address to listen on (default 127.0.0.1:8080)\n"
          "  --data-dir DIR      data directory (default ./data)\n"
          "  --plugins-dir DIR   the plugins.d directory (default ./plugins.d)\n"
          "  --plugin-path DIR   where NAME.so plugins are found\n"
          "                      (default: ../lib/exampleim/plugins beside the binary)\n"
          "  --help              this text\n"
          "  --version           the version\n"
          "\n"
          "Signals: SIGINT and SIGTERM shut down gracefully; SIGHUP reloads filters.\n");
}

static void on_signal(uv_signal_t *h, int signum) {
  if (signum == SIGHUP) {
    eim_server_reload();
    return;
  }
  (void)h;
  uv_close((uv_handle_t *)&sig_int, NULL);
  uv_close((uv_handle_t *)&sig_term, NULL);
  uv_close((uv_handle_t *)&sig_hup, NULL);
  eim_server_shutdown();
}

/* The default plugin path: the build tree and an installed prefix both keep
 * plugins at ../lib/exampleim/plugins from the binary. */
static void default_plugin_path(eim_config *cfg) {
  char exe[4096];
  size_t len = sizeof exe;
  if (uv_exepath(exe, &len) != 0) return;
  char *slash = strrchr(exe, '/');
  if (slash == NULL) return;
  *slash = '\0';
  char path[4200];
  snprintf(path, sizeof path, "%s/../lib/exampleim/plugins", exe);
  char err[64];
  eim_config_set(cfg, "plugin_path", path, err, sizeof err);
}

static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"config", required_argument, NULL, 'c'},     {"listen", required_argument, NULL, 'l'},
      {"data-dir", required_argument, NULL, 'd'},   {"plugins-dir", required_argument, NULL, 'p'},
      {"plugin-path", required_argument, NULL, 'P'}, {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},          {NULL, 0, NULL, 0},
  };
  const char *config_file = NULL;
  const char *overrides[5][2] = {{"listen", NULL}, {"data_dir", NULL}, {"plugins_dir", NULL},
                                 {"plugin_path", NULL}, {NULL, NULL}};
  int ch;
  while ((ch = getopt_long(argc, argv, "c:l:d:p:P:hV", opts, NULL)) != -1) {
    switch (ch) {
      case 'c': config_file = optarg; break;
      case 'l': overrides[0][1] = optarg; break;
      case 'd': overrides[1][1] = optarg; break;
      case 'p': overrides[2][1] = optarg; break;
      case 'P': overrides[3][1] = optarg; break;
      case 'h': usage(stdout); return 0;
      case 'V': printf("exampleim %s (plugin ABI %d.%d)\n", EIM_VERSION, EIM_ABI_MAJOR, EIM_ABI_MINOR); return 0;
      default: usage(stderr); return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "exampleim: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    return 2;
  }

  eim_config cfg;
  eim_config_init(&cfg);
  default_plugin_path(&cfg);
  char err[1024];
  if (config_file != NULL && eim_config_load(&cfg, config_file, err, sizeof err) != 0) {
    EIM_LOG_E("msg=\"bad configuration\" reason=\"%s\"", err);
    eim_config_free(&cfg);
    return 1;
  }
  for (int i = 0; overrides[i][0]; i++)
    if (overrides[i][1] && eim_config_set(&cfg, overrides[i][0], overrides[i][1], err, sizeof err) != 0) {
      EIM_LOG_E("msg=\"bad flag\" reason=\"%s\"", err);
      eim_config_free(&cfg);
      return 2;
    }
  eim_log_set_level(cfg.log_level);
  signal(SIGPIPE, SIG_IGN);
  raise_nofile();

  uv_loop_t *loop = uv_default_loop();
  int status = 0;
  /* Handlers first: "listening" is logged inside eim_server_start, and a
   * SIGTERM right after it must find them. */
  uv_signal_init(loop, &sig_int);
  uv_signal_init(loop, &sig_term);
  uv_signal_init(loop, &sig_hup);
  uv_signal_start(&sig_int, on_signal, SIGINT);
  uv_signal_start(&sig_term, on_signal, SIGTERM);
  uv_signal_start(&sig_hup, on_signal, SIGHUP);
  if (eim_server_start(loop, &cfg) != 0) {
    status = 1;
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_hup, NULL);
    eim_workers_stop();
    eim_mailbox_close();
  }
  uv_run(loop, UV_RUN_DEFAULT);
  eim_server_free();
  uv_loop_close(loop);
  eim_config_free(&cfg);
  if (status == 0) EIM_LOG_I("msg=\"stopped\"");
  return status;
}
