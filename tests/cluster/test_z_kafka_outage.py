"""Kafka stopped for 10 s under a chatting cluster (run last: it stops the
shared broker, and always starts it again). Sends are still acked (the store
is the source of truth), devices on the sender's own node still get them
live, no node crashes, live delivery across nodes resumes when Kafka is
back, and every client that syncs has every message exactly once."""

import time

from cluster_helpers import CLUSTER_TIMEOUT as T
from cluster_helpers import sync_all, wait_until
from cluster_services import service

OUTAGE = 10
# Kafka restarts with its data in 3-25 s; then the consumers rejoin.
RESUME_WITHIN = 120


def chat(w, conv, cmid, content):
    return w.ack("conversation.chat", {"conversation_id": conv, "client_msg_id": cmid,
                                       "content": content})


def health(cl, k):
    return cl.http(k).get("/healthz").status


def wait_seq(w, seq, timeout=T):
    """Waits until w has received the conversation.chat of seq, leaving every
    event buffered in arrival order (wait_event would take it out of order)."""
    deadline = time.monotonic() + timeout
    while not any(e["type"] == "conversation.chat" and e["data"]["seq"] == seq
                  for e in w.events):
        left = deadline - time.monotonic()
        if left <= 0 or not w._pump(left):
            raise AssertionError(f"seq {seq} not received within {timeout}s")


def test_kafka_outage_chat_still_acked_and_delivery_resumes(cl, cluster):
    a, b, c = cl.users(3, "xkout")
    conv = cl.group(a, [b, c], "outage", k=0)["conversation_id"]
    # node0: a0, b0; node1: b1, a1; node2: c2.
    a0, b0 = cl.ws(a, 0), cl.ws(b, 0)
    b1, a1 = cl.ws(b, 1), cl.ws(a, 1)
    c2 = cl.ws(c, 2)
    conns = {"a0": a0, "b0": b0, "b1": b1, "a1": a1, "c2": c2}

    acks = [chat(a0, conv, "warm", "before the outage")]
    for name in ("b0", "b1", "a1", "c2"):
        wait_seq(conns[name], 1)

    outage_acks = []
    try:
        down_s = service("down", "kafka")
        wait_until("node0 /healthz 503 without Kafka", lambda: health(cl, 0) == 503, timeout=T)
        end = time.monotonic() + OUTAGE
        i = 0
        while time.monotonic() < end:
            sender, local_peer = (a0, b0) if i % 2 == 0 else (b1, a1)
            ack = chat(sender, conv, f"out{i}", f"during the outage {i}")
            outage_acks.append(ack)
            # The sender's node delivers to its own connections without Kafka.
            wait_seq(local_peer, ack["seq"])
            i += 1
            time.sleep(0.2)  # paces the traffic over the outage; nothing waits on it
        assert all(x.alive() for x in cluster), [x.name for x in cluster if not x.alive()]
    finally:
        up_s = service("up", "kafka")
    acks += outage_acks
    assert [x["seq"] for x in acks] == list(range(1, len(acks) + 1))

    # Live delivery across nodes resumes: a message sent now reaches every
    # remote device, after whatever the outage held back.
    t0 = time.monotonic()
    after = chat(a0, conv, "after", "Kafka is back")
    acks.append(after)
    for name in ("c2", "b1", "a1", "b0"):
        wait_seq(conns[name], after["seq"],
                 timeout=max(RESUME_WITHIN - (time.monotonic() - t0), 1))
    resumed_s = time.monotonic() - t0
    # Whatever each device got live came in seq order, each seq once.
    live = {name: [m["seq"] for m in w.events_of("conversation.chat")]
            for name, w in conns.items()}
    for name, seqs in live.items():
        assert seqs == sorted(set(seqs)), f"{name} got seqs out of order or twice: {seqs}"

    wait_until("every node healthy again", lambda: all(health(cl, k) == 200 for k in range(3)),
               timeout=RESUME_WITHIN)
    # The presence views agree again (heartbeats lapsed during the outage).
    wait_until("node0 sees b and c online", lambda: {b.id, c.id} <= set(
        a0.ack("user.online")["users"]), timeout=T)

    want = [(x["seq"], x["msg_id"]) for x in acks]
    for user, k in ((c, 2), (b, 1), (a, 0)):
        w = cl.ws(user, k)
        got = sync_all(w, conv, limit=50)
        assert [(m["seq"], m["msg_id"]) for m in got] == want, user
    print(f"kafka down in {down_s:.1f}s, up in {up_s:.1f}s, {len(outage_acks)} messages "
          f"acked during the outage, delivery resumed {resumed_s:.1f}s after up; seqs "
          f"received live per device: { {n: len(v) for n, v in live.items()} } of {len(acks)}")
