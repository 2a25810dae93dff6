"""Values that look like SQL or MongoDB operators, in every string field the
clients give, are stored and returned verbatim by MariaDB and FerretDB
(written through one server, read through the other)."""

import secrets
import urllib.parse

from cluster_helpers import RUN, assert_status, e2e

# Each at most 64 bytes, so it also fits content_type.
EVIL = [
    "'; DROP TABLE users; --",
    "Robert'); DROP TABLE conversations;--",
    "' OR '1'='1' /*",
    '" OR ""="',
    "\\'; SELECT SLEEP(5); -- \\",
    "%_%' LIKE '%",
    '{"$gt": ""}',
    '{"$ne": null}',
    "$where",
    '{"$where": "sleep(1000) || true"}',
    "$set",
    "this.password.length > 0 || '",
    "a.b.c",
    "$",
    "`x`; \\N; NULL",
]


def test_operator_lookalikes_round_trip_verbatim(ph):
    # Usernames allow only A-Z a-z 0-9 _ . - : dots (Mongo paths) and SQL
    # comment dashes are what is left.
    names = [f"--.{RUN}.{secrets.token_hex(2)}", f"a.b-{RUN}--{secrets.token_hex(2)}"]
    users = []
    for name, pw in zip(names, ["'; DROP TABLE users; --", '{"$gt": ""}xx']):
        reg = assert_status(ph.h[0].register(name, pw), 201)
        assert reg["username"] == name
        login = assert_status(ph.h[1].login(name, pw), 200)
        assert login["user_id"] == reg["user_id"]
        users.append(e2e.User(ph.h[1].http, name, pw, login["user_id"], login["token"],
                              login["expires_at"]))
    a, b = users
    na, nb = names
    # An operator-looking password is just a wrong password.
    assert ph.h[0].login(na, "' OR '1'='1").status == 401
    assert ph.h[1].login(nb, '{"$ne": null}').status == 401

    for k in (0, 1):
        me = assert_status(ph.get(a, "/api/v1/users/me", k), 200)
        assert me == {"user_id": a.id, "username": na}
        q = urllib.parse.quote(nb, safe="")
        assert assert_status(ph.get(a, f"/api/v1/users?username={q}", k), 200) == {
            "user_id": b.id, "username": nb}
    # Look-ups with operator-looking names find nobody (nor everybody).
    for v in EVIL + [".*", "%", "_%"]:
        r = ph.get(a, "/api/v1/users?username=" + urllib.parse.quote(v, safe=""), 1)
        assert r.status in (400, 404), (v, r)

    # Live events need both on one server (no queue here); reads go to the other.
    wa, wb = ph.ws(a, 0), ph.ws(b, 0)
    convs = {}
    for v in EVIL:
        conv = assert_status(ph.post(a, "/api/v1/conversations", {
            "type": "group", "name": v, "members": [b.id]}, 0), 201)
        assert conv["name"] == v
        convs[conv["conversation_id"]] = v
    for cid, v in convs.items():
        assert assert_status(ph.get(b, f"/api/v1/conversations/{cid}", 1), 200)["name"] == v
    listed = {c["conversation_id"]: c["name"]
              for c in assert_status(ph.get(b, "/api/v1/conversations", 1), 200)[
                  "conversations"]}
    assert all(listed.get(cid) == v for cid, v in convs.items()), listed

    cid = next(iter(convs))
    sent = []
    for i, v in enumerate(EVIL):
        frame = {"conversation_id": cid, "client_msg_id": v, "content": v,
                 "content_type": EVIL[-1 - i]}
        ack = wa.ack("conversation.chat", frame)
        assert (ack["client_msg_id"], ack["content"]) == (v, v), ack
        ev = wb.wait_event("conversation.chat")
        assert (ev["client_msg_id"], ev["content"], ev["content_type"], ev["msg_id"]) == (
            v, v, EVIL[-1 - i], ack["msg_id"]), ev
        sent.append((ack["seq"], ack["msg_id"], v, EVIL[-1 - i]))
    assert [s[0] for s in sent] == list(range(1, len(EVIL) + 1))

    # Each operator-looking client_msg_id matches only itself on a retry.
    for seq, msg_id, v, _ in sent:
        again = wb.ack("conversation.chat", {"conversation_id": cid, "client_msg_id": v,
                                             "content": "not a retry: another sender"})
        assert again["msg_id"] != msg_id
        retry = wa.ack("conversation.chat", {"conversation_id": cid, "client_msg_id": v,
                                             "content": v})
        assert (retry["msg_id"], retry["seq"]) == (msg_id, seq), v

    hist = ph.history(b, cid, 1)["messages"][:len(EVIL)]
    assert [(m["seq"], m["msg_id"], m["client_msg_id"], m["content_type"]) for m in hist] == [
        (s, mid, v, ct) for s, mid, v, ct in sent]
    assert all(m["content"] == m["client_msg_id"] for m in hist)
    synced = wb.ack("conversation.sync", {"conversation_id": cid, "after_seq": 0,
                                          "limit": len(EVIL)})["messages"]
    assert [(m["msg_id"], m["content"]) for m in synced] == [(s[1], s[2]) for s in sent]

    # last_message in the list, through the other server.
    last = wa.ack("conversation.chat", {"conversation_id": cid, "client_msg_id": "last",
                                        "content": EVIL[6]})
    mine = [c for c in assert_status(ph.get(b, "/api/v1/conversations", 0), 200)[
        "conversations"] if c["conversation_id"] == cid]
    assert mine[0]["last_message"]["msg_id"] == last["msg_id"]
    assert mine[0]["last_message"]["content"] == EVIL[6]

    # Push payloads with operator keys pass through unchanged (never stored).
    payload = {"$gt": "", "$where": "1", "a.b": ["'; DROP TABLE users; --"]}
    assert wa.ack("push", {"to_user": b.id, "payload": payload})["delivered"] == 1
    assert wb.wait_event("push")["payload"] == payload

