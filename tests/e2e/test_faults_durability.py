"""The server stopped under a steady chat load, then restarted on the same
data and store: killed with SIGKILL (nothing acked may be lost), and shut
down with SIGTERM (nothing acked lost, clients closed with 1001, exit 0).
Runs on whichever store $EIM_E2E_STORE selects, like the whole suite.

The load: several clients, each pipelining chat messages (a window of
requests in flight) into group and single conversations and counting acks.
An ack means durable, so after the restart every acked message must be in
history with the same msg_id and seq, seqs must have no gaps, and a client
retrying the messages it never got an ack for must end with each exactly
once."""

import signal
import threading

from websockets.exceptions import ConnectionClosed

from eim_http import assert_status

WINDOW = 8


class Sender(threading.Thread):
    """One client chatting as fast as its acks come back, until its
    connection goes. Owns its Ws (one thread per connection)."""

    def __init__(self, w, convs, tag, progress):
        super().__init__(daemon=True)
        self.w = w
        self.convs = convs
        self.tag = tag
        self.progress = progress  # a Condition shared by all senders
        self.sent = {}      # request id -> (conv, client_msg_id, content)
        self.acked = {}     # client_msg_id -> ack data
        self.unavailable = 0
        self.other_errors = []
        self.close_code = None

    def run(self):
        inflight = []
        n = 0
        try:
            while True:
                # After an unavailable a client backs off: it only collects
                # the replies still due, until the server closes.
                while len(inflight) < WINDOW and not self.unavailable:
                    conv = self.convs[n % len(self.convs)]
                    cmid = f"{self.tag}-{n}"
                    content = f"load {self.tag} {n}"
                    rid = self.w.send_request("conversation.chat", {
                        "conversation_id": conv, "client_msg_id": cmid, "content": content})
                    self.sent[rid] = (conv, cmid, content)
                    inflight.append(rid)
                    n += 1
                if not inflight:
                    self.w.wait_close(timeout=60)
                    break
                frame = self.w.reply(inflight.pop(0), timeout=60)
                if frame["type"] == "conversation.chat.ack":
                    with self.progress:
                        self.acked[frame["data"]["client_msg_id"]] = frame["data"]
                        self.progress.notify_all()
                elif frame["data"]["error"]["code"] == "unavailable":
                    self.unavailable += 1  # shutting down: nothing stored, retry later
                else:
                    self.other_errors.append(frame)
        except ConnectionClosed as e:
            # A send that found the connection closed: the close frame, if
            # any, is in the exception.
            self.w.closed = self.w.closed or e
        except (AssertionError, OSError):
            pass
        if self.w.closed is not None and self.w.closed.rcvd is not None:
            self.close_code = self.w.closed.rcvd.code
        with self.progress:
            self.progress.notify_all()


def start_load(h, users):
    """Four senders on one group of all users and on single chats between
    pairs; returns (senders, conversations, condition)."""
    a, b, c, d = users
    group = h.group(a, [b, c, d], "load")["conversation_id"]
    ab, cd = h.single(a, b)["conversation_id"], h.single(c, d)["conversation_id"]
    progress = threading.Condition()
    plan = [(a, [group, ab]), (b, [ab, group]), (c, [group, cd]), (d, [cd])]
    senders = [Sender(h.ws(u), convs, f"s{i}", progress) for i, (u, convs) in enumerate(plan)]
    for s in senders:
        s.start()
    return senders, [group, ab, cd], progress


def wait_acks(senders, progress, n):
    """Blocks until the senders together have n acks (or all stopped)."""
    def total():
        return sum(len(s.acked) for s in senders)
    with progress:
        ok = progress.wait_for(lambda: total() >= n or not any(s.is_alive() for s in senders),
                               timeout=120)
    assert ok and total() >= n, f"only {total()} acks under load"


def full_history(h, user, conv):
    """Every message of conv, paging forward 200 at a time."""
    out, after = [], 0
    while True:
        page = h.history(user, conv, f"?after_seq={after}&limit=200")
        out += page["messages"]
        if not page["has_more"]:
            return out
        after = page["messages"][-1]["seq"]


