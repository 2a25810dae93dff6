"""Two senders pipelining into one group: gapless seq and in-order delivery."""

import concurrent.futures

PER_SENDER = 150


def test_two_pipelining_senders_get_gapless_seqs_delivered_in_order(im):
    s1, s2, reader = im.users(3, "order")
    conv = im.group(s1, [s2, reader], "race")["conversation_id"]
    w1, w2, wr = im.ws(s1), im.ws(s2), im.ws(reader)

    def burst(w, tag):
        # Everything is sent before the first ack is read.
        ids = [w.send_request("conversation.chat", {
            "conversation_id": conv, "client_msg_id": f"{tag}-{i}", "content": f"{tag} {i}"})
            for i in range(PER_SENDER)]
        return [f for f in w.collect(ids, timeout=60)]

    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        r1, r2 = ex.map(burst, (w1, w2), ("one", "two"))
    replies = r1 + r2
    bad = [f for f in replies if f["type"] != "conversation.chat.ack"]
    assert not bad, bad[:3]
    acks = [f["data"] for f in replies]
    assert sorted(a["seq"] for a in acks) == list(range(1, 2 * PER_SENDER + 1))
    assert len({a["msg_id"] for a in acks}) == 2 * PER_SENDER

    # The reader sees all 300, in seq order, matching the acks.
    got = [wr.wait_event("conversation.chat") for _ in range(2 * PER_SENDER)]
    assert [m["seq"] for m in got] == list(range(1, 2 * PER_SENDER + 1))
    by_seq = {a["seq"]: a for a in acks}
    assert all(m["msg_id"] == by_seq[m["seq"]]["msg_id"] for m in got)
    # Each sender sees the other's 150, in seq order, and none of its own.
    for w, other in ((w1, "two"), (w2, "one")):
        evs = [w.wait_event("conversation.chat") for _ in range(PER_SENDER)]
        seqs = [m["seq"] for m in evs]
        assert seqs == sorted(seqs)
        assert all(m["client_msg_id"].startswith(other + "-") for m in evs)
    w1.expect_no_event("conversation.chat")
    w2.expect_no_event("conversation.chat", within=0)
    # And the store agrees.
    hist = im.history(reader, conv, "?after_seq=0&limit=200")["messages"]
    hist += im.history(reader, conv, "?after_seq=200&limit=200")["messages"]
    assert [m["seq"] for m in hist] == list(range(1, 2 * PER_SENDER + 1))
