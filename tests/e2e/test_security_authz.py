"""The authorization matrix: a user who is not a member of a conversation
(a single chat between two others, and a group of others) is refused every
HTTP route and every WebSocket request on it with 403 / forbidden, and
nothing is stored or delivered: the members receive no event, history,
members and read positions are unchanged."""

import pytest

from eim_http import assert_error, assert_status


@pytest.fixture
def scene(im):
    """a and b share a single chat and a group (with c); x shares nothing
    with any of them. Each conversation has two messages, and b read one."""
    a, b, c, x = im.users(4, "authz")
    single = im.single(a, b)["conversation_id"]
    group = im.group(a, [b, c], "private")["conversation_id"]
    wa = im.ws(a)
    for conv in (single, group):
        for i in range(2):
            wa.ack("conversation.chat", {"conversation_id": conv, "client_msg_id": f"m{i}",
                                         "content": f"secret {i}"})
        assert_status(b.post(f"/api/v1/conversations/{conv}/read", {"seq": 1}), 200)
    wa.close()
    return im, a, b, c, x, {"single": single, "group": group}


def snapshot(im, members, conv):
    """What the members see of conv: history, member list, max_seq and each
    member's read_seq."""
    hist = im.history(members[0], conv, "?after_seq=0&limit=200")["messages"]
    views = [assert_status(m.get(f"/api/v1/conversations/{conv}"), 200) for m in members]
    return (hist, sorted(views[0]["members"]), views[0]["max_seq"],
            [v["read_seq"] for v in views])


@pytest.mark.parametrize("kind", ["single", "group"])
def test_outsider_is_refused_every_http_route(scene, kind):
    im, a, b, c, x, convs = scene
    conv = convs[kind]
    members = [a, b] if kind == "single" else [a, b, c]
    before = snapshot(im, members, conv)
    wa, wb = im.ws(a), im.ws(b)
    assert_error(x.get(f"/api/v1/conversations/{conv}"), 403, "forbidden")
    for q in ("", "?after_seq=0", "?before_seq=3", "?limit=200"):
        assert_error(x.get(f"/api/v1/conversations/{conv}/messages{q}"), 403, "forbidden")
    assert_error(x.post(f"/api/v1/conversations/{conv}/read", {"seq": 2}), 403, "forbidden")
    # Adding oneself, or someone else, to a conversation one is not in.
    assert_error(x.post(f"/api/v1/conversations/{conv}/members", {"user_ids": [x.id]}), 403,
                 "forbidden")
    # The list shows x nothing of it.
    listed = assert_status(x.get("/api/v1/conversations"), 200)["conversations"]
    assert conv not in [cv["conversation_id"] for cv in listed]
    # Nothing changed and the members were told nothing.
    assert snapshot(im, members, conv) == before
    for w in (wa, wb):
        w.expect_no_event("conversation.read")
        w.expect_no_event("conversation.created")
    # A group member may add x; the refusal above was about x, not the route.
    if kind == "group":
        assert_status(a.post(f"/api/v1/conversations/{conv}/members", {"user_ids": [x.id]}),
                      200)
        assert_status(x.get(f"/api/v1/conversations/{conv}"), 200)


@pytest.mark.parametrize("kind", ["single", "group"])
def test_outsider_is_refused_every_websocket_request(scene, kind):
    im, a, b, c, x, convs = scene
    conv = convs[kind]
    members = [a, b] if kind == "single" else [a, b, c]
    before = snapshot(im, members, conv)
    victims = [im.ws(m) for m in members]
    wx = im.ws(x)
    wx.expect_error("conversation.chat", {"conversation_id": conv, "client_msg_id": "intrude",
                                          "content": "let me in"}, "forbidden")
    wx.expect_error("conversation.read", {"conversation_id": conv, "seq": 2}, "forbidden")
    wx.expect_error("conversation.sync", {"conversation_id": conv, "after_seq": 0},
                    "forbidden")
    wx.expect_error("push", {"conversation_id": conv, "payload": {"fake": "typing"}},
                    "forbidden")
    # Nothing stored, nothing delivered: not the chat, not a receipt, not a push.
    for w in victims:
        w.expect_no_event("conversation.chat")
        w.expect_no_event("conversation.read")
        w.expect_no_event("push")
    assert snapshot(im, members, conv) == before
    # The same requests from a member work: the refusals were about x.
    assert victims[0].ack("conversation.sync", {"conversation_id": conv,
                                                "after_seq": 0})["messages"]
    assert wx.ping() == {}


def test_push_to_a_user_with_no_shared_conversation_is_forbidden(scene):
    im, a, b, c, x, convs = scene
    wa1, wa2, wx = im.ws(a), im.ws(a), im.ws(x)
    wx.expect_error("push", {"to_user": a.id, "payload": "hello stranger"}, "forbidden")
    for w in (wa1, wa2):
        w.expect_no_event("push")
    # Once they share a conversation the same push goes through.
    im.single(x, a)
    assert wx.ack("push", {"to_user": a.id, "payload": "hello"})["delivered"] == 2
    assert wa1.wait_event("push")["payload"] == "hello"


def test_a_member_cannot_send_as_someone_else(scene):
    # The sender comes from the token, never from the payload.
    im, a, b, c, x, convs = scene
    conv = convs["group"]
    wb, wa = im.ws(b), im.ws(a)
    ack = wb.ack("conversation.chat", {"conversation_id": conv, "client_msg_id": "spoof",
                                       "content": "I am a", "sender": a.id, "user_id": a.id,
                                       "from": a.id})
    ev = wa.wait_event("conversation.chat", lambda d: d["client_msg_id"] == "spoof")
    assert ev["sender"] == b.id
    msgs = im.history(a, conv, f"?after_seq={ack['seq'] - 1}")["messages"]
    assert msgs[0]["sender"] == b.id
    # Nor push as someone else, nor read for someone else.
    assert wb.ack("push", {"conversation_id": conv, "payload": 1, "from": a.id})
    assert wa.wait_event("push")["from"] == b.id
    wb.ack("conversation.read", {"conversation_id": conv, "seq": ack["seq"],
                                 "user_id": c.id})
    got = assert_status(c.get(f"/api/v1/conversations/{conv}"), 200)
    assert got["read_seq"] == 0


def test_unknown_and_foreign_ids_do_not_reveal_conversations(scene):
    # An id that does not exist is 404, one that exists but is not yours is
    # 403: the contract's codes. Neither ever returns content.
    im, a, b, c, x, convs = scene
    for conv in convs.values():
        r = x.get(f"/api/v1/conversations/{conv}/messages")
        assert r.status == 403 and b"secret" not in r.body, r
    r = x.get("/api/v1/conversations/no-such-conversation-id/messages")
    assert r.status in (403, 404) and b"secret" not in r.body, r
