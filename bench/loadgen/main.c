/* loadgen: the ExampleIM benchmark load generator. One libuv loop, many
 * WebSocket connections, results as one JSON object on stdout.
 *
 *   loadgen setup      --users N --out FILE            create users, log in, write tokens
 *   loadgen idle       --conns N                       idle WebSockets: RSS each, handshake
 *   loadgen chat       --pairs P --rate R --duration S 1:1 chat, open loop, ack latency
 *   loadgen fanout     --groups M --group-size G --kind push|chat --rate R --duration S
 *   loadgen reconnect  --conns N                       everyone drops and reconnects at once
 *   loadgen slowreader --group-size G --rate R --duration S   one member stops reading
 *
 * Common: --host 127.0.0.1 --port P --tokens FILE --pid SERVER_PID
 *         --peer exampleim|centrifugo --sources K (source addresses 127.0.0.2..)
 * Two nodes (chat, fanout): --port2 P2 puts the receivers on the server at P2
 *         (senders and the REST calls stay on P); --pid twice sums both
 *         nodes' CPU; --watch PID (repeatable) reports another process's CPU
 *         (a database, a broker) over the same measured window.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "lg.h"

lg_opts lg_o;
uv_loop_t *lg_loop;

static void usage(void) {
  fputs("usage: loadgen setup|idle|chat|fanout|reconnect|slowreader [options]\n"
        "  --host H --port P --peer exampleim|centrifugo --pid SERVER_PID --sources K\n"
        "  --tokens FILE --out FILE --prefix NAME --users N --conns N --concurrency N\n"
        "  --pairs P --groups M --group-size G --kind push|chat --rate R --duration S\n"
        "  --drain S --hold S --payload BYTES --rcvbuf BYTES --rss-bound-mib MIB\n"
        "  --port2 P (receivers' server) --pid PID (repeatable) --watch PID (repeatable)\n",
        stderr);
  exit(2);
}

static double num(const char *s) {
  char *end;
  double v = strtod(s, &end);
  if (*s == 0 || *end != 0 || v < 0) lg_die("not a non-negative number: '%s'", s);
  return v;
}

/* Lifts the open-file limit to the hard limit, or past it where the process
 * may (CAP_SYS_RESOURCE), so that the load generator is not the side that
 * runs out first. */
static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  struct rlimit want = rl;
  want.rlim_cur = want.rlim_max;
  if (want.rlim_max < 200000) {
    struct rlimit big = {200000, 200000};
    if (setrlimit(RLIMIT_NOFILE, &big) == 0) return;
  }
  setrlimit(RLIMIT_NOFILE, &want);
}

