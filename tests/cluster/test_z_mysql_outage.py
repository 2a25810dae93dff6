"""MariaDB stopped under a running server (run last: it stops the shared
database, and always starts it again). Requests that need the store get
`unavailable` (WebSocket) or 503 (HTTP, /healthz), the server keeps running,
nothing acked is lost, and service comes back by itself."""

import threading

from cluster_helpers import CLUSTER_TIMEOUT as T
from cluster_helpers import assert_status, make_cluster, module_tag, wait_until
from cluster_services import service
from eim_http import assert_error
from eim_ws import assert_error_frame

BACK_WITHIN = 60


def chat_frame(conv, cmid):
    return {"conversation_id": conv, "client_msg_id": cmid, "content": f"msg {cmid}"}


def test_mariadb_outage_unavailable_then_recovers(start_nodes, tmp_path, request):
    (node,) = make_cluster(tmp_path, "mysql", module_tag(request), n=1, queue=False)
    node.store["connect_timeout"] = "2"
    h = start_nodes([node])
    a, b = h.users(2, "dbout")
    conv = h.group(a, [b], "outage")["conversation_id"]
    wa, wb, wa2 = h.ws(a, 0), h.ws(b, 0), h.ws(a, 0)
    acked = {}
    for f in wa.collect([wa.send_request("conversation.chat", chat_frame(conv, f"pre{i}"))
                         for i in range(20)]):
        assert f["type"] == "conversation.chat.ack", f
        acked[f["data"]["client_msg_id"]] = f["data"]

    # A second connection keeps sending one by one while the database stops.
    stop = threading.Event()
    racing = {"acked": {}, "errors": [], "sent": 0}

    def keep_sending():
        while not stop.is_set():
            cmid = f"race{racing['sent']}"
            racing["sent"] += 1
            f = wa2.request("conversation.chat", chat_frame(conv, cmid), timeout=30)
            if f["type"] == "conversation.chat.ack":
                racing["acked"][cmid] = f["data"]
            else:
                racing["errors"].append((cmid, f))
            # Under the connection's rate limit (100/s) when refusals come fast.
            stop.wait(0.02)

    sender = threading.Thread(target=keep_sending, daemon=True)
    failed = []
    try:
        sender.start()
        service("down", "mariadb")
        frame = wa.request("conversation.chat", chat_frame(conv, "during"))
        assert_error_frame(frame, "unavailable")
        failed.append("during")
        assert_error(h.get(a, "/api/v1/conversations", 0), 503, "unavailable")
        assert_error(h.get(b, f"/api/v1/conversations/{conv}/messages", 0), 503, "unavailable")
        r = h.http(0).get("/healthz")
        assert r.status == 503 and r.json().get("status") == "unavailable", r
        stop.set()
        sender.join(60)
        assert not sender.is_alive(), "a request got no reply during the outage"
        assert node.alive(), node.log_tail()
        assert racing["errors"], "nothing failed while the database was down"
        for cmid, f in racing["errors"]:
            assert_error_frame(f, "unavailable")
            failed.append(cmid)
        # The connections stay open through it.
        wb.ping()
    finally:
        stop.set()
        service("up", "mariadb")
    acked.update(racing["acked"])

    # Back by itself: retrying the refused message succeeds within bounds.
    def retried():
        f = wa.request("conversation.chat", chat_frame(conv, "during"))
        return f["data"] if f["type"] == "conversation.chat.ack" else None

    acked["during"] = wait_until("a chat acked after MariaDB is back", retried,
                                 timeout=BACK_WITHIN, interval=0.5)
    assert_status(h.get(a, "/api/v1/conversations", 0), 200)
    assert h.http(0).get("/healthz").status == 200
    for cmid in failed[1:]:
        acked[cmid] = wa.ack("conversation.chat", chat_frame(conv, cmid))

    # Nothing acked is lost, nothing is doubled, the seqs have no gap.
    hist = h.all_history(b, conv, 0)
    seqs = [m["seq"] for m in hist]
    assert seqs == list(range(1, len(hist) + 1)), seqs
    by_cmid = {}
    for m in hist:
        assert m["client_msg_id"] not in by_cmid, f"stored twice: {m}"
        by_cmid[m["client_msg_id"]] = m
    lost = [c for c, x in acked.items() if by_cmid.get(c, {}).get("msg_id") != x["msg_id"]]
    assert not lost, lost
    ev = wb.wait_event("conversation.chat", lambda d: d["client_msg_id"] == "during", timeout=T)
    assert ev["msg_id"] == acked["during"]["msg_id"]
    print(f"{len(acked)} acked, {len(failed)} refused with unavailable and retried, "
          f"{racing['sent']} sent while stopping")
