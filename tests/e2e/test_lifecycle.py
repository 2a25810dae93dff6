"""Servers of their own: durability across SIGKILL, graceful SIGTERM, and
token expiry."""

import signal
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from eim_http import assert_error, assert_status
from eim_ws import open_ws


def test_acked_messages_survive_sigkill(start_server):
    srv, h = start_server()
    a, b = h.users(2, "durable")
    conv = h.group(a, [b], "durable")["conversation_id"]
    w = h.ws(a)
    ids = [w.send_request("conversation.chat", {"conversation_id": conv,
                                                "client_msg_id": f"d{i}",
                                                "content": f"durable {i}"})
           for i in range(40)]
    acks = [f["data"] for f in w.collect(ids, timeout=60)]
    assert_status(b.post(f"/api/v1/conversations/{conv}/read", {"seq": 10}), 200)
    # Acks are all the client knows: kill right after the last one.
    srv.kill()
    assert srv.proc.returncode == -signal.SIGKILL

    srv.start()
    # The same secret signs tokens, so old tokens stay valid; log in anyway
    # to prove the users survived.
    b_login = assert_status(h.login(b.username, b.password), 200)
    assert b_login["user_id"] == b.id
    msgs = h.history(b, conv, "?after_seq=0&limit=200")["messages"]
    assert [m["msg_id"] for m in msgs] == [x["msg_id"] for x in sorted(acks, key=lambda x:
                                                                       x["seq"])]
    assert [m["seq"] for m in msgs] == list(range(1, 41))
    got = assert_status(b.get(f"/api/v1/conversations/{conv}"), 200)
    assert (got["max_seq"], got["read_seq"], got["unread"]) == (40, 10, 30)
    w2 = h.ws(a)
    nxt = w2.ack("conversation.chat", {"conversation_id": conv, "client_msg_id": "after",
                                       "content": "after restart"})
    assert nxt["seq"] == 41
    # A retry of a message acked before the crash still finds it.
    again = w2.ack("conversation.chat", {"conversation_id": conv, "client_msg_id": "d7",
                                         "content": "durable 7"})
    assert again["msg_id"] == next(x["msg_id"] for x in acks if x["client_msg_id"] == "d7")


def close_codes(conns):
    """The close code each connection got, or "open" if it was not closed."""
    out = []
    for w in conns:
        try:
            out.append(w.wait_close())
        except AssertionError:
            out.append("open")
    return out


def test_sigterm_closes_websockets_with_1001_and_exits_0(start_server):
    srv, h = start_server()
    a, b = h.users(2, "term")
    conv = h.single(a, b)["conversation_id"]
    wa, wb = h.ws(a), h.ws(b)
    wa.ack("conversation.chat", {"conversation_id": conv, "client_msg_id": "1",
                                 "content": "bye"})
    srv.proc.send_signal(signal.SIGTERM)
    codes = close_codes([wa, wb])
    rc = srv.wait(20)
    assert codes == [1001, 1001]
    assert rc == 0
    assert not srv.sanitizer_reports(), srv.sanitizer_reports()
    # What was acked is there after a restart.
    srv.start()
    msgs = h.history(b, conv)["messages"]
    assert [m["content"] for m in msgs] == ["bye"]


def test_sigint_is_a_graceful_shutdown_too(start_server):
    srv, h = start_server()
    w = h.ws(h.user("int"))
    srv.proc.send_signal(signal.SIGINT)
    codes = close_codes([w])
    rc = srv.wait(20)
    assert codes == [1001]
    assert rc == 0


def test_token_expires_after_ttl(start_server):
    srv, h = start_server(jwt={"ttl": "2"})
    u = h.user("ttl")
    now = time.time() * 1000
    assert now < u.expires_at <= now + 3000, u.expires_at
    assert_status(u.get("/api/v1/users/me"), 200)
    w = h.ws(u)
    # Waiting for the clock is the point of this test, not synchronisation.
    time.sleep(max(0.0, u.expires_at / 1000 - time.time()) + 1.1)
    assert_error(u.get("/api/v1/users/me"), 401, "unauthorized")
    with pytest.raises(InvalidStatus) as e:
        open_ws(srv.host, srv.port, u.token).close()
    assert e.value.response.status_code == 401
    # An open WebSocket whose token expired is closed with 1008 (policy), at
    # the latest when it next sends something.
    try:
        w.send_request("ping")
    except ConnectionClosed:
        pass
    assert w.wait_close() == 1008
    # A fresh login works again.
    fresh = assert_status(h.login(u.username, u.password), 200)
    assert_status(h.http.get("/api/v1/users/me", token=fresh["token"]), 200)
