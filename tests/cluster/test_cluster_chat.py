"""Clients on different nodes of a three-node cluster (shared store, Kafka):
chat, push, receipts, presence, conversation events, user.online, sync and
history all behave as on one node."""

from cluster_helpers import CLUSTER_TIMEOUT as T
from cluster_helpers import assert_status, sync_all, wait_until

# A negative check across nodes ("this event does not come") listens this
# long: records from another node take a Kafka round trip.
QUIET = 1.5


def online_event(user_id, online):
    return lambda d: d.get("user_id") == user_id and d.get("online") is online


def chat(w, conv, cmid, content):
    return w.ack("conversation.chat", {"conversation_id": conv, "client_msg_id": cmid,
                                       "content": content})


def wait_labelled(who, w, type_):
    """wait_event, failing with the name of the client that got nothing."""
    try:
        return w.wait_event(type_, timeout=T)
    except AssertionError as e:
        raise AssertionError(f"{who}: {e}") from None


def test_chat_reaches_members_and_sender_devices_on_other_nodes(cl):
    a, b, c = cl.users(3, "xchat")
    conv = cl.group(a, [b, c], "xnode", k=0)["conversation_id"]
    a0, a1 = cl.ws(a, 0), cl.ws(a, 1)
    b1, c2 = cl.ws(b, 1), cl.ws(c, 2)

    ack = chat(a0, conv, "m1", "hello from node0")
    assert ack["seq"] == 1 and ack["content"] == "hello from node0"
    for w in (b1, c2, a1):
        ev = w.wait_event("conversation.chat", timeout=T)
        assert (ev["seq"], ev["msg_id"], ev["sender"], ev["content"]) == (
            1, ack["msg_id"], a.id, "hello from node0"), ev
    a0.expect_no_event("conversation.chat", within=QUIET)

    # And back from another node: the sender's devices elsewhere see it too.
    ack2 = chat(c2, conv, "m2", "reply from node2")
    assert ack2["seq"] == 2
    for w in (a0, a1, b1):
        ev = w.wait_event("conversation.chat", timeout=T)
        assert (ev["seq"], ev["sender"], ev["content"]) == (2, c.id, "reply from node2")
    for w in (a0, a1, b1, c2):
        w.expect_no_event("conversation.chat", within=QUIET if w is c2 else 0)


def test_retry_on_another_node_acks_the_first_message(cl):
    a, b = cl.users(2, "xretry")
    conv = cl.group(a, [b], "retry", k=0)["conversation_id"]
    a0, a2, b1 = cl.ws(a, 0), cl.ws(a, 2), cl.ws(b, 1)
    first = chat(a0, conv, "same", "once")
    assert b1.wait_event("conversation.chat", timeout=T)["msg_id"] == first["msg_id"]
    # The ack was lost, the client reconnected to another node and retried.
    again = chat(a2, conv, "same", "once")
    assert (again["msg_id"], again["seq"]) == (first["msg_id"], first["seq"])
    b1.expect_no_event("conversation.chat", within=QUIET)
    assert [m["seq"] for m in cl.history(b, conv, 1)["messages"]] == [1]


def test_push_to_user_counts_and_reaches_connections_on_every_node(cl):
    a, b = cl.users(2, "xpush")
    cl.group(a, [b], "push", k=0)
    a0 = cl.ws(a, 0)
    b1, b2 = cl.ws(b, 1), cl.ws(b, 2)
    a0.wait_event("presence", online_event(b.id, True), timeout=T)

    # Node0 learns of b's second connection with no event to show it: push
    # until its presence view counts both, then check where the pushes went.
    n = iter(range(1, 10**6))

    def push_counts_two():
        i = next(n)
        d = a0.ack("push", {"to_user": b.id, "payload": {"i": i}})
        return (i, d["delivered"]) if d["delivered"] == 2 else None

    last, _ = wait_until("node0 counts b's 2 connections", push_counts_two, timeout=T,
                         interval=0.2)
    for w in (b1, b2):
        ev = w.wait_event("push", lambda d: d["payload"] == {"i": last}, timeout=T)
        assert ev == {"from": a.id, "payload": {"i": last}}, ev
    a0.expect_no_event("push", within=0)

    # A push to nobody online: 0, wherever the addressee's last node was.
    b1.close()
    b2.close()
    a0.wait_event("presence", online_event(b.id, False), timeout=T)
    assert a0.ack("push", {"to_user": b.id, "payload": "gone"})["delivered"] == 0


