"""Two server processes on one database (MariaDB, and separately FerretDB),
with clients on both pipelining into the same conversation: the store never
hands out a seq twice or skips one, and retries are found across servers."""

import collections
import concurrent.futures

PER_CLIENT = 200
CLIENTS_PER_SERVER = 2


def assert_gapless(seqs, total, what="acks"):
    """seqs must be exactly 1..total; the message names what is wrong."""
    counts = collections.Counter(seqs)
    missing = sorted(set(range(1, total + 1)) - set(counts))
    doubled = sorted(s for s, n in counts.items() if n > 1)
    extra = sorted(s for s in counts if not 1 <= s <= total)
    assert not (missing or doubled or extra), (
        f"{what}: {len(seqs)} seqs; missing {missing[:20]}, doubled {doubled[:20]}, "
        f"out of range {extra[:20]}")


def test_two_servers_appending_into_one_conversation_gapless(ph):
    users = ph.users(2 * CLIENTS_PER_SERVER, "shared")
    conv = ph.group(users[0], users[1:], "shared", k=0)["conversation_id"]
    # Clients 0, 2 on server 0; 1, 3 on server 1.
    conns = [ph.ws(u, i % 2) for i, u in enumerate(users)]

    def burst(i):
        w = conns[i]
        ids = [w.send_request("conversation.chat", {
            "conversation_id": conv, "client_msg_id": f"c{i}-{j}", "content": f"{i}/{j}"})
            for j in range(PER_CLIENT)]
        return w.collect(ids, timeout=180)

    with concurrent.futures.ThreadPoolExecutor(len(conns)) as ex:
        replies = [f for r in ex.map(burst, range(len(conns))) for f in r]
    bad = [f for f in replies if f["type"] != "conversation.chat.ack"]
    assert not bad, bad[:3]
    acks = [f["data"] for f in replies]
    total = len(conns) * PER_CLIENT
    assert_gapless([a["seq"] for a in acks], total)
    assert len({a["msg_id"] for a in acks}) == total

    # Both servers read the same, complete history.
    by_seq = {a["seq"]: a for a in acks}
    for k in (0, 1):
        hist = ph.all_history(users[-1], conv, k)
        assert_gapless([m["seq"] for m in hist], total, f"history via server {k}")
        assert all(m["msg_id"] == by_seq[m["seq"]]["msg_id"] and
                   m["client_msg_id"] == by_seq[m["seq"]]["client_msg_id"] for m in hist), k

    # Every client retries a tenth of its messages through the other server:
    # the first message comes back, nothing new is stored.
    first = {(i, a["client_msg_id"]): a for i in range(len(conns))
             for a in acks if a["client_msg_id"].startswith(f"c{i}-")}
    for i, u in enumerate(users):
        w = ph.ws(u, (i + 1) % 2)
        ids = {w.send_request("conversation.chat", {
            "conversation_id": conv, "client_msg_id": f"c{i}-{j}", "content": f"{i}/{j}"}): j
            for j in range(0, PER_CLIENT, 10)}
        for rid, j in ids.items():
            again = w.reply(rid, timeout=60)
            assert again["type"] == "conversation.chat.ack", again
            want = first[(i, f"c{i}-{j}")]
            assert (again["data"]["msg_id"], again["data"]["seq"]) == (
                want["msg_id"], want["seq"])
    assert ph.history(users[0], conv, 1, "?limit=1")["messages"][0]["seq"] == total
