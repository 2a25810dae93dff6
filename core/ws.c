/*
 * WebSocket sessions (RFC 6455) over the connections of http.c.
 *
 * wslay parses what clients send: frame headers, unmasking, the refusal of
 * unmasked frames, fragments, UTF-8 of text, control frames, the message
 * size limit (close 1009) and its replies (pong, the close echo). A wslay
 * context costs about 8.5 KiB, so it exists only while a connection is
 * sending: it is created when bytes arrive, kept while more keep coming
 * (creating one per read cost a calloc and a free of 8.5 KiB each time),
 * and freed by the sweep once the connection sent nothing for
 * EIM__PARSER_KEEP_MS and every byte given to it belongs to a complete
 * frame. Idle sessions thus hold no parser at all.
 *
 * What the server sends is framed here, straight into the connection's
 * output buffer: server frames are unmasked, so a frame is a 2-10 byte
 * header and the payload (wslay_event_queue_msg would add a malloc and a
 * copy per message). Frames queued during one loop turn leave in one write
 * when the turn ends, which is what makes fan-out cheap in system calls;
 * events to a connection written to less than ws_coalesce_ms ago wait for
 * that long, so a busy connection gets many frames per write (the write
 * system call and the loopback or NIC work behind it cost far more than
 * the frame itself).
 * wslay's own output (pong, close echo) goes into the same buffer; its send
 * callback takes everything, so it never holds a partly sent frame that
 * could interleave with ours.
 */
#include "log.h"
#include "net_internal.h"
#include "sha1.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void ws_ctx_free(eim_http_conn *c) {
  if (c->wslay == NULL) return;
  eim__list_remove(&c->wlink);
  c->net->stats.ws_parsers--;
  if (!wslay_event_get_read_enabled(c->wslay)) c->flags |= EIM__W_READ_DONE;
  wslay_event_context_free(c->wslay);
  c->wslay = NULL;
  c->flags &= ~(uint32_t)(EIM__W_FRAME_OPEN | EIM__W_FRAG_OPEN);
}

void eim__ws_accept_key(const char *key, char out[29]) {
  static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  uint8_t digest[EIM_SHA1_LEN];
  eim_sha1 s;
  eim_sha1_init(&s);
  eim_sha1_update(&s, key, strlen(key));
  eim_sha1_update(&s, guid, sizeof guid - 1);
  eim_sha1_final(&s, digest);
  sodium_bin2base64(out, 29, digest, sizeof digest, sodium_base64_VARIANT_ORIGINAL);
}

/* --- wslay callbacks ------------------------------------------------------- */

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                          void *ud) {
  eim_http_conn *c = ud;
  if (c->in_len == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  size_t n = len < c->in_len ? len : c->in_len;
  memcpy(buf, c->in, n);
  c->in += n;
  c->in_len -= n;
  c->rx_fed += n;
  return (ssize_t)n;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                          void *ud) {
  eim_http_conn *c = ud;
  /* After our close frame nothing may follow (RFC 6455 5.5.1): wslay does
   * not know we sent one, so its pongs and close echo are dropped here. */
  if (c->flags & EIM__W_CLOSE_SENT) return (ssize_t)len;
  if (eim__conn_append(c, data, len) != 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return (ssize_t)len;
}

static void ws_frame_start_cb(wslay_event_context_ptr ctx,
                              const struct wslay_event_on_frame_recv_start_arg *arg, void *ud) {
  eim_http_conn *c = ud;
  uint64_t n = arg->payload_length;
  /* wslay accepts only minimal length encodings and (as a server) masked
   * frames, so the header size follows from the payload length. */
  c->rx_framed += 2 + 4 + (n > 65535 ? 8 : n > 125 ? 2 : 0) + n;
  c->flags |= EIM__W_FRAME_OPEN;
  if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) {
    if (!arg->fin) c->flags |= EIM__W_FRAG_OPEN;
  } else if (arg->opcode == WSLAY_CONTINUATION_FRAME && arg->fin) {
    c->flags &= ~(uint32_t)EIM__W_FRAG_OPEN;
  }
}

static void ws_frame_end_cb(wslay_event_context_ptr ctx, void *ud) {
  eim_http_conn *c = ud;
  c->flags &= ~(uint32_t)EIM__W_FRAME_OPEN;
}

static void ws_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                      void *ud) {
  eim_http_conn *c = ud;
  eim_net *net = c->net;
  if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
    c->flags |= EIM__W_CLOSE_RCVD;
    return;
  }
  if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME) return;
  if (c->flags & (EIM__W_CLOSING | EIM__F_CLOSED)) return;
  net->stats.ws_messages_in_total++;
  net->stats.ws_bytes_in_total += arg->msg_length;
  net->h.on_ws_message(net->h.ctx, (eim_ws *)c, arg->opcode == WSLAY_TEXT_FRAME,
                       arg->msg ? (const char *)arg->msg : "", arg->msg_length);
}