def test_push_to_conversation_counts_connections_on_all_nodes(cl):
    a, b, c = cl.users(3, "xpushc")
    conv = cl.group(a, [b, c], "pushc", k=0)["conversation_id"]
    a0 = cl.ws(a, 0)
    b1, c2 = cl.ws(b, 1), cl.ws(c, 2)
    for u in (b, c):
        a0.wait_event("presence", online_event(u.id, True), timeout=T)
    d = a0.ack("push", {"conversation_id": conv, "payload": {"kind": "typing"}})
    assert d["delivered"] == 2, d
    for w in (b1, c2):
        ev = w.wait_event("push", timeout=T)
        assert ev == {"from": a.id, "conversation_id": conv, "payload": {"kind": "typing"}}, ev
    a0.expect_no_event("push", within=QUIET)
    # Nothing of it was stored.
    assert cl.history(c, conv, 2)["messages"] == []


def test_read_receipts_cross_nodes(cl):
    a, b = cl.users(2, "xread")
    conv = cl.group(a, [b], "read", k=0)["conversation_id"]
    a0, b1, b2 = cl.ws(a, 0), cl.ws(b, 1), cl.ws(b, 2)
    for i in range(3):
        chat(a0, conv, f"r{i}", f"read me {i}")
    for _ in range(3):
        b1.wait_event("conversation.chat", timeout=T)
    got = b1.ack("conversation.read", {"conversation_id": conv, "seq": 2})
    assert got == {"conversation_id": conv, "read_seq": 2, "unread": 1}
    want = {"conversation_id": conv, "user_id": b.id, "read_seq": 2}
    assert a0.wait_event("conversation.read", timeout=T) == want
    assert b2.wait_event("conversation.read", timeout=T) == want
    # The cursor is in the shared store: every node reports it.
    for k in range(3):
        body = assert_status(cl.get(b, f"/api/v1/conversations/{conv}", k), 200)
        assert (body["max_seq"], body["read_seq"], body["unread"]) == (3, 2, 1), (k, body)


def test_presence_cross_nodes_first_connection_and_last_close(cl):
    a, b = cl.users(2, "xpres")
    cl.group(a, [b], "pres", k=1)
    a0 = cl.ws(a, 0)
    b1 = cl.ws(b, 1)
    assert a0.wait_event("presence", online_event(b.id, True), timeout=T) == {
        "user_id": b.id, "online": True}
    # b is on two nodes: closing one of them is not going offline.
    b2 = cl.ws(b, 2)
    b1.close()
    a0.expect_no_event("presence", lambda d: d["user_id"] == b.id, within=QUIET)
    b2.close()
    assert a0.wait_event("presence", online_event(b.id, False), timeout=T) == {
        "user_id": b.id, "online": False}
    a0.expect_no_event("presence", lambda d: d["user_id"] == b.id, within=QUIET)


def test_user_online_lists_users_online_on_any_node(cl):
    a, b, c, offline = cl.users(4, "xonl")
    cl.group(a, [b, c, offline], "online", k=2)
    a0 = cl.ws(a, 0)
    cl.ws(b, 1)
    c2 = cl.ws(c, 2)
    for u in (b, c):
        a0.wait_event("presence", online_event(u.id, True), timeout=T)
    assert set(a0.ack("user.online")["users"]) - {a.id} == {b.id, c.id}
    # Node2 sees a (node0) and b (node1) as well.
    wait_until("node2 lists a and b online",
               lambda: {a.id, b.id} <= set(c2.ack("user.online")["users"]), timeout=T)
    assert offline.id not in c2.ack("user.online")["users"]


