"""Conversations over HTTP: create, add members, get, list, read cursor."""

import pytest

from eim_http import assert_error, assert_status

CONV = "/api/v1/conversations"
UNKNOWN_CONV = "000000000000000000000000"  # no store mints this id


def check_conversation(c, type_, members):
    assert isinstance(c["conversation_id"], str) and c["conversation_id"]
    assert c["type"] == type_
    assert sorted(c["members"]) == sorted({m.id for m in members})
    assert len(c["members"]) == len(set(c["members"]))
    assert isinstance(c["created_at"], int) and c["created_at"] > 1_600_000_000_000
    for k in ("max_seq", "read_seq", "unread"):
        assert isinstance(c[k], int), (k, c)
    assert "last_message" in c


def test_single_create_then_same_conversation_from_both_sides(im):
    a, b = im.users(2, "single")
    r = a.post(CONV, {"type": "single", "peer": b.id})
    c = assert_status(r, 201)
    check_conversation(c, "single", [a, b])
    assert (c["max_seq"], c["read_seq"], c["unread"], c["last_message"]) == (0, 0, 0, None)
    again = assert_status(a.post(CONV, {"type": "single", "peer": b.id}), 200)
    assert again["conversation_id"] == c["conversation_id"]
    other_side = assert_status(b.post(CONV, {"type": "single", "peer": a.id}), 200)
    assert other_side["conversation_id"] == c["conversation_id"]
    check_conversation(other_side, "single", [a, b])


def test_single_with_unknown_peer_is_refused(im):
    a = im.user("single")
    r = a.post(CONV, {"type": "single", "peer": UNKNOWN_CONV})
    assert r.status in (400, 404), r
    assert_error(r, r.status, {400: "bad_request", 404: "not_found"}[r.status])


def test_single_with_oneself_is_400(im):
    a = im.user("self")
    # A single chat has exactly two members.
    assert_error(a.post(CONV, {"type": "single", "peer": a.id}), 400, "bad_request")


@pytest.mark.parametrize("body", [
    {}, {"type": "single"}, {"type": "single", "peer": 5}, {"type": "circle", "peer": "x"},
    {"type": 1}, {"type": "group", "name": 5, "members": []},
    {"type": "group", "name": "g", "members": "nope"},
    {"type": "group", "name": "g", "members": [5]},
])
def test_create_with_bad_fields_is_400(im, body):
    a = im.user("badconv")
    assert_error(a.post(CONV, body), 400, "bad_request")


def test_group_create_includes_the_creator(im):
    a, b, c = im.users(3, "group")
    g = assert_status(a.post(CONV, {"type": "group", "name": "crew", "members": [b.id, c.id]}),
                      201)
    check_conversation(g, "group", [a, b, c])
    assert g["name"] == "crew"
    # Naming the creator too changes nothing: each member appears once.
    g2 = assert_status(a.post(CONV, {"type": "group", "name": "crew2",
                                     "members": [a.id, b.id, b.id]}), 201)
    check_conversation(g2, "group", [a, b])
    assert g2["conversation_id"] != g["conversation_id"]
    alone = assert_status(a.post(CONV, {"type": "group", "name": "solo", "members": []}), 201)
    check_conversation(alone, "group", [a])


def test_group_with_unknown_member_is_refused_and_not_created(im):
    a, b = im.users(2, "group")
    before = assert_status(a.get(CONV), 200)["conversations"]
    r = a.post(CONV, {"type": "group", "name": "ghosts", "members": [b.id, UNKNOWN_CONV]})
    assert r.status in (400, 404), r
    assert_error(r, r.status, {400: "bad_request", 404: "not_found"}[r.status])
    assert assert_status(a.get(CONV), 200)["conversations"] == before
    assert assert_status(b.get(CONV), 200)["conversations"] == []


def test_add_members_to_group(im):
    a, b, c, d = im.users(4, "add")
    g = im.group(a, [b])
    path = f"{CONV}/{g['conversation_id']}/members"
    body = assert_status(a.post(path, {"user_ids": [c.id, d.id]}), 200)
    check_conversation(body, "group", [a, b, c, d])
    # Any member may add; the new members see the conversation.
    assert_status(c.get(f"{CONV}/{g['conversation_id']}"), 200)
    ids = [x["conversation_id"] for x in assert_status(d.get(CONV), 200)["conversations"]]
    assert g["conversation_id"] in ids


def test_add_members_refusals(im):
    a, b, c, outsider = im.users(4, "addno")
    single = im.single(a, b)
    g = im.group(a, [b])
    assert_error(a.post(f"{CONV}/{single['conversation_id']}/members", {"user_ids": [c.id]}),
                 400, "bad_request")
    assert_error(outsider.post(f"{CONV}/{g['conversation_id']}/members",
                               {"user_ids": [outsider.id]}), 403, "forbidden")
    assert_error(a.post(f"{CONV}/{UNKNOWN_CONV}/members", {"user_ids": [c.id]}),
                 404, "not_found")
    assert_error(a.post(f"{CONV}/{g['conversation_id']}/members", {"user_ids": "x"}),
                 400, "bad_request")
    r = a.post(f"{CONV}/{g['conversation_id']}/members", {"user_ids": [UNKNOWN_CONV]})
    assert r.status in (400, 404), r
    # None of the refusals changed the members.
    got = assert_status(a.get(f"{CONV}/{g['conversation_id']}"), 200)
    check_conversation(got, "group", [a, b])
    assert assert_status(outsider.get(CONV), 200)["conversations"] == []