static const struct wslay_event_callbacks ws_callbacks = {
    .recv_callback = ws_recv_cb,
    .send_callback = ws_send_cb,
    .on_frame_recv_start_callback = ws_frame_start_cb,
    .on_frame_recv_end_callback = ws_frame_end_cb,
    .on_msg_recv_callback = ws_msg_cb,
};

/* --- input ----------------------------------------------------------------- */

/* After wslay ran: moves its output to the socket, notes a closing
 * handshake, and frees the context when it holds nothing. */
static void ws_after_wslay(eim_http_conn *c, int r) {
  if (c->flags & EIM__F_CLOSED) return;
  if (r != 0) {
    eim__conn_close(c);
    return;
  }
  size_t before = c->olen;
  wslay_event_send(c->wslay);
  if (c->flags & EIM__F_CLOSED) return;
  /* Only wslay's own output (a pong, a close) is flushed here: events held
   * for coalescing stay held when the client merely sent something. */
  int wslay_wrote = c->olen != before;
  if (wslay_event_get_close_sent(c->wslay)) c->flags |= EIM__W_CLOSING | EIM__W_CLOSE_SENT;
  if (c->flags & EIM__W_CLOSE_SENT) {
    /* Our close is out (or wslay's, for a protocol error or an echo): what
     * is left is the peer's close or its EOF, or the grace period. */
    if ((c->flags & EIM__W_CLOSE_RCVD) || !wslay_event_get_read_enabled(c->wslay)) ws_ctx_free(c);
  }
  if (wslay_wrote || (c->flags & EIM__W_CLOSE_SENT)) eim__conn_flush(c);
  if (c->flags & EIM__F_CLOSED) return;
  if (c->flags & EIM__W_CLOSE_SENT) {
    if (!(c->flags & EIM__F_LINGER))
      eim__conn_linger(c);
    else if ((c->flags & EIM__W_CLOSE_RCVD) && eim__conn_queued(c) == 0)
      eim__conn_close(c);
  }
}

void eim__ws_on_read(eim_http_conn *c, const char *data, size_t len) {
  eim_net *net = c->net;
  if (c->flags & EIM__F_CLOSED) return;
  if (c->list == EIM__L_WS) eim__conn_set_list(c, EIM__L_WS);
  /* After the closing handshake, or once wslay stopped reading (it sent
   * a close for a protocol error), the rest is discarded. */
  if ((c->flags & (EIM__W_CLOSE_SENT | EIM__W_CLOSE_RCVD)) ==
          (EIM__W_CLOSE_SENT | EIM__W_CLOSE_RCVD) ||
      (c->flags & EIM__W_READ_DONE))
    return;
  if (c->wslay == NULL) {
    if (wslay_event_context_server_init(&c->wslay, &ws_callbacks, c) != 0) {
      c->wslay = NULL;
      eim__conn_close(c);
      return;
    }
    wslay_event_config_set_max_recv_msg_length(c->wslay, net->lim.max_frame_bytes);
    c->rx_fed = c->rx_framed = 0;
    net->stats.ws_parsers++;
  }
  /* Most recent input last, for the sweep. */
  eim__list_remove(&c->wlink);
  eim__list_push(&net->parsers, &c->wlink);
  if (!wslay_event_get_read_enabled(c->wslay)) return;
  c->in = (const uint8_t *)data;
  c->in_len = len;
  c->flags |= EIM__W_IN_WSLAY;
  int r = wslay_event_recv(c->wslay);
  c->flags &= ~(uint32_t)EIM__W_IN_WSLAY;
  c->in = NULL;
  c->in_len = 0;
  ws_after_wslay(c, r);
}

void eim__ws_on_closed(eim_http_conn *c) {
  eim_net *net = c->net;
  ws_ctx_free(c);
  net->stats.ws_connections--;
  net->h.on_ws_close(net->h.ctx, (eim_ws *)c);
}

/* --- output ----------------------------------------------------------------- */

/* Writes one unmasked frame at the end of the loop turn, or later when
 * coalesce is set (eim__conn_write_coalesced). Returns 0 or a negative
 * libuv error. */
