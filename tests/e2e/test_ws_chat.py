"""conversation.chat, conversation.read and conversation.sync over WebSocket."""

import time

import pytest

from eim_http import assert_status

UNKNOWN_CONV = "000000000000000000000000"


def chat(conv, cmid, content, **extra):
    return {"conversation_id": conv, "client_msg_id": cmid, "content": content, **extra}


@pytest.fixture
def trio(im):
    """a (two connections), b, c in one group; outsider online elsewhere."""
    a, b, c, outsider = im.users(4, "chat")
    conv = im.group(a, [b, c])["conversation_id"]
    return dict(a=a, b=b, c=c, outsider=outsider, conv=conv,
                a1=im.ws(a), a2=im.ws(a), b1=im.ws(b), c1=im.ws(c), o1=im.ws(outsider))


def test_chat_ack_and_delivery_to_everyone_but_the_sending_connection(trio):
    t = trio
    before = int(time.time() * 1000)
    ack = t["a1"].ack("conversation.chat", chat(t["conv"], "c-1", "hello team"))
    after = int(time.time() * 1000)
    assert ack["client_msg_id"] == "c-1"
    assert ack["seq"] == 1
    assert ack["content"] == "hello team"
    assert isinstance(ack["msg_id"], str) and ack["msg_id"]
    assert before - 1000 <= ack["created_at"] <= after + 1000
    expected = {"msg_id": ack["msg_id"], "conversation_id": t["conv"], "seq": 1,
                "sender": t["a"].id, "client_msg_id": "c-1", "content_type": "text",
                "content": "hello team", "created_at": ack["created_at"]}
    for name in ("a2", "b1", "c1"):
        ev = t[name].wait_event("conversation.chat")
        assert {k: ev.get(k) for k in expected} == expected, (name, ev)
    t["a1"].expect_no_event("conversation.chat")
    t["o1"].expect_no_event("conversation.chat", within=0)


