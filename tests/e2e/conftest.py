"""Fixtures of the e2e suite.

- `server`: one real server for the whole session (default limits).
- `im`: a Harness bound to that server, for one test: it makes users, opens
  WebSockets and closes them when the test ends.
- `start_server`: a factory for extra servers with their own config (limits,
  token ttl, restarts); each is stopped when the test or module ends.
"""

import concurrent.futures
import itertools
import secrets
import signal
import tempfile
from pathlib import Path

import pytest

from eim_http import Http, assert_status
from eim_server import Server, ServerError
from eim_ws import Ws, open_ws

RUN = secrets.token_hex(3)  # usernames are unique across runs sharing a database
_names = itertools.count(1)


def unique_name(label="u"):
    return f"{label[:10]}_{RUN}{next(_names):05d}"


class User:
    """A registered, logged-in user and an authenticated HTTP client."""

    def __init__(self, http, username, password, user_id, token, expires_at):
        self.http = http
        self.username = username
        self.password = password
        self.id = user_id
        self.token = token
        self.expires_at = expires_at

    def get(self, path, **kw):
        return self.http.get(path, token=self.token, **kw)

    def post(self, path, body=None, **kw):
        return self.http.post(path, body, token=self.token, **kw)

    def __repr__(self):
        return f"<User {self.username} {self.id}>"


class Harness:
    def __init__(self, server):
        self.server = server
        self.http = Http(server)
        self._ws = []

    # ----------------------------------------------------------- users

    def register(self, username, password):
        return self.http.post("/api/v1/users", {"username": username, "password": password})

    def login(self, username, password):
        return self.http.post("/api/v1/login", {"username": username, "password": password})

    def user(self, label="u"):
        name, pw = unique_name(label), "pw-" + secrets.token_hex(8)
        reg = assert_status(self.register(name, pw), 201)
        body = assert_status(self.login(name, pw), 200)
        assert body["user_id"] == reg["user_id"], (reg, body)
        return User(self.http, name, pw, body["user_id"], body["token"], body["expires_at"])

    def users(self, n, label="u"):
        """n new users, registered in parallel (password hashing is slow on
        purpose, and the server hashes on its worker pool)."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(n, 8)) as ex:
            return list(ex.map(lambda _: self.user(label), range(n)))

    # --------------------------------------------------- conversations

    def single(self, a, b):
        r = a.post("/api/v1/conversations", {"type": "single", "peer": b.id})
        assert r.status in (200, 201), r
        return r.json()

    def group(self, creator, members, name="team"):
        body = assert_status(creator.post("/api/v1/conversations", {
            "type": "group", "name": name, "members": [m.id for m in members]}), 201)
        return body

    def history(self, user, conv_id, query=""):
        return assert_status(
            user.get(f"/api/v1/conversations/{conv_id}/messages{query}"), 200)

    # ------------------------------------------------------ WebSockets

    def ws(self, user, via="header", barrier=True):
        """Opens a WebSocket for user. With barrier, a ping round trip makes
        sure the server has registered the connection (for presence and
        delivery) before the test goes on."""
        w = Ws(open_ws(self.server.host, self.server.port, user.token, via), user)
        self._ws.append(w)
        if barrier:
            w.ping()
        return w

    def close_all(self):
        for w in self._ws:
            w.close()
        self._ws.clear()


def _stop(srv):
    """Stops a server gracefully and fails when it crashed earlier, did not
    exit cleanly (exit status 0) or a sanitizer reported something."""
    if srv.reaped:
        return
    if not srv.alive():
        srv.kill()
        raise ServerError(f"server died during the tests (status {srv.proc.returncode}):\n"
                          + srv.log_tail())
    rc = srv.stop(signal.SIGTERM)
    reports = srv.sanitizer_reports()
    if rc != 0 or reports:
        raise ServerError(f"server exit status {rc} on SIGTERM; sanitizer reports: "
                          f"{reports[:5]}\n{srv.log_tail()}")


@pytest.fixture(scope="session")
def server():
    with tempfile.TemporaryDirectory(prefix="eim-e2e-") as root:
        try:
            srv = Server(root).start()
        except ServerError as e:
            pytest.fail(str(e), pytrace=False)
        yield srv
        _stop(srv)


@pytest.fixture
def im(server, request):
    if not server.alive():
        # One clear failure per test instead of a refused connection.
        pytest.fail(f"the session's server died earlier (status {server.proc.poll()}):\n"
                    + server.log_tail(), pytrace=False)
    h = Harness(server)
    request.node.eim_server = server
    yield h
    h.close_all()


@pytest.fixture
def start_server(request):
    """start_server(conf=..., jwt=..., **Server args) -> (Server, Harness).
    Servers started here are stopped gracefully, and checked, when the test
    ends."""
    started = []
    dirs = []

    def start(conf=None, jwt=None, **server_args):
        d = tempfile.TemporaryDirectory(prefix="eim-e2e-")
        dirs.append(d)
        try:
            srv = Server(Path(d.name), conf=conf, jwt=jwt, **server_args).start()
        except ServerError as e:
            pytest.fail(str(e), pytrace=False)
        started.append(srv)
        request.node.eim_server = srv
        h = Harness(srv)
        started.append(h)
        return srv, h

    yield start
    errors = []
    for obj in reversed(started):
        if isinstance(obj, Harness):
            obj.close_all()
        else:
            try:
                _stop(obj)
            except ServerError as e:
                errors.append(str(e))
    for d in dirs:
        d.cleanup()
    if errors:
        pytest.fail("\n".join(errors), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    # A failing test's report ends with the tail of the server log it used.
    report = yield
    srv = getattr(item, "eim_server", None)
    if report.failed and srv is not None:
        report.sections.append(("exampleim log (tail)", srv.log_tail(60)))
    return report
