"""A node killed with SIGKILL: the others show its users offline once its
heartbeat lapses, keep chatting, and the node restarted on its data dir
serves again while its clients catch up by sync."""

import signal
import time

from cluster_helpers import CLUSTER_TIMEOUT as T
from cluster_helpers import sync_all

# The cluster drops a node after 10 s without a heartbeat (sent every 3 s).
OFFLINE_WITHIN = 15


def online_event(user_id, online):
    return lambda d: d.get("user_id") == user_id and d.get("online") is online


def chat(w, conv, cmid, content):
    return w.ack("conversation.chat", {"conversation_id": conv, "client_msg_id": cmid,
                                       "content": content})


def test_killed_node_users_go_offline_and_restarted_node_catches_up(cl, cluster):
    a, b, c = cl.users(3, "xkill")
    conv = cl.group(a, [b, c], "failover", k=0)["conversation_id"]
    a0, b1, c2 = cl.ws(a, 0), cl.ws(b, 1), cl.ws(c, 2)
    for w in (a0, b1):
        w.wait_event("presence", online_event(c.id, True), timeout=T)
    acks = [chat(a0, conv, "before", "before the crash")]
    assert c2.wait_event("conversation.chat", timeout=T)["seq"] == 1

    victim = cluster[2]
    killed_at = time.monotonic()
    victim.kill()
    assert victim.proc.returncode == -signal.SIGKILL
    for who, w in (("a on node0", a0), ("b on node1", b1)):
        left = OFFLINE_WITHIN - (time.monotonic() - killed_at)
        ev = w.wait_event("presence", online_event(c.id, False), timeout=max(left, 0.1))
        assert ev == {"user_id": c.id, "online": False}, who
    offline_after = time.monotonic() - killed_at
    assert c.id not in a0.ack("user.online")["users"]

    # The survivors keep chatting meanwhile.
    for i in range(5):
        acks.append(chat(b1 if i % 2 else a0, conv, f"during{i}", f"while node2 is down {i}"))
    assert [x["seq"] for x in acks] == list(range(1, 7))

    victim.start()
    c2 = cl.ws(c, 2)
    for w in (a0, b1):
        w.wait_event("presence", online_event(c.id, True), timeout=T)
    got = sync_all(c2, conv)
    assert [(m["seq"], m["msg_id"]) for m in got] == [(x["seq"], x["msg_id"]) for x in acks]

    # Live traffic both ways through the restarted node.
    after = chat(a0, conv, "after", "welcome back")
    ev = c2.wait_event("conversation.chat", lambda d: d["seq"] == 7, timeout=T)
    assert ev["msg_id"] == after["msg_id"]
    mine = chat(c2, conv, "back", "I am back")
    assert mine["seq"] == 8
    for w in (a0, b1):
        assert w.wait_event("conversation.chat", lambda d: d["seq"] == 8, timeout=T)[
            "msg_id"] == mine["msg_id"]
    print(f"offline seen {offline_after:.1f}s after SIGKILL")
