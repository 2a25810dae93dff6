"""Presence events, user.online and conversation.created events."""

from eim_http import assert_status


def online_event(user_id, online):
    return lambda d: d.get("user_id") == user_id and d.get("online") is online


def test_presence_first_connection_and_last_close(im):
    a, b, stranger = im.users(3, "pres")
    im.single(a, b)
    wa, ws = im.ws(a), im.ws(stranger)
    b1 = im.ws(b)
    assert wa.wait_event("presence", online_event(b.id, True)) == {
        "user_id": b.id, "online": True}
    # A second device does not announce again, and closing it does not
    # announce offline while the first is open.
    b2 = im.ws(b)
    b2.close()
    b1.ping()
    wa.expect_no_event("presence", lambda d: d.get("user_id") == b.id)
    b1.close()
    assert wa.wait_event("presence", online_event(b.id, False)) == {
        "user_id": b.id, "online": False}
    # Only users who share a conversation with b hear of it.
    ws.expect_no_event("presence", within=0)


def test_presence_reaches_only_users_sharing_a_conversation(im):
    a, b, c, stranger = im.users(4, "presg")
    im.group(a, [b])
    im.group(c, [a])
    wb, wc, ws = im.ws(b), im.ws(c), im.ws(stranger)
    wa = im.ws(a)
    for w in (wb, wc):
        w.wait_event("presence", online_event(a.id, True))
    ws.expect_no_event("presence")
    wa.close()
    for w in (wb, wc):
        w.wait_event("presence", online_event(a.id, False))
    ws.expect_no_event("presence", within=0)


def test_presence_reaches_every_connection_of_a_watcher(im):
    a, b = im.users(2, "presm")
    im.single(a, b)
    a1, a2 = im.ws(a), im.ws(a)
    im.ws(b)
    for w in (a1, a2):
        w.wait_event("presence", online_event(b.id, True))


def test_user_online_lists_online_contacts_only(im):
    a, online_peer, offline_peer, stranger = im.users(4, "online")
    im.single(a, online_peer)
    im.group(a, [offline_peer])
    im.ws(online_peer)
    im.ws(stranger)
    wa = im.ws(a)
    users = wa.ack("user.online")["users"]
    assert online_peer.id in users
    assert offline_peer.id not in users and stranger.id not in users
    # A contact who goes offline drops out of the list.
    w = im.ws(offline_peer)
    assert offline_peer.id in wa.ack("user.online")["users"]
    w.close()
    wa.wait_event("presence", online_event(offline_peer.id, False))
    assert offline_peer.id not in wa.ack("user.online")["users"]


def test_user_online_of_a_user_without_conversations_is_empty(im):
    u = im.user("lonely")
    im.ws(im.user("other"))
    users = im.ws(u).ack("user.online", {})["users"]
    assert users in ([], [u.id])


def test_conversation_created_event_on_create(im):
    a, b, c, stranger = im.users(4, "created")
    a1, b1, b2, c1, s1 = im.ws(a), im.ws(b), im.ws(b), im.ws(c), im.ws(stranger)
    g = im.group(a, [b, c], "news")
    for w in (a1, b1, b2, c1):
        ev = w.wait_event("conversation.created",
                          lambda d: d["conversation_id"] == g["conversation_id"])
        assert ev["type"] == "group" and ev["name"] == "news"
        assert sorted(ev["members"]) == sorted([a.id, b.id, c.id])
    s = im.single(b, c)
    for w in (b1, c1):
        ev = w.wait_event("conversation.created",
                          lambda d: d["conversation_id"] == s["conversation_id"])
        assert ev["type"] == "single" and sorted(ev["members"]) == sorted([b.id, c.id])
    s1.expect_no_event("conversation.created")
    a1.expect_no_event("conversation.created", within=0)


def test_conversation_created_event_when_added(im):
    a, b, newcomer = im.users(3, "addev")
    g = im.group(a, [b])
    n1 = im.ws(newcomer)
    assert_status(a.post(f"/api/v1/conversations/{g['conversation_id']}/members",
                         {"user_ids": [newcomer.id]}), 200)
    ev = n1.wait_event("conversation.created",
                       lambda d: d["conversation_id"] == g["conversation_id"])
    assert sorted(ev["members"]) == sorted([a.id, b.id, newcomer.id])
    # The newcomer is a member now: chat reaches it.
    wa = im.ws(a)
    wa.ack("conversation.chat", {"conversation_id": g["conversation_id"],
                                 "client_msg_id": "welcome", "content": "welcome"})
    assert n1.wait_event("conversation.chat")["content"] == "welcome"


def test_new_conversation_starts_presence_and_delivery_at_once(im):
    # Membership learned while connected takes effect without reconnecting.
    a, b = im.users(2, "late")
    wa, wb = im.ws(a), im.ws(b)
    conv = im.single(a, b)["conversation_id"]
    wb.wait_event("conversation.created")
    wa.ack("conversation.chat", {"conversation_id": conv, "client_msg_id": "1",
                                 "content": "first"})
    assert wb.wait_event("conversation.chat")["content"] == "first"
    assert b.id in wa.ack("user.online")["users"]
    wb.close()
    wa.wait_event("presence", online_event(b.id, False))