def test_chat_seq_grows_by_one_and_history_has_it(im, trio):
    t = trio
    seqs = [t["b1"].ack("conversation.chat", chat(t["conv"], f"s{i}", f"m{i}"))["seq"]
            for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    msgs = im.history(t["c"], t["conv"])["messages"]
    assert [m["content"] for m in msgs] == [f"m{i}" for i in range(5)]
    got = [t["a1"].wait_event("conversation.chat")["seq"] for _ in range(5)]
    assert got == [1, 2, 3, 4, 5]


def test_retry_with_same_client_msg_id_stores_nothing_new(im, trio):
    t = trio
    first = t["a1"].ack("conversation.chat", chat(t["conv"], "retry-1", "once"))
    t["b1"].wait_event("conversation.chat", lambda m: m["client_msg_id"] == "retry-1")
    again = t["a1"].ack("conversation.chat", chat(t["conv"], "retry-1", "once"))
    assert (again["msg_id"], again["seq"], again["created_at"]) == (
        first["msg_id"], first["seq"], first["created_at"])
    from_other_conn = t["a2"].ack("conversation.chat", chat(t["conv"], "retry-1", "once"))
    assert from_other_conn["msg_id"] == first["msg_id"]
    t["b1"].expect_no_event("conversation.chat")
    hist = im.history(t["b"], t["conv"])
    assert [m["msg_id"] for m in hist["messages"]] == [first["msg_id"]]
    # The next new message gets the next seq: the retry used none.
    nxt = t["a1"].ack("conversation.chat", chat(t["conv"], "retry-2", "twice"))
    assert nxt["seq"] == first["seq"] + 1


def test_same_client_msg_id_from_another_sender_is_a_new_message(trio):
    t = trio
    a = t["a1"].ack("conversation.chat", chat(t["conv"], "shared-id", "from a"))
    b = t["b1"].ack("conversation.chat", chat(t["conv"], "shared-id", "from b"))
    assert b["msg_id"] != a["msg_id"] and b["seq"] == a["seq"] + 1


def test_content_type_defaults_to_text_and_is_kept(im, trio):
    t = trio
    t["a1"].ack("conversation.chat", chat(t["conv"], "t1", "plain"))
    t["a1"].ack("conversation.chat", chat(t["conv"], "t2", '{"x":1}',
                                           content_type="application/json"))
    evs = [t["b1"].wait_event("conversation.chat") for _ in range(2)]
    assert [e["content_type"] for e in evs] == ["text", "application/json"]
    msgs = im.history(t["a"], t["conv"])["messages"]
    assert [m["content_type"] for m in msgs] == ["text", "application/json"]


def test_content_limit_is_8_kib(im, trio):
    t = trio
    ok = t["a1"].ack("conversation.chat", chat(t["conv"], "k1", "k" * 8192))
    assert ok["content"] == "k" * 8192
    # 8192 bytes in 4096 characters is at the limit; one more byte is over.
    t["a1"].ack("conversation.chat", chat(t["conv"], "k2", "\u00e9" * 4096))
    t["a1"].expect_error("conversation.chat", chat(t["conv"], "k3", "k" * 8193),
                         "payload_too_large")
    t["a1"].expect_error("conversation.chat", chat(t["conv"], "k4", "\u00e9" * 4096 + "k"),
                         "payload_too_large")
    assert [m["client_msg_id"] for m in im.history(t["b"], t["conv"])["messages"]] == [
        "k1", "k2"]


def test_non_member_and_unknown_conversation_are_refused(im, trio):
    t = trio
    t["o1"].expect_error("conversation.chat", chat(t["conv"], "x", "intruder"), "forbidden")
    frame = t["a1"].request("conversation.chat", chat(UNKNOWN_CONV, "x", "nowhere"))
    assert frame["type"] == "error"
    assert frame["data"]["error"]["code"] in ("not_found", "forbidden"), frame
    t["b1"].expect_no_event("conversation.chat")
    assert im.history(t["a"], t["conv"])["messages"] == []


def test_conversation_read_receipts(trio):
    t = trio
    for i in range(4):
        t["a1"].ack("conversation.chat", chat(t["conv"], f"r{i}", f"m{i}"))
    ack = t["b1"].ack("conversation.read", {"conversation_id": t["conv"], "seq": 3})
    assert ack == {"conversation_id": t["conv"], "read_seq": 3, "unread": 1}
    receipt = {"conversation_id": t["conv"], "user_id": t["b"].id, "read_seq": 3}
    for name in ("a1", "a2", "c1"):
        ev = t[name].wait_event("conversation.read")
        assert {k: ev.get(k) for k in receipt} == receipt, (name, ev)
    # Never back: the ack keeps 3, and no receipt says otherwise.
    back = t["b1"].ack("conversation.read", {"conversation_id": t["conv"], "seq": 1})
    assert back == {"conversation_id": t["conv"], "read_seq": 3, "unread": 1}
    t["a1"].expect_no_event("conversation.read", lambda d: d["read_seq"] < 3)
    t["b1"].expect_no_event("conversation.read", within=0)
    # Past the end: clamped.
    end = t["b1"].ack("conversation.read", {"conversation_id": t["conv"], "seq": 99})
    assert end == {"conversation_id": t["conv"], "read_seq": 4, "unread": 0}
    t["o1"].expect_no_event("conversation.read", within=0)


def test_conversation_read_reaches_the_readers_other_connections(im, trio):
    t = trio
    t["a1"].ack("conversation.chat", chat(t["conv"], "x1", "one"))
    b2 = im.ws(t["b"])
    t["b1"].ack("conversation.read", {"conversation_id": t["conv"], "seq": 1})
    ev = b2.wait_event("conversation.read")
    assert (ev["user_id"], ev["read_seq"]) == (t["b"].id, 1)
    t["b1"].expect_no_event("conversation.read")
    conv = assert_status(t["b"].get(f"/api/v1/conversations/{t['conv']}"), 200)
    assert (conv["read_seq"], conv["unread"]) == (1, 0)


def test_conversation_read_refusals(trio):
    t = trio
    t["o1"].expect_error("conversation.read", {"conversation_id": t["conv"], "seq": 1},
                         "forbidden")
    t["a1"].expect_error("conversation.read", {"conversation_id": t["conv"]}, "bad_request")


def test_conversation_sync(im, trio):
    t = trio
    acks = [t["a1"].ack("conversation.chat", chat(t["conv"], f"y{i}", f"m{i}"))
            for i in range(1, 8)]
    full = t["c1"].ack("conversation.sync", {"conversation_id": t["conv"], "after_seq": 0})
    assert [m["seq"] for m in full["messages"]] == list(range(1, 8))
    assert full["has_more"] is False
    assert [m["msg_id"] for m in full["messages"]] == [a["msg_id"] for a in acks]
    part = t["c1"].ack("conversation.sync",
                       {"conversation_id": t["conv"], "after_seq": 2, "limit": 3})
    assert [m["seq"] for m in part["messages"]] == [3, 4, 5] and part["has_more"] is True
    rest = t["c1"].ack("conversation.sync",
                       {"conversation_id": t["conv"], "after_seq": 5, "limit": 3})
    assert [m["seq"] for m in rest["messages"]] == [6, 7] and rest["has_more"] is False
    none = t["c1"].ack("conversation.sync", {"conversation_id": t["conv"], "after_seq": 7})
    assert none == {"messages": [], "has_more": False}
    m = full["messages"][0]
    assert (m["sender"], m["content"], m["conversation_id"]) == (t["a"].id, "m1", t["conv"])
    t["o1"].expect_error("conversation.sync", {"conversation_id": t["conv"], "after_seq": 0},
                         "forbidden")


def test_sync_limit_is_capped_at_200(trio):
    t = trio
    ids = [t["a1"].send_request("conversation.chat", chat(t["conv"], f"z{i}", "z"))
           for i in range(210)]
    for f in t["a1"].collect(ids, timeout=60):
        assert f["type"] == "conversation.chat.ack", f
    at_cap = t["b1"].ack("conversation.sync",
                         {"conversation_id": t["conv"], "after_seq": 0, "limit": 200})
    assert [m["seq"] for m in at_cap["messages"]] == list(range(1, 201))
    assert at_cap["has_more"] is True
    r = t["b1"].request("conversation.sync",
                        {"conversation_id": t["conv"], "after_seq": 0, "limit": 1000})
    if r["type"] == "error":
        assert r["data"]["error"]["code"] == "bad_request", r
    else:
        seqs = [m["seq"] for m in r["data"]["messages"]]
        assert 0 < len(seqs) <= 200 and seqs == list(range(1, len(seqs) + 1))
        assert r["data"]["has_more"] is True


def test_offline_member_catches_up_by_sync(im):
    a, offline = im.users(2, "offline")
    conv = im.group(a, [offline])["conversation_id"]
    wa = im.ws(a)
    acks = [wa.ack("conversation.chat", chat(conv, f"o{i}", f"while away {i}"))
            for i in range(3)]
    listed = assert_status(offline.get(f"/api/v1/conversations/{conv}"), 200)
    assert (listed["max_seq"], listed["read_seq"], listed["unread"]) == (3, 0, 3)
    assert listed["last_message"]["msg_id"] == acks[-1]["msg_id"]
    wo = im.ws(offline)
    # Nothing is replayed live on connect; sync fills the gap.
    wo.expect_no_event("conversation.chat")
    got = wo.ack("conversation.sync", {"conversation_id": conv, "after_seq": 0})
    assert [m["msg_id"] for m in got["messages"]] == [x["msg_id"] for x in acks]
    # From now on it is live again.
    wa.ack("conversation.chat", chat(conv, "o3", "welcome back"))
    assert wo.wait_event("conversation.chat")["seq"] == 4