def check_after_restart(h, users, senders, convs):
    """Every acked message is stored as acked, seqs have no gaps; returns
    (acked, stored) counts."""
    a = users[0]
    # a is in the group and in ab; c sees cd.
    stored = {}
    for conv, reader in zip(convs, [a, a, users[2]]):
        msgs = full_history(h, reader, conv)
        assert [m["seq"] for m in msgs] == list(range(1, len(msgs) + 1)), conv
        for m in msgs:
            key = (m["sender"], m["client_msg_id"])
            assert key not in stored, f"stored twice: {key}"
            stored[key] = m
    acked = 0
    for s, u in zip(senders, users):
        for cmid, ack in s.acked.items():
            m = stored.get((u.id, cmid))
            assert m is not None, f"acked but lost after restart: {cmid} {ack}"
            assert (m["msg_id"], m["seq"], m["content"]) == (ack["msg_id"], ack["seq"],
                                                             ack["content"]), (m, ack)
            acked += 1
    return acked, len(stored)


def retry_unacked(h, users, senders):
    """Resends, as a client would, every message that got no ack; each is
    then acked, and exactly once in history (checked by the caller)."""
    retried = 0
    for s, u in zip(senders, users):
        w = h.ws(u)
        for conv, cmid, content in s.sent.values():
            if cmid in s.acked:
                continue
            ack = w.ack("conversation.chat", {"conversation_id": conv, "client_msg_id": cmid,
                                              "content": content})
            s.acked[cmid] = ack
            retried += 1
    return retried


def load_server(start_server):
    # Senders pipeline as fast as the store acks: lift the per-connection
    # rate limit, which is not what this test is about.
    return start_server(conf={"rate_messages_per_sec": "100000", "rate_burst": "100000"})


def test_sigkill_under_load_loses_no_acked_message(start_server):
    srv, h = load_server(start_server)
    users = h.users(4, "kill")
    senders, convs, progress = start_load(h, users)
    wait_acks(senders, progress, 300)
    srv.kill()
    for s in senders:
        s.join(30)
    assert not any(s.is_alive() for s in senders)
    assert not [e for s in senders for e in s.other_errors], \
        [e for s in senders for e in s.other_errors][:3]
    in_flight = sum(len(s.sent) for s in senders) - sum(len(s.acked) for s in senders)

    srv.start()
    acked, stored = check_after_restart(h, users, senders, convs)
    retried = retry_unacked(h, users, senders)
    acked2, stored2 = check_after_restart(h, users, senders, convs)
    assert stored2 == acked2 == sum(len(s.sent) for s in senders)
    print(f"\nSIGKILL under load ({srv.store['plugin']}): {acked} acked before the kill, all "
          f"in history; {in_flight} in flight, of which {stored - acked} had been stored "
          f"without an ack; after {retried} retries {stored2} messages, each once")


def test_sigterm_under_load_loses_nothing_and_closes_1001(start_server):
    srv, h = load_server(start_server)
    users = h.users(4, "term")
    senders, convs, progress = start_load(h, users)
    # A bystander that only listens gets the same close.
    listener = h.ws(users[1])
    wait_acks(senders, progress, 300)
    srv.proc.send_signal(signal.SIGTERM)
    code = listener.wait_close(timeout=30)
    for s in senders:
        s.join(30)
    rc = srv.wait(30)
    assert rc == 0, srv.log_tail()
    assert not srv.sanitizer_reports(), srv.sanitizer_reports()
    assert code == 1001
    assert [s.close_code for s in senders] == [1001] * len(senders)
    assert not [e for s in senders for e in s.other_errors], \
        [e for s in senders for e in s.other_errors][:3]
    in_flight = sum(len(s.sent) for s in senders) - sum(len(s.acked) for s in senders)
    refused = sum(s.unavailable for s in senders)

    srv.start()
    acked, stored = check_after_restart(h, users, senders, convs)
    retried = retry_unacked(h, users, senders)
    acked2, stored2 = check_after_restart(h, users, senders, convs)
    assert stored2 == acked2 == sum(len(s.sent) for s in senders)
    got = assert_status(users[0].get(f"/api/v1/conversations/{convs[0]}"), 200)
    assert got["max_seq"] == len(full_history(h, users[0], convs[0]))
    print(f"\nSIGTERM under load ({srv.store['plugin']}): {acked} acked before the close, all "
          f"in history; {refused} refused as unavailable; {in_flight} unanswered, of which "
          f"{stored - acked} stored without an ack; after {retried} retries {stored2} "
          f"messages, each once")
