"""A WebSocket client wrapper over websockets' synchronous client.

Every frame the server sends is either a reply (type "error" or "<type>.ack",
matched to its request by "id") or an event (anything else). The wrapper
keeps both in buffers, so that a test can wait for a reply while events pile
up, and then wait for an event that arrived during the request.
"""

import itertools
import json
import os
import time

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

TIMEOUT = float(os.environ.get("EIM_E2E_TIMEOUT", "10"))
# How long a negative check listens for something that must not arrive.
QUIET = float(os.environ.get("EIM_E2E_QUIET", "0.4"))


def open_ws(host, port, token=None, via="header", **kw):
    """Opens ws://host:port/ws with the token in the Authorization header or
    in ?token=. Raises websockets' InvalidStatus when the upgrade is refused."""
    url = f"ws://{host}:{port}/ws"
    headers = {}
    if token is not None and via == "header":
        headers["Authorization"] = f"Bearer {token}"
    elif token is not None:
        url += f"?token={token}"
    # legacy=True: a connection object that the caller closes, not a
    # context manager; compression off so frame sizes are what was sent;
    # max_queue=None: frames are always read off the socket, so a close frame
    # never waits behind events a test did not consume.
    return ws_connect(url, additional_headers=headers, compression=None, proxy=None,
                      open_timeout=TIMEOUT, close_timeout=3, max_size=8 * 2**20,
                      max_queue=None, legacy=True, **kw)


def _key(id_):
    # ids may be strings or numbers, and "1" is not 1: compare them as JSON.
    return json.dumps(id_, sort_keys=True)


class Ws:
    def __init__(self, conn, user=None):
        self.conn = conn
        self.user = user
        self.events = []
        self.replies = {}
        self.anonymous = []  # replies without an id
        self.closed = None
        self._ids = itertools.count(1)

    # ------------------------------------------------------------ sending

    def next_id(self):
        return f"r{next(self._ids)}"

    def send(self, frame):
        self.conn.send(json.dumps(frame))

    def send_raw(self, text):
        self.conn.send(text)

    def send_request(self, type_, data=None, id_=None):
        """Sends a request without waiting; returns its id."""
        id_ = self.next_id() if id_ is None else id_
        self.send({"type": type_, "id": id_, "data": {} if data is None else data})
        return id_

    # ---------------------------------------------------------- receiving

    def _pump(self, timeout):
        """Receives one frame into the buffers. Returns False on timeout.
        Raises AssertionError when the connection closed, with its code."""
        try:
            text = self.conn.recv(timeout=timeout)
        except TimeoutError:
            return False
        except ConnectionClosed as e:
            self.closed = e
            raise AssertionError(f"connection closed: {_close_desc(e)}") from None
        assert isinstance(text, str), f"server sent a binary frame: {text[:100]!r}"
        try:
            frame = json.loads(text)
        except ValueError:
            raise AssertionError(f"server sent a non-JSON frame: {text[:300]!r}") from None
        assert isinstance(frame, dict) and isinstance(frame.get("type"), str), frame
        t = frame["type"]
        if t == "error" or t.endswith(".ack"):
            if "id" in frame and frame["id"] is not None:
                self.replies.setdefault(_key(frame["id"]), []).append(frame)
            else:
                self.anonymous.append(frame)
        else:
            self.events.append(frame)
        return True

    def reply(self, id_, timeout=TIMEOUT):
        """Waits for the reply to request id_ and returns the whole frame."""
        k = _key(id_)
        deadline = time.monotonic() + timeout
        while not self.replies.get(k):
            left = deadline - time.monotonic()
            if left <= 0 or not self._pump(left):
                extra = (f"; replies without id meanwhile: {self.anonymous[:3]}"
                         if self.anonymous else "")
                raise AssertionError(f"no reply to request {id_!r} within {timeout}s{extra}")
        return self.replies[k].pop(0)

    def anonymous_reply(self, timeout=TIMEOUT):
        """Waits for a reply that carries no id (to a frame without one)."""
        deadline = time.monotonic() + timeout
        while not self.anonymous:
            left = deadline - time.monotonic()
            if left <= 0 or not self._pump(left):
                raise AssertionError(f"no reply without id within {timeout}s")
        return self.anonymous.pop(0)

    def request(self, type_, data=None, id_=None, timeout=TIMEOUT):
        return self.reply(self.send_request(type_, data, id_), timeout)

    def ack(self, type_, data=None, timeout=TIMEOUT):
        """Sends a request that must succeed; returns the ack's data."""
        frame = self.request(type_, data, timeout=timeout)
        assert frame["type"] == type_ + ".ack", f"{type_} {data!r:.200} -> {frame}"
        assert isinstance(frame.get("data"), dict), frame
        return frame["data"]

    def expect_error(self, type_, data, code, timeout=TIMEOUT):
        """Sends a request that must fail with `code`; returns the error frame."""
        frame = self.request(type_, data, timeout=timeout)
        assert_error_frame(frame, code)
        return frame

    def collect(self, ids, timeout=TIMEOUT):
        """Waits for the replies to all ids (sent pipelined); returns them in
        the order of ids."""
        deadline = time.monotonic() + timeout
        return [self.reply(i, max(0.0, deadline - time.monotonic())) for i in ids]

    def wait_event(self, type_, pred=None, timeout=TIMEOUT):
        """Returns the data of the first buffered or arriving event of type_
        for which pred(data) holds, removing it from the buffer."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for i in range(seen, len(self.events)):
                ev = self.events[i]
                if ev["type"] == type_ and (pred is None or pred(ev.get("data"))):
                    del self.events[i]
                    return ev.get("data")
            seen = len(self.events)
            left = deadline - time.monotonic()
            if left <= 0 or not self._pump(left):
                raise AssertionError(
                    f"no {type_} event within {timeout}s; buffered: {self.events[-5:]}")

    def events_of(self, type_, pred=None):
        """Removes and returns the buffered events of type_ (data only)."""
        out, keep = [], []
        for ev in self.events:
            if ev["type"] == type_ and (pred is None or pred(ev.get("data"))):
                out.append(ev.get("data"))
            else:
                keep.append(ev)
        self.events = keep
        return out

    def expect_no_event(self, type_, pred=None, within=QUIET):
        """Asserts that no event of type_ matching pred is buffered or arrives
        within `within` seconds (a bounded wait, only to prove absence)."""
        deadline = time.monotonic() + within
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self._pump(left):
                break
        bad = [ev for ev in self.events
               if ev["type"] == type_ and (pred is None or pred(ev.get("data")))]
        assert not bad, f"unexpected {type_} event(s): {bad[:3]}"

    def wait_close(self, timeout=TIMEOUT):
        """Reads until the server closes; returns the received close code
        (None when the TCP connection ended without a close frame)."""
        deadline = time.monotonic() + timeout
        while self.closed is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"connection still open after {timeout}s")
            try:
                self._pump(left)
            except AssertionError:
                if self.closed is None:
                    raise
        return self.closed.rcvd.code if self.closed.rcvd else None

    def ping(self):
        """A ping round trip: once it returns, the server has handled every
        frame this connection sent before it."""
        return self.ack("ping")

    def close(self):
        self.conn.close()


def assert_error_frame(frame, code):
    assert frame["type"] == "error", f"expected error {code}, got {frame}"
    err = frame.get("data", {}).get("error")
    assert isinstance(err, dict) and err.get("code") == code, frame
    assert isinstance(err.get("message"), str), frame


def _close_desc(e):
    if e.rcvd:
        return f"code {e.rcvd.code} {e.rcvd.reason!r}"
    return "no close frame received"
