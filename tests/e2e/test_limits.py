"""Configured limits, each on a server of its own started with small values:
body and header size, header timeout, frame and content size, rate limit,
WebSocket keep-alive and idle timeout."""

import base64
import json
import os
import socket
import struct
import time

from websockets.exceptions import ConnectionClosed

from eim_http import assert_error, assert_status
from eim_ws import QUIET


def raw_connect(srv, timeout=10):
    s = socket.create_connection((srv.host, srv.port), timeout=timeout)
    return s


def read_until_closed(s, timeout):
    """Reads everything until the server closes the socket; returns the
    bytes. Fails if it is still open after timeout seconds."""
    s.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            raise AssertionError(f"still open after {timeout}s; got {data[:200]!r}")
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def test_body_over_max_body_bytes_is_413(start_server):
    srv, h = start_server(conf={"max_body_bytes": "1024"})
    big = json.dumps({"username": "abcdef", "password": "p" * 2000})
    r = h.http.request("POST", "/api/v1/users", raw=big)
    assert_error(r, 413, "payload_too_large")
    # Under the limit all is well on the same server.
    h.user("small")


def test_headers_over_max_header_bytes_are_refused(start_server):
    srv, h = start_server(conf={"max_header_bytes": "4096"})
    r = h.http.get("/healthz", headers={"X-Filler": "f" * 5000})
    assert r.status == 431, r
    assert isinstance(r.json().get("error"), dict), r
    assert_status(h.http.get("/healthz", headers={"X-Filler": "f" * 1000}), 200)


def test_slow_headers_are_cut_off_after_header_timeout(start_server):
    srv, h = start_server(conf={"header_timeout_ms": "500"})
    s = raw_connect(srv)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: e2e\r\n")  # never finished
        start = time.monotonic()
        data = read_until_closed(s, timeout=5)
        assert time.monotonic() - start >= 0.3
        assert data == b"" or data.startswith(b"HTTP/1.1 408"), data[:200]
    finally:
        s.close()
    assert_status(h.http.get("/healthz"), 200)


def test_frame_over_max_frame_bytes_closes_1009(start_server):
    srv, h = start_server(conf={"max_frame_bytes": "4096"})
    u = h.user("frame")
    conv = h.group(u, [])["conversation_id"]
    w = h.ws(u)
    small = "s" * 3000
    w.ack("conversation.chat", {"conversation_id": conv, "client_msg_id": "1",
                                "content": small})
    try:
        w.send_raw(json.dumps({"type": "ping", "id": "p", "data": {"pad": "x" * 5000}}))
    except (ConnectionClosed, OSError):
        pass
    assert w.wait_close() == 1009


def test_content_over_max_content_bytes(start_server):
    srv, h = start_server(conf={"max_content_bytes": "100"})
    u = h.user("content")
    conv = h.group(u, [])["conversation_id"]
    w = h.ws(u)
    w.ack("conversation.chat", {"conversation_id": conv, "client_msg_id": "1",
                                "content": "c" * 100})
    w.expect_error("conversation.chat", {"conversation_id": conv, "client_msg_id": "2",
                                         "content": "c" * 101}, "payload_too_large")
    assert len(h.history(u, conv)["messages"]) == 1


def test_rate_limit_refuses_then_closes_abusers(start_server):
    burst = 5
    srv, h = start_server(conf={"rate_messages_per_sec": "1", "rate_burst": str(burst)})
    a, b = h.users(2, "rate")
    conv = h.group(a, [b])["conversation_id"]
    w = h.ws(a, barrier=False)
    # Over the burst, each request gets its own rate_limited error while the
    # connection stays open (up to rate_burst refusals in a row).
    n = 2 * burst - 1
    ids = [w.send_request("conversation.chat", {"conversation_id": conv,
                                                "client_msg_id": f"r{i}", "content": "spam"})
           for i in range(n)]
    replies = w.collect(ids)
    acks = [f["data"] for f in replies if f["type"] == "conversation.chat.ack"]
    errors = [f for f in replies if f["type"] == "error"]
    assert all(f["data"]["error"]["code"] == "rate_limited" for f in errors), errors[:3]
    # The burst, plus at most a token or two refilled meanwhile.
    assert burst <= len(acks) <= burst + 2 and len(errors) >= 2, (len(acks), len(errors))
    assert sorted(x["seq"] for x in acks) == list(range(1, len(acks) + 1))
    # Refused messages were not stored.
    assert len(h.history(b, conv)["messages"]) == len(acks)
    # A client that keeps going regardless is cut off with 1008.
    for i in range(2 * burst):
        try:
            w.send_request("conversation.chat", {"conversation_id": conv,
                                                 "client_msg_id": f"more{i}", "content": "x"})
        except ConnectionClosed:
            break
    assert w.wait_close() == 1008
    # Other users are not affected.
    wb = h.ws(b)
    assert wb.ack("conversation.chat", {"conversation_id": conv, "client_msg_id": "b",
                                        "content": "calm"})["seq"] == len(acks) + 1


def test_failed_logins_are_limited_per_username(start_server):
    srv, h = start_server(conf={"login_failures_per_user_per_min": "3"})
    victim, other = h.users(2, "brute")
    for _ in range(3):
        assert_error(h.login(victim.username, "wrong-password"), 401, "unauthorized")
    assert_error(h.login(victim.username, "wrong-password"), 429, "rate_limited")
    # Locked for now even with the right password, so guessing on is useless;
    # other users and tokens already issued are unaffected.
    assert_error(h.login(victim.username, victim.password), 429, "rate_limited")
    assert_status(h.login(other.username, other.password), 200)
    assert_status(victim.get("/api/v1/users/me"), 200)


def test_failed_logins_are_limited_per_address(start_server):
    srv, h = start_server(conf={"login_failures_per_ip_per_min": "3"})
    u = h.user("spray")
    for i in range(3):
        assert_error(h.login(f"nobody{i}{u.username}"[:32], "wrong-password"), 401,
                     "unauthorized")
    assert_error(h.login(u.username, u.password), 429, "rate_limited")
    assert_status(u.get("/api/v1/users/me"), 200)


def ws_handshake(srv, token):
    s = raw_connect(srv)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /ws HTTP/1.1\r\nHost: {srv.host}:{srv.port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def read_frame(s):
    """One server frame (never masked): returns (opcode, payload)."""
    def exact(n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf
    b0, b1 = exact(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", exact(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", exact(8))[0]
    return b0 & 0x0F, exact(n)


def test_idle_websocket_is_pinged_then_closed(start_server):
    srv, h = start_server(conf={"ws_ping_interval_ms": "200", "ws_idle_timeout_ms": "1000"})
    u = h.user("idle")
    s = ws_handshake(srv, u.token)
    s.settimeout(10)
    start = time.monotonic()
    pings, close = 0, None
    try:
        # A client that never answers: pings come, then the close.
        while close is None:
            op, payload = read_frame(s)
            if op == 0x9:
                pings += 1
            elif op == 0x8:
                close = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
    except EOFError:
        pass
    finally:
        s.close()
    elapsed = time.monotonic() - start
    assert pings >= 1
    assert close == 1000, close
    assert 0.8 <= elapsed <= 5, elapsed


def test_websocket_that_answers_pings_stays_open(start_server):
    srv, h = start_server(conf={"ws_ping_interval_ms": "200", "ws_idle_timeout_ms": "1000"})
    u = h.user("alive")
    w = h.ws(u)
    # websockets answers every ping with a pong by itself; over twice the
    # idle limit the connection must stay up.
    w.expect_no_event("presence", within=max(2.5, QUIET))
    assert w.closed is None
    assert w.ping() == {}