static int ws_write_frame(eim_http_conn *c, uint8_t opcode, const void *data, size_t len,
                          int coalesce) {
  uint8_t hdr[10];
  size_t hl;
  hdr[0] = (uint8_t)(0x80 | opcode);
  if (len < 126) {
    hdr[1] = (uint8_t)len;
    hl = 2;
  } else if (len <= 65535) {
    hdr[1] = 126;
    hdr[2] = (uint8_t)(len >> 8);
    hdr[3] = (uint8_t)len;
    hl = 4;
  } else {
    hdr[1] = 127;
    for (int i = 0; i < 8; i++) hdr[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    hl = 10;
  }
  uv_buf_t bufs[2] = {uv_buf_init((char *)hdr, (unsigned)hl), uv_buf_init((char *)data, (unsigned)len)};
  return coalesce ? eim__conn_write_coalesced(c, bufs, len > 0 ? 2 : 1)
                  : eim__conn_write_later(c, bufs, len > 0 ? 2 : 1);
}

static int ws_open(const eim_http_conn *c) {
  return (c->flags & EIM__F_WS) && !(c->flags & (EIM__F_CLOSED | EIM__W_CLOSING));
}

static int ws_send(eim_ws *ws, const char *data, size_t len, int coalesce) {
  eim_http_conn *c = &ws->c;
  eim_net *net = c->net;
  if (!ws_open(c)) return -1;
  /* Output held back for this turn's write is handed to the kernel before
   * the peer is judged slow. */
  if (eim__conn_queued(c) + len + 10 > net->lim.ws_send_queue_bytes) eim__conn_flush(c);
  if (c->flags & EIM__F_CLOSED) return -1;
  if (eim__conn_queued(c) + len + 10 > net->lim.ws_send_queue_bytes) {
    net->stats.ws_closed_slow_total++;
    EIM_LOG_I("msg=\"websocket send queue full, closing\" ws=%llu peer=%s queued=%zu",
              (unsigned long long)c->id, c->ip->addr, eim__conn_queued(c));
    c->flags |= EIM__W_CLOSING;
    /* The close frame can only go out ahead of nothing; a backed-up peer
     * just loses the socket. */
    if (eim__conn_queued(c) == 0) {
      static const char frame[] = "\x88\x11\x03\xf0send queue full";
      uv_buf_t b = uv_buf_init((char *)frame, sizeof frame - 1);
      uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    }
    eim__conn_close(c);
    return -1;
  }
  if (ws_write_frame(c, WSLAY_TEXT_FRAME, data, len, coalesce) != 0) return -1;
  net->stats.ws_messages_out_total++;
  net->stats.ws_bytes_out_total += len;
  return 0;
}

int eim_ws_send_text(eim_ws *ws, const char *data, size_t len) { return ws_send(ws, data, len, 0); }

int eim_ws_send_event(eim_ws *ws, const char *data, size_t len) { return ws_send(ws, data, len, 1); }

void eim_ws_close(eim_ws *ws, uint16_t code, const char *reason) {
  eim_http_conn *c = &ws->c;
  if (!ws_open(c)) return;
  c->flags |= EIM__W_CLOSING;
  uint8_t payload[125];
  size_t rl = reason ? strlen(reason) : 0;
  if (rl > sizeof payload - 2) rl = sizeof payload - 2;
  payload[0] = (uint8_t)(code >> 8);
  payload[1] = (uint8_t)code;
  if (rl > 0) memcpy(payload + 2, reason, rl);
  if (ws_write_frame(c, WSLAY_CONNECTION_CLOSE, payload, rl + 2, 0) != 0) return;
  c->flags |= EIM__W_CLOSE_SENT;
  /* Inside wslay (the application closes from on_ws_message) the context
   * must outlive the call; ws_after_wslay takes over from there. */
  if (c->flags & EIM__W_IN_WSLAY) return;
  if (c->wslay != NULL && !wslay_event_get_read_enabled(c->wslay)) ws_ctx_free(c);
  eim__conn_linger(c);
}

void *eim_ws_user_data(const eim_ws *ws) { return ws->c.user_data; }
void eim_ws_set_user_data(eim_ws *ws, void *user_data) { ws->c.user_data = user_data; }
uint64_t eim_ws_id(const eim_ws *ws) { return ws->c.id; }
const char *eim_ws_peer_ip(const eim_ws *ws) { return ws->c.ip ? ws->c.ip->addr : ""; }
size_t eim_ws_queued_bytes(const eim_ws *ws) { return eim__conn_queued(&ws->c); }

/* --- the upgrade ---------------------------------------------------------- */

eim_ws *eim_ws_accept(eim_http_conn *c, const eim_http_req *req, void *user_data) {
  if (c == NULL || (c->flags & (EIM__F_CLOSED | EIM__F_WS)) || !(c->flags & EIM__F_PENDING))
    return NULL;
  const char *key = req ? eim_http_header(req, "sec-websocket-key") : NULL;
  if (req == NULL || !req->websocket || key == NULL) {
    static const char body[] =
        "{\"error\":{\"code\":\"bad_request\",\"message\":\"not a WebSocket handshake\"}}";
    eim_http_respond(c, 400, "application/json", body, sizeof body - 1, NULL);
    return NULL;
  }
  char accept[29];
  eim__ws_accept_key(key, accept);
  char resp[160];
  int n = snprintf(resp, sizeof resp,
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                   accept);
  uv_buf_t b = uv_buf_init(resp, (unsigned)n);
  c->flags &= ~(uint32_t)EIM__F_PENDING;
  c->net->stats.http_requests_total++;
  if (eim__conn_write(c, &b, 1) != 0) return NULL;
  c->flags |= EIM__F_UPGRADED | EIM__F_WS;
  c->net->stats.ws_connections++;
  c->user_data = user_data;
  c->id = ++c->net->next_ws_id;
  c->last_ping = uv_now(c->net->loop);
  /* Accepted inside on_request, the dispatcher switches over when the
   * call returns (the request's buffers are in use until then); accepted
   * later, by a connection the application held, it switches now. */
  if (!(c->flags & EIM__F_DISPATCH)) eim__http_upgraded(c);
  return (eim_ws *)c;
}

/* --- keep-alive ------------------------------------------------------------- */

/* Whether c's wslay context holds nothing: no frame or fragmented message
 * begun, every byte fed to it framed, nothing queued to send. */
static int ws_ctx_empty(const eim_http_conn *c) {
  return !(c->flags & (EIM__W_FRAME_OPEN | EIM__W_FRAG_OPEN | EIM__W_IN_WSLAY)) &&
         c->rx_fed == c->rx_framed && wslay_event_get_queued_msg_count(c->wslay) == 0;
}

/* Frees the parsers of sessions quiet for EIM__PARSER_KEEP_MS. Sessions'
 * marks (last input) grow along net->parsers; closing ones (no longer in
 * the WebSocket list) have other marks and are just looked at. */
static void ws_parsers_sweep(eim_net *net, uint64_t now) {
  eim__link *head = &net->parsers;
  for (eim__link *l = head->next; l != head;) {
    eim_http_conn *c = EIM__CONTAINER(l, eim_http_conn, wlink);
    l = l->next;
    if (now - c->mark < EIM__PARSER_KEEP_MS) {
      if (c->list == EIM__L_WS) break;
      continue;
    }
    if (ws_ctx_empty(c)) ws_ctx_free(c);
  }
}

void eim__ws_sweep(eim_net *net, uint64_t now) {
  static const uint8_t ping[2] = {0x80 | WSLAY_PING, 0};
  uint64_t every = net->lim.ws_ping_interval_ms, idle = net->lim.ws_idle_timeout_ms;
  uint64_t first = every && (every < idle || !idle) ? every : idle;
  ws_parsers_sweep(net, now);
  if (first == 0) return;
  eim__link *head = &net->lists[EIM__L_WS];
  /* The list is ordered by last input, so only its quiet front is visited. */
  for (eim__link *l = head->next; l != head;) {
    eim_http_conn *c = EIM__CONTAINER(l, eim_http_conn, link);
    l = l->next;
    if (now - c->mark < first) break;
    if (idle && now - c->mark >= idle) {
      EIM_LOG_D("msg=\"websocket idle, closing\" ws=%llu", (unsigned long long)c->id);
      eim_ws_close((eim_ws *)c, 1000, "idle timeout");
      continue;
    }
    if (every && now - c->last_ping >= every) {
      uv_buf_t b = uv_buf_init((char *)ping, sizeof ping);
      c->last_ping = now;
      eim__conn_write_later(c, &b, 1);
    }
  }
}

void eim_net_close_all_ws(eim_net *net, uint16_t code, const char *reason) {
  /* eim_ws_close moves each session to the linger list (or closes it), so
   * the head changes every turn. */
  eim__link *head = &net->lists[EIM__L_WS];
  while (!eim__list_empty(head)) {
    eim_http_conn *c = EIM__CONTAINER(head->next, eim_http_conn, link);
    eim_ws_close((eim_ws *)c, code, reason);
    if (c->list == EIM__L_WS && !(c->flags & EIM__F_CLOSED)) eim__conn_close(c);
  }
}
