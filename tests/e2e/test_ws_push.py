"""push: ephemeral delivery to a user or a conversation, never stored."""

from eim_http import assert_status


def test_push_to_user_reaches_all_its_connections(im):
    a, b = im.users(2, "push")
    conv = im.single(a, b)["conversation_id"]
    wa, b1, b2 = im.ws(a), im.ws(b), im.ws(b)
    payload = {"kind": "typing", "n": [1, 2.5, None, True], "s": "\u00e9"}
    ack = wa.ack("push", {"to_user": b.id, "payload": payload})
    assert ack["delivered"] == 2
    for w in (b1, b2):
        ev = w.wait_event("push")
        assert ev["from"] == a.id and ev["payload"] == payload, ev
        assert ev.get("conversation_id") is None, ev
    wa.expect_no_event("push")
    # Nothing stored.
    assert im.history(a, conv) == {"messages": [], "has_more": False}


def test_push_payload_may_be_any_json(im):
    a, b = im.users(2, "pushany")
    im.single(a, b)
    wa, wb = im.ws(a), im.ws(b)
    for payload in ("text", 42, [1, "x"], None, False, {"deep": {"er": [{}]}}):
        assert wa.ack("push", {"to_user": b.id, "payload": payload})["delivered"] == 1
        assert wb.wait_event("push")["payload"] == payload


def test_push_to_conversation_counts_connections_but_not_the_senders(im):
    a, b, c, d = im.users(4, "pushc")
    conv = im.group(a, [b, c, d])["conversation_id"]
    a1, a2, b1, b2, c1 = im.ws(a), im.ws(a), im.ws(b), im.ws(b), im.ws(c)
    ack = a1.ack("push", {"conversation_id": conv, "payload": {"hi": 1}})
    # a2, b1, b2, c1 are online; d is offline; a1 sent it.
    assert ack["delivered"] == 4
    for w in (a2, b1, b2, c1):
        ev = w.wait_event("push")
        assert (ev["from"], ev["conversation_id"], ev["payload"]) == (a.id, conv, {"hi": 1})
    a1.expect_no_event("push")
    got = assert_status(a.get(f"/api/v1/conversations/{conv}"), 200)
    assert got["max_seq"] == 0 and got["last_message"] is None


def test_push_to_offline_user_is_delivered_to_nobody_and_gone(im):
    a, b = im.users(2, "pushoff")
    im.single(a, b)
    wa = im.ws(a)
    assert wa.ack("push", {"to_user": b.id, "payload": "gone"})["delivered"] == 0
    # b comes online later: the push is not replayed.
    wb = im.ws(b)
    wb.expect_no_event("push")


def test_push_to_a_conversation_where_only_the_sender_is_online(im):
    a, b = im.users(2, "pushsolo")
    conv = im.group(a, [b])["conversation_id"]
    wa = im.ws(a)
    assert wa.ack("push", {"conversation_id": conv, "payload": 1})["delivered"] == 0


def test_push_needs_a_shared_conversation(im):
    a, b, stranger = im.users(3, "pushno")
    conv = im.group(b, [stranger])["conversation_id"]
    wa, ws = im.ws(a), im.ws(stranger)
    wa.expect_error("push", {"to_user": stranger.id, "payload": 1}, "forbidden")
    wa.expect_error("push", {"conversation_id": conv, "payload": 1}, "forbidden")
    ws.expect_no_event("push")