def test_conversation_created_on_one_node_reaches_members_on_others(cl):
    a, b, c = cl.users(3, "xcreate")
    a0, b1, c2 = cl.ws(a, 0), cl.ws(b, 1), cl.ws(c, 2)
    conv = cl.group(a, [b, c], "fresh", k=0)
    cid = conv["conversation_id"]
    ev_c = c2.wait_event("conversation.created", timeout=T)
    assert ev_c["conversation_id"] == cid and set(ev_c["members"]) == {a.id, b.id, c.id}
    # c chats the moment it hears of the conversation, through its own node.
    ack = chat(c2, cid, "first", "first words")
    assert ack["seq"] == 1
    ev_b = b1.wait_event("conversation.created", timeout=T)
    assert ev_b["conversation_id"] == cid and ev_b["name"] == "fresh"
    for who, w in (("b on node1", b1), ("a on node0, the creator's node", a0)):
        ev = wait_labelled(who, w, "conversation.chat")
        assert (ev["conversation_id"], ev["seq"], ev["sender"]) == (cid, 1, c.id), ev
    # b answers through node1 at once, too.
    assert chat(b1, cid, "second", "me too")["seq"] == 2
    for w in (a0, c2):
        assert w.wait_event("conversation.chat", timeout=T)["seq"] == 2


def test_members_added_on_one_node_chat_through_another(cl):
    a, b, d = cl.users(3, "xadd")
    cid = cl.group(a, [b], "grow", k=0)["conversation_id"]
    a0, b1, d2 = cl.ws(a, 0), cl.ws(b, 1), cl.ws(d, 2)
    # b adds d through node1; d is connected to node2.
    body = assert_status(cl.post(b, f"/api/v1/conversations/{cid}/members",
                                 {"user_ids": [d.id]}, 1), 200)
    assert d.id in body["members"]
    ev = d2.wait_event("conversation.created", timeout=T)
    assert ev["conversation_id"] == cid and d.id in ev["members"]
    ack = chat(d2, cid, "hi", "thanks for adding me")
    for w in (a0, b1):
        got = w.wait_event("conversation.chat", timeout=T)
        assert (got["seq"], got["sender"], got["msg_id"]) == (1, d.id, ack["msg_id"])
    # And d receives what the others send.
    chat(a0, cid, "welcome", "welcome d")
    assert d2.wait_event("conversation.chat", timeout=T)["seq"] == 2


def test_sync_and_history_from_any_node(cl):
    a, b = cl.users(2, "xsync")
    cid = cl.group(a, [b], "sync", k=0)["conversation_id"]
    a0 = cl.ws(a, 0)
    ids = [a0.send_request("conversation.chat", {"conversation_id": cid,
                                                 "client_msg_id": f"s{i}",
                                                 "content": f"sync {i}"})
           for i in range(60)]
    acks = [f["data"] for f in a0.collect(ids, timeout=60)]
    assert [x["seq"] for x in acks] == list(range(1, 61))
    want = [(x["seq"], x["msg_id"]) for x in acks]
    # b was offline; it catches up from whichever node it reaches.
    for k in range(3):
        wb = cl.ws(b, k)
        got = sync_all(wb, cid, limit=25)
        assert [(m["seq"], m["msg_id"]) for m in got] == want, k
        hist = cl.all_history(b, cid, k)
        assert [(m["seq"], m["msg_id"], m["content"]) for m in hist] == [
            (x["seq"], x["msg_id"], f"sync {i}") for i, x in enumerate(acks)], k
        convs = assert_status(cl.get(b, "/api/v1/conversations", k), 200)["conversations"]
        mine = [c for c in convs if c["conversation_id"] == cid]
        assert len(mine) == 1 and (mine[0]["max_seq"], mine[0]["unread"]) == (60, 60), mine
        wb.close()
