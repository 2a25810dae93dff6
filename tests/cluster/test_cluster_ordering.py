"""Two senders on different nodes pipelining into one group: the store hands
out seqs 1..300 exactly, and every member connection on every node gets all
of them, in seq order, each once."""

import concurrent.futures

from cluster_helpers import assert_status

PER_SENDER = 150
TOTAL = 2 * PER_SENDER


def burst(w, conv, tag):
    # Everything is sent before the first ack is read.
    ids = [w.send_request("conversation.chat", {
        "conversation_id": conv, "client_msg_id": f"{tag}-{i}", "content": f"{tag} {i}"})
        for i in range(PER_SENDER)]
    return w.collect(ids, timeout=120)


def test_pipelining_senders_on_two_nodes_every_node_delivers_all_in_order(cl):
    s1, s2, r0, r1, r2 = cl.users(5, "xorder")
    conv = cl.group(s1, [s2, r0, r1, r2], "race", k=2)["conversation_id"]
    w1, w2 = cl.ws(s1, 0), cl.ws(s2, 1)
    s1_on_2 = cl.ws(s1, 2)  # the first sender's other device, on a third node
    readers = {"r0@node0": cl.ws(r0, 0), "r1@node1": cl.ws(r1, 1), "r2@node2": cl.ws(r2, 2),
               "s1@node2": s1_on_2}

    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        f1 = ex.submit(burst, w1, conv, "one")
        f2 = ex.submit(burst, w2, conv, "two")
        replies = f1.result() + f2.result()
    bad = [f for f in replies if f["type"] != "conversation.chat.ack"]
    assert not bad, bad[:3]
    acks = [f["data"] for f in replies]
    assert sorted(a["seq"] for a in acks) == list(range(1, TOTAL + 1))
    assert len({a["msg_id"] for a in acks}) == TOTAL
    by_seq = {a["seq"]: a for a in acks}
    # Each sender's own acks come in the order it sent.
    for part in (acks[:PER_SENDER], acks[PER_SENDER:]):
        assert [a["seq"] for a in part] == sorted(a["seq"] for a in part)

    for who, w in readers.items():
        got = [w.wait_event("conversation.chat", timeout=60) for _ in range(TOTAL)]
        seqs = [m["seq"] for m in got]
        assert seqs == list(range(1, TOTAL + 1)), (who, seqs[:20])
        assert all(m["msg_id"] == by_seq[m["seq"]]["msg_id"] for m in got), who
    for w, other in ((w1, "two"), (w2, "one")):
        evs = [w.wait_event("conversation.chat", timeout=60) for _ in range(PER_SENDER)]
        seqs = [m["seq"] for m in evs]
        assert seqs == sorted(seqs) and len(set(seqs)) == PER_SENDER
        assert all(m["client_msg_id"].startswith(other + "-") for m in evs)
    # Exactly once: nothing more comes (late Kafka copies or gap fills).
    for w in [w1, w2, *readers.values()]:
        w.expect_no_event("conversation.chat", within=1.0 if w is w1 else 0.1)

    hist = cl.all_history(r2, conv, 1)
    assert [m["seq"] for m in hist] == list(range(1, TOTAL + 1))
    body = assert_status(cl.get(r1, f"/api/v1/conversations/{conv}", 0), 200)
    assert (body["max_seq"], body["unread"]) == (TOTAL, TOTAL)