int main(int argc, char **argv) {
  if (argc < 2 || argv[1][0] == '-') usage();
  lg_o.mode = argv[1];
  lg_o.host = "127.0.0.1";
  lg_o.port = 8080;
  lg_o.sources = 4;
  lg_o.prefix = "bench";
  lg_o.users = 100;
  lg_o.conns = 1000;
  lg_o.pairs = 50;
  lg_o.groups = 1;
  lg_o.group_size = 10;
  lg_o.concurrency = 256;
  lg_o.rate = 1000;
  lg_o.duration = 5;
  lg_o.drain = 10;
  lg_o.hold = 2;
  lg_o.kind = "push";
  lg_o.payload = 0;
  lg_o.rcvbuf = 4096;
  lg_o.rss_bound_mib = 64;
  static const struct option lo[] = {
      {"host", 1, 0, 'h'},     {"port", 1, 0, 'p'},        {"peer", 1, 0, 'P'},
      {"pid", 1, 0, 'i'},      {"sources", 1, 0, 's'},     {"tokens", 1, 0, 't'},
      {"out", 1, 0, 'o'},      {"prefix", 1, 0, 'x'},      {"users", 1, 0, 'u'},
      {"conns", 1, 0, 'c'},    {"concurrency", 1, 0, 'C'}, {"pairs", 1, 0, 'a'},
      {"groups", 1, 0, 'g'},   {"group-size", 1, 0, 'G'},  {"kind", 1, 0, 'k'},
      {"rate", 1, 0, 'r'},     {"duration", 1, 0, 'd'},    {"drain", 1, 0, 'D'},
      {"hold", 1, 0, 'H'},     {"payload", 1, 0, 'l'},     {"rcvbuf", 1, 0, 'b'},
      {"rss-bound-mib", 1, 0, 'B'}, {"port2", 1, 0, 'q'},     {"watch", 1, 0, 'w'},
      {0, 0, 0, 0}};
  int ch;
  optind = 2;
  while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    switch (ch) {
    case 'h': lg_o.host = optarg; break;
    case 'p': lg_o.port = (int)num(optarg); break;
    case 'P':
      if (strcmp(optarg, "centrifugo") == 0) lg_o.peer = LG_PEER_CENTRIFUGO;
      else if (strcmp(optarg, "exampleim") == 0) lg_o.peer = LG_PEER_EIM;
      else usage();
      break;
    case 'i':
      if (lg_o.npids == LG_MAX_PIDS) lg_die("at most %d --pid", LG_MAX_PIDS);
      lg_o.pids[lg_o.npids++] = (int)num(optarg);
      break;
    case 'q': lg_o.port2 = (int)num(optarg); break;
    case 'w':
      if (lg_o.nwatch == LG_MAX_WATCH) lg_die("at most %d --watch", LG_MAX_WATCH);
      lg_o.watch[lg_o.nwatch++] = (int)num(optarg);
      break;
    case 's': lg_o.sources = (int)num(optarg); break;
    case 't': lg_o.tokens = optarg; break;
    case 'o': lg_o.out = optarg; break;
    case 'x': lg_o.prefix = optarg; break;
    case 'u': lg_o.users = (long)num(optarg); break;
    case 'c': lg_o.conns = (long)num(optarg); break;
    case 'C': lg_o.concurrency = (long)num(optarg); break;
    case 'a': lg_o.pairs = (long)num(optarg); break;
    case 'g': lg_o.groups = (long)num(optarg); break;
    case 'G': lg_o.group_size = (long)num(optarg); break;
    case 'k': lg_o.kind = optarg; break;
    case 'r': lg_o.rate = num(optarg); break;
    case 'd': lg_o.duration = num(optarg); break;
    case 'D': lg_o.drain = num(optarg); break;
    case 'H': lg_o.hold = num(optarg); break;
    case 'l': lg_o.payload = (long)num(optarg); break;
    case 'b': lg_o.rcvbuf = (long)num(optarg); break;
    case 'B': lg_o.rss_bound_mib = num(optarg); break;
    default: usage();
    }
  }
  if (optind != argc) usage();
  /* The first --pid is the one whose RSS is sampled. */
  lg_o.pid = lg_o.npids ? lg_o.pids[0] : 0;
  if (strcmp(lg_o.kind, "push") != 0 && strcmp(lg_o.kind, "chat") != 0)
    lg_die("--kind is push or chat");
  if (lg_o.sources < 1 || lg_o.sources > 250) lg_die("--sources is 1 to 250");
  if (lg_o.concurrency < 1) lg_o.concurrency = 1;
  raise_nofile();
  lg_loop = uv_default_loop();

  int rc;
  if (strcmp(lg_o.mode, "setup") == 0) rc = lg_setup();
  else if (strcmp(lg_o.mode, "idle") == 0) rc = lg_idle();
  else if (strcmp(lg_o.mode, "reconnect") == 0) rc = lg_reconnect();
  else if (strcmp(lg_o.mode, "chat") == 0) rc = lg_chat();
  else if (strcmp(lg_o.mode, "fanout") == 0) rc = lg_fanout();
  else if (strcmp(lg_o.mode, "slowreader") == 0) rc = lg_slowreader();
  else usage();
  fflush(stdout);
  /* Exiting without tearing every connection down: the kernel closes them. */
  return rc == 0 ? 0 : 1;
}
