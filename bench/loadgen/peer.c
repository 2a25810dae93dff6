/* The adapter for the peer's client protocol. ExampleIM needs nothing past
 * the WebSocket handshake. Centrifugo (client protocol v2, JSON) wants a
 * connect command first, and a subscribe per channel; it batches replies
 * and pushes into one frame, one JSON object per line, and pings with an
 * empty object that the client must echo. */
#include <string.h>

#include "lg.h"

int lg_peer_opened(lg_conn *c, const char *channel) {
  if (lg_o.peer == LG_PEER_EIM) {
    c->ready = 1;
    return 1;
  }
  char cmd[512];
  int n = snprintf(cmd, sizeof cmd, "{\"id\":1,\"connect\":{\"name\":\"loadgen\"}}");
  c->setup_replies = 1;
  if (channel) {
    n += snprintf(cmd + n, sizeof cmd - (size_t)n, "\n{\"id\":2,\"subscribe\":{\"channel\":\"%s\"}}",
                  channel);
    c->setup_replies = 2;
  }
  c->ready = 0;
  lg_conn_send(c, cmd, (size_t)n);
  return 0;
}

static int refused_once;

int lg_peer_frame(lg_conn *c, const char *p, size_t n, lg_peer_msg_fn fn) {
  if (lg_o.peer == LG_PEER_EIM) {
    fn(c, p, n);
    return 0;
  }
  int became_ready = 0;
  const char *end = p + n;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *e = nl ? nl : end;
    size_t len = (size_t)(e - p);
    if (len == 2 && p[0] == '{' && p[1] == '}') {
      lg_conn_send(c, "{}", 2);
    } else if (len > 0 && !c->ready) {
      long long id = lg_json_int(lg_json_find(p, len, "id"), e);
      if ((id == 1 || id == 2) && lg_json_find(p, len, "error")) {
        if (!refused_once++) fprintf(stderr, "loadgen: centrifugo refused: %.*s\n", (int)len, p);
        return -1;
      }
      if ((id == 1 || id == 2) && --c->setup_replies == 0) {
        c->ready = 1;
        became_ready = 1;
      }
    } else if (len > 0) {
      fn(c, p, len);
    }
    p = nl ? nl + 1 : end;
  }
  return became_ready;
}
