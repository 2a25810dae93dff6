"""History paging over HTTP, on one conversation of 205 messages."""

import pytest

from conftest import Harness
from eim_http import assert_error, assert_status

N = 205
FIELDS = {"msg_id", "conversation_id", "seq", "sender", "client_msg_id", "content_type",
          "content", "created_at"}


@pytest.fixture(scope="module")
def hist(server):
    h = Harness(server)
    a, b, outsider = h.users(3, "hist")
    cid = h.group(a, [b], "history")["conversation_id"]
    w = h.ws(a)
    ids = [w.send_request("conversation.chat", {"conversation_id": cid,
                                                "client_msg_id": f"h{i}",
                                                "content": f"message {i}"})
           for i in range(1, N + 1)]
    acks = [f["data"] for f in w.collect(ids, timeout=60)]
    assert all("seq" in a for a in acks), acks[:3]
    h.close_all()
    return h, a, b, outsider, cid, {x["seq"]: x for x in acks}


def page(user, cid, query=""):
    body = assert_status(user.get(f"/api/v1/conversations/{cid}/messages{query}"), 200)
    assert isinstance(body["has_more"], bool)
    seqs = [m["seq"] for m in body["messages"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
    return seqs, body["has_more"], body["messages"]


def test_acked_seqs_are_1_to_n(hist):
    *_, acks = hist
    assert sorted(acks) == list(range(1, N + 1))


def test_message_objects_match_the_acks(hist):
    _, a, b, _, cid, acks = hist
    seqs, _, msgs = page(b, cid, "?after_seq=0&limit=10")
    for m in msgs:
        assert FIELDS <= set(m), m
        ack = acks[m["seq"]]
        assert m["msg_id"] == ack["msg_id"]
        assert m["created_at"] == ack["created_at"]
        assert m["conversation_id"] == cid
        assert m["sender"] == a.id
        assert m["client_msg_id"] == ack["client_msg_id"] == f"h{m['seq']}"
        assert m["content"] == ack["content"] == f"message {m['seq']}"
        assert m["content_type"] == "text"


def test_no_cursor_gives_the_latest_50(hist):
    _, _, b, _, cid, _ = hist
    seqs, more, _ = page(b, cid)
    assert seqs == list(range(N - 49, N + 1))
    assert more is True


def test_limit_is_capped_at_200(hist):
    _, _, b, _, cid, _ = hist
    seqs, more, _ = page(b, cid, "?limit=200")
    assert seqs == list(range(N - 199, N + 1)) and more is True
    r = b.get(f"/api/v1/conversations/{cid}/messages?limit=1000")
    if r.status == 400:
        assert_error(r, 400, "bad_request")
    else:
        seqs, more, _ = page(b, cid, "?limit=1000")
        assert len(seqs) <= 200
        assert seqs == list(range(N - len(seqs) + 1, N + 1)) and more is True
    r = b.get(f"/api/v1/conversations/{cid}/messages?after_seq=0&limit=1000")
    if r.status != 400:
        seqs, more, _ = page(b, cid, "?after_seq=0&limit=1000")
        assert 0 < len(seqs) <= 200 and seqs == list(range(1, len(seqs) + 1)) and more


def test_after_seq_pages_forward(hist):
    _, _, b, _, cid, _ = hist
    assert page(b, cid, "?after_seq=0&limit=10")[:2] == (list(range(1, 11)), True)
    assert page(b, cid, "?after_seq=100&limit=5")[:2] == (list(range(101, 106)), True)
    assert page(b, cid, f"?after_seq={N - 5}&limit=5")[:2] == (list(range(N - 4, N + 1)), False)
    assert page(b, cid, f"?after_seq={N - 3}&limit=10")[:2] == (list(range(N - 2, N + 1)), False)
    assert page(b, cid, f"?after_seq={N}")[:2] == ([], False)
    assert page(b, cid, "?after_seq=0")[:2] == (list(range(1, 51)), True)
    assert page(b, cid, "?after_seq=0&limit=200")[:2] == (list(range(1, 201)), True)
    assert page(b, cid, "?after_seq=5&limit=200")[:2] == (list(range(6, N + 1)), False)


def test_before_seq_pages_backward(hist):
    _, _, b, _, cid, _ = hist
    assert page(b, cid, "?before_seq=11&limit=5")[:2] == (list(range(6, 11)), True)
    assert page(b, cid, "?before_seq=6&limit=5")[:2] == (list(range(1, 6)), False)
    assert page(b, cid, "?before_seq=4&limit=10")[:2] == ([1, 2, 3], False)
    assert page(b, cid, "?before_seq=1")[:2] == ([], False)
    assert page(b, cid, f"?before_seq={N + 1}&limit=3")[:2] == ([N - 2, N - 1, N], True)
    assert page(b, cid, f"?before_seq={N + 1}&limit=200")[:2] == (list(range(6, N + 1)), True)
    assert page(b, cid, "?before_seq=201&limit=200")[:2] == (list(range(1, 201)), False)


def test_walking_every_page_both_ways_sees_each_message_once(hist):
    _, _, b, _, cid, _ = hist
    seen, cursor, more = [], 0, True
    while more:
        seqs, more, _ = page(b, cid, f"?after_seq={cursor}&limit=37")
        seen += seqs
        cursor = seqs[-1] if seqs else cursor
    assert seen == list(range(1, N + 1))
    seen, cursor, more = [], N + 1, True
    while more:
        seqs, more, _ = page(b, cid, f"?before_seq={cursor}&limit=37")
        seen = seqs + seen
        cursor = seqs[0] if seqs else cursor
    assert seen == list(range(1, N + 1))


def test_bad_paging_values_are_400(hist):
    _, _, b, _, cid, _ = hist
    for q in ("?limit=abc", "?after_seq=x", "?before_seq=1.5"):
        assert_error(b.get(f"/api/v1/conversations/{cid}/messages{q}"), 400, "bad_request")


def test_history_is_for_members_only(hist):
    _, _, _, outsider, cid, _ = hist
    assert_error(outsider.get(f"/api/v1/conversations/{cid}/messages"), 403, "forbidden")
    assert_error(outsider.get(f"/api/v1/conversations/{cid}/messages?after_seq=0"),
                 403, "forbidden")
    assert_error(outsider.get("/api/v1/conversations/000000000000000000000000/messages"),
                 404, "not_found")
