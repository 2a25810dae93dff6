"""The WebSocket envelope: authentication of the upgrade, ping, bad input,
oversized frames."""

import json

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from eim_tokens import bad_tokens
from eim_ws import assert_error_frame, open_ws


def refused(server, token, via="header", label="missing"):
    with pytest.raises(InvalidStatus) as e:
        open_ws(server.host, server.port, token, via).close()
    resp = e.value.response
    assert resp.status_code == 401, (label, resp.status_code, resp.body)
    body = json.loads(resp.body)
    assert body["error"]["code"] == "unauthorized", body
    assert isinstance(body["error"]["message"], str)


def test_upgrade_without_token_is_401(server):
    refused(server, None)


@pytest.mark.parametrize("via", ["header", "query"])
def test_upgrade_with_bad_token_is_401(im, server, via):
    u = im.user("wsauth")
    for label, token in bad_tokens(u.token, server.secret):
        refused(server, token, via, label)


@pytest.mark.parametrize("via", ["header", "query"])
def test_upgrade_with_good_token_works_both_ways(im, via):
    u = im.user("wsok")
    w = im.ws(u, via=via)
    assert w.ping() == {}


def test_ping_echoes_string_and_number_ids(im):
    w = im.ws(im.user("ping"))
    for id_ in ("p-1", 7, 0, "7", 12.5, "ünïcode-id"):
        frame = w.request("ping", {}, id_=id_)
        assert frame["type"] == "ping.ack", frame
        assert frame["id"] == id_ and type(frame["id"]) is type(id_), frame
        assert frame.get("data") == {}


def test_ping_without_id_gets_an_ack_without_id(im):
    w = im.ws(im.user("ping"))
    w.send({"type": "ping", "data": {}})
    frame = w.anonymous_reply()
    assert frame["type"] == "ping.ack", frame


def test_bad_frames_get_bad_request_and_the_connection_lives(im):
    a, b = im.users(2, "bad")
    conv = im.group(a, [b])["conversation_id"]
    wa, wb = im.ws(a), im.ws(b)
    no_id = ["this is not json", "[1, 2, 3]", '"a string"', "42", "null", "{}",
             '{"data": {}}', "{\"type\": \"ping\"", ""]
    for raw in no_id:
        wa.send_raw(raw)
        frame = wa.anonymous_reply()
        assert_error_frame(frame, "bad_request")
    with_id = [
        ({"id": "x1", "data": {}}, "x1"),                               # no type
        ({"id": "x2", "type": 5, "data": {}}, "x2"),                    # type not a string
        ({"id": 3, "type": "no.such.type", "data": {}}, 3),             # unknown type
        ({"id": "x4", "type": "conversation.chat", "data": "str"}, "x4"),
        ({"id": "x5", "type": "conversation.chat",
          "data": {"conversation_id": conv, "client_msg_id": "c", "content": 5}}, "x5"),
        ({"id": "x6", "type": "conversation.chat",
          "data": {"conversation_id": 5, "client_msg_id": "c", "content": "hi"}}, "x6"),
        ({"id": "x7", "type": "conversation.chat",
          "data": {"conversation_id": conv, "content": "hi"}}, "x7"),
        ({"id": "x8", "type": "conversation.chat",
          "data": {"conversation_id": conv, "client_msg_id": 9, "content": "hi"}}, "x8"),
        ({"id": "x9", "type": "conversation.read",
          "data": {"conversation_id": conv, "seq": "1"}}, "x9"),
        ({"id": "x10", "type": "conversation.sync",
          "data": {"conversation_id": conv, "after_seq": "0"}}, "x10"),
        ({"id": "x11", "type": "push", "data": {"to_user": b.id}}, "x11"),  # no payload
        ({"id": "x12", "type": "push", "data": {"payload": 1}}, "x12"),     # no target
        ({"id": "x13", "type": "conversation.chat",
          "data": {"conversation_id": conv, "client_msg_id": "c", "content": "hi",
                   "content_type": 7}}, "x13"),
    ]
    for frame, id_ in with_id:
        wa.send(frame)
        reply = wa.reply(id_)
        assert reply["id"] == id_
        assert_error_frame(reply, "bad_request")
    # Still working, and nothing was stored or delivered by the bad frames.
    ack = wa.ack("conversation.chat", {"conversation_id": conv, "client_msg_id": "ok",
                                       "content": "still here"})
    assert ack["seq"] == 1
    ev = wb.wait_event("conversation.chat")
    assert ev["seq"] == 1 and ev["content"] == "still here"


def test_binary_frame_gets_bad_request_and_the_connection_lives(im):
    a, b = im.users(2, "bin")
    conv = im.group(a, [b])["conversation_id"]
    wa, wb = im.ws(a), im.ws(b)
    # Frames are text: a binary one is not a JSON object with a type.
    wa.conn.send(b"\x00\x01binary")
    assert_error_frame(wa.anonymous_reply(), "bad_request")
    assert wa.ping() == {}
    ack = wb.ack("conversation.chat", {"conversation_id": conv, "client_msg_id": "b",
                                       "content": "fine"})
    assert ack["seq"] == 1


def test_frame_over_the_limit_closes_with_1009(im):
    a, b = im.users(2, "big")
    conv = im.group(a, [b])["conversation_id"]
    wa, wb = im.ws(a), im.ws(b)
    big = json.dumps({"type": "conversation.chat", "id": "big",
                      "data": {"conversation_id": conv, "client_msg_id": "big",
                               "content": "x" * (2 * 2**20)}})
    try:
        wa.send_raw(big)
    except (ConnectionClosed, OSError):
        pass  # the server may close while the frame is still being written
    assert wa.wait_close() == 1009
    # The other client is unaffected, and nothing was stored.
    ack = wb.ack("conversation.chat", {"conversation_id": conv, "client_msg_id": "after",
                                       "content": "small"})
    assert ack["seq"] == 1
    # The same user can reconnect.
    assert im.ws(a).ping() == {}


def test_frame_at_the_default_frame_limit_passes(im):
    # 60 KiB is under max_frame_bytes (64 KiB) but the content is over 8 KiB:
    # the frame is read whole and refused by the content limit, not closed.
    a = im.user("frame")
    conv = im.group(a, [])["conversation_id"]
    w = im.ws(a)
    w.expect_error("conversation.chat", {"conversation_id": conv, "client_msg_id": "f",
                                         "content": "y" * 60000}, "payload_too_large")
    assert w.ping() == {}