def test_get_conversation_member_outsider_unknown(im):
    a, b, outsider = im.users(3, "get")
    g = im.group(a, [b], "getme")
    got = assert_status(b.get(f"{CONV}/{g['conversation_id']}"), 200)
    check_conversation(got, "group", [a, b])
    assert got["name"] == "getme"
    assert_error(outsider.get(f"{CONV}/{g['conversation_id']}"), 403, "forbidden")
    assert_error(a.get(f"{CONV}/{UNKNOWN_CONV}"), 404, "not_found")


def test_list_is_most_recent_activity_first_with_counters(im):
    a, b = im.users(2, "list")
    c1 = im.group(a, [b], "first")
    c2 = im.group(a, [b], "second")
    c3 = im.group(a, [b], "third")
    wa = im.ws(a)
    acks = [wa.ack("conversation.chat", {"conversation_id": c1["conversation_id"],
                                         "client_msg_id": f"m{i}", "content": f"hello {i}"})
            for i in (1, 2)]
    la = assert_status(a.get(CONV), 200)["conversations"]
    ids = [c["conversation_id"] for c in la]
    assert ids[0] == c1["conversation_id"], ids
    assert set(ids) == {c1["conversation_id"], c2["conversation_id"], c3["conversation_id"]}
    if c3["created_at"] > c2["created_at"]:
        assert ids.index(c3["conversation_id"]) < ids.index(c2["conversation_id"]), ids
    by_id = {c["conversation_id"]: c for c in la}
    first = by_id[c1["conversation_id"]]
    # The sender's own messages count as read.
    assert (first["max_seq"], first["read_seq"], first["unread"]) == (2, 2, 0)
    last = first["last_message"]
    assert last["seq"] == 2 and last["content"] == "hello 2"
    assert last["msg_id"] == acks[1]["msg_id"] and last["sender"] == a.id
    empty = by_id[c2["conversation_id"]]
    assert (empty["max_seq"], empty["read_seq"], empty["unread"]) == (0, 0, 0)
    assert empty["last_message"] is None
    lb = {c["conversation_id"]: c for c in assert_status(b.get(CONV), 200)["conversations"]}
    seen_by_b = lb[c1["conversation_id"]]
    assert (seen_by_b["max_seq"], seen_by_b["read_seq"], seen_by_b["unread"]) == (2, 0, 2)
    # b answers: its own message marks everything before it read too.
    wb = im.ws(b)
    wb.ack("conversation.chat", {"conversation_id": c1["conversation_id"],
                                 "client_msg_id": "b1", "content": "reply"})
    lb = {c["conversation_id"]: c for c in assert_status(b.get(CONV), 200)["conversations"]}
    assert (lb[c1["conversation_id"]]["max_seq"], lb[c1["conversation_id"]]["unread"]) == (3, 0)
    la = {c["conversation_id"]: c for c in assert_status(a.get(CONV), 200)["conversations"]}
    assert (la[c1["conversation_id"]]["read_seq"], la[c1["conversation_id"]]["unread"]) == (2, 1)
    # Activity in c3 moves it to the top.
    wa.ack("conversation.chat", {"conversation_id": c3["conversation_id"],
                                 "client_msg_id": "m3", "content": "bump"})
    ids = [c["conversation_id"] for c in assert_status(a.get(CONV), 200)["conversations"]]
    assert ids[0] == c3["conversation_id"], ids


def test_post_read_moves_forward_only_and_clamps(im):
    a, b, outsider = im.users(3, "read")
    g = im.group(a, [b])
    cid = g["conversation_id"]
    wa = im.ws(a)
    for i in range(5):
        wa.ack("conversation.chat", {"conversation_id": cid, "client_msg_id": f"r{i}",
                                     "content": f"m{i}"})
    path = f"{CONV}/{cid}/read"
    assert assert_status(b.post(path, {"seq": 3}), 200) == {
        "conversation_id": cid, "read_seq": 3, "unread": 2}
    # Never back.
    assert assert_status(b.post(path, {"seq": 1}), 200) == {
        "conversation_id": cid, "read_seq": 3, "unread": 2}
    # Past the end: clamped to max_seq.
    assert assert_status(b.post(path, {"seq": 10**9}), 200) == {
        "conversation_id": cid, "read_seq": 5, "unread": 0}
    got = assert_status(b.get(f"{CONV}/{cid}"), 200)
    assert (got["max_seq"], got["read_seq"], got["unread"]) == (5, 5, 0)
    for bad in ({}, {"seq": "3"}, {"seq": None}, {"seq": [1]}):
        assert_error(b.post(path, bad), 400, "bad_request")
    assert_error(outsider.post(path, {"seq": 1}), 403, "forbidden")
    assert_error(b.post(f"{CONV}/{UNKNOWN_CONV}/read", {"seq": 1}), 404, "not_found")
