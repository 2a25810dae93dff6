"""With the queue-kafka file disabled, one node works alone: no code path
needs Kafka (the file even names a broker that does not exist)."""

import socket

import pytest

from cluster_helpers import STORES, assert_status, make_cluster, module_tag


@pytest.mark.parametrize("store", STORES)
def test_disabled_queue_file_single_node_chats(store, start_nodes, tmp_path, request):
    # A bound socket that does not listen: a port nothing answers on.
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    try:
        (node,) = make_cluster(tmp_path, store, module_tag(request, store), n=1, queue=False)
        node.extra["30-queue-kafka.conf"] = {
            "plugin": "queue-kafka", "enabled": "false",
            "brokers": f"127.0.0.1:{hole.getsockname()[1]}", "topic_prefix": "unused"}
        h = start_nodes([node])
        a, b = h.users(2, "solo")
        conv = h.group(a, [b], "solo")["conversation_id"]
        wa, wb = h.ws(a, 0), h.ws(b, 0)
        wa.wait_event("presence", lambda d: d == {"user_id": b.id, "online": True})
        ack = wa.ack("conversation.chat", {"conversation_id": conv, "client_msg_id": "1",
                                           "content": "no kafka here"})
        ev = wb.wait_event("conversation.chat")
        assert (ev["seq"], ev["msg_id"], ev["content"]) == (1, ack["msg_id"], "no kafka here")
        wa.expect_no_event("conversation.chat")
        assert wa.ack("push", {"to_user": b.id, "payload": 1})["delivered"] == 1
        assert wb.wait_event("push") == {"from": a.id, "payload": 1}
        health = assert_status(h.http(0).get("/healthz"), 200)
        assert health.get("status") == "ok" and "queue" not in health, health
        log = node.log_text()
        assert "cluster mode" not in log and "queue-kafka" not in log.replace(
            "30-queue-kafka.conf", ""), log[-2000:]
    finally:
        hole.close()
