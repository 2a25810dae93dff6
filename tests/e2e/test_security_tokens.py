"""Forged, expired and malformed tokens: every one is refused with 401 and
the protocol's JSON error on every authenticated HTTP route and before the
WebSocket upgrade (header and ?token=), and nothing it asked for happens.

The server of this module has an `issuer` configured (eim_server.Server sets
one), so a token from another issuer, or with none, must fail too."""

import json
import tempfile
import time
import urllib.parse

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from conftest import Harness, _stop
from eim_http import assert_error, assert_status
from eim_server import Server
from eim_tokens import _b64, decode, sign, tampered, unsigned


@pytest.fixture(scope="module")
def srv():
    # Many requests in a row from one address: the per-address connection
    # rate (a limit tested elsewhere) must not turn a 401 into a 503.
    with tempfile.TemporaryDirectory(prefix="eim-e2e-") as root:
        s = Server(root, conf={"new_connections_per_ip_per_sec": "0"}).start()
        yield s
        _stop(s)


@pytest.fixture(scope="module")
def setup(srv):
    h = Harness(srv)
    a, b = h.users(2, "forge")
    conv = h.group(a, [b], "forge")["conversation_id"]
    return h, a, b, conv


def forged(token, secret, issuer):
    """(label, token) pairs the server must refuse: every way a token can be
    wrong, each starting from a valid token of the user."""
    header, claims = decode(token)
    now = int(time.time())
    rs_head = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    _, body, sig = token.split(".")
    no_iss = {k: v for k, v in claims.items() if k != "iss"}
    return [
        ("alg-none", unsigned(token)),
        ("alg-none-with-signature", unsigned(token) + sig),
        ("rs256-header", f"{rs_head}.{body}.{sig}"),
        ("hs512-real-secret", sign({"alg": "HS512", "typ": "JWT"}, claims, secret)),
        ("tampered-payload", tampered(token)),
        ("tampered-sub", f"{token.split('.')[0]}."
                         f"{_b64(json.dumps({**claims, 'sub': claims['sub'] + 'x'}).encode())}"
                         f".{sig}"),
        ("other-secret", sign(header, claims, "another-secret-" + "z" * 32)),
        ("expired", sign(header, {**claims, "iat": now - 7200, "nbf": now - 7200,
                                  "exp": now - 3600}, secret)),
        ("not-yet-valid", sign(header, {**claims, "nbf": now + 3600,
                                        "exp": now + 7200}, secret)),
        ("wrong-issuer", sign(header, {**claims, "iss": issuer + "-evil"}, secret)),
        ("no-issuer", sign(header, no_iss, secret)),
        ("signature-stripped", token.rsplit(".", 1)[0] + "."),
        ("two-parts", token.rsplit(".", 1)[0]),
        ("garbage", "not-a-token"),
        ("garbage-dots", "a.b.c"),
        ("empty", ""),
    ]


def routes(a, b, conv):
    """Every authenticated route, aimed at things that exist and would
    succeed with the real token, so a 401 can only come from the token."""
    return [
        ("GET", "/api/v1/users/me", None),
        ("GET", f"/api/v1/users?username={b.username}", None),
        ("GET", f"/api/v1/users/{b.id}", None),
        ("POST", "/api/v1/conversations", {"type": "group", "name": "forged", "members": []}),
        ("POST", "/api/v1/conversations", {"type": "single", "peer": b.id}),
        ("GET", "/api/v1/conversations", None),
        ("GET", f"/api/v1/conversations/{conv}", None),
        ("POST", f"/api/v1/conversations/{conv}/members", {"user_ids": [b.id]}),
        ("GET", f"/api/v1/conversations/{conv}/messages", None),
        ("POST", f"/api/v1/conversations/{conv}/read", {"seq": 0}),
    ]


def test_the_real_token_passes_everywhere(setup):
    # The control: without it a 401 below could come from a wrong route.
    h, a, b, conv = setup
    for method, path, body in routes(a, b, conv):
        r = h.http.request(method, path, json_body=body, token=a.token)
        assert 200 <= r.status < 300, f"{method} {path}: {r!r}"


def test_forged_tokens_are_refused_on_every_route(srv, setup):
    h, a, b, conv = setup
    before = assert_status(a.get("/api/v1/conversations"), 200)["conversations"]
    for label, token in forged(a.token, srv.secret, srv.issuer):
        for method, path, body in routes(a, b, conv):
            # An empty token is sent as "Bearer " (the header with nothing after).
            r = h.http.request(method, path, json_body=body,
                               headers={"Authorization": f"Bearer {token}"})
            assert r.status == 401, f"{label} on {method} {path}: {r!r}"
            assert_error(r, 401, "unauthorized")
    # None of the refused POSTs created a conversation or moved anything.
    after = assert_status(a.get("/api/v1/conversations"), 200)["conversations"]
    assert sorted(c["conversation_id"] for c in after) == \
        sorted(c["conversation_id"] for c in before)


def refused_upgrade(srv, url_token=None, header=None):
    url = f"ws://{srv.host}:{srv.port}/ws"
    if url_token is not None:
        url += "?token=" + urllib.parse.quote(url_token, safe="")
    with pytest.raises(InvalidStatus) as e:
        connect(url, additional_headers={"Authorization": header} if header else {},
                proxy=None, open_timeout=10).close()
    return e.value.response


@pytest.mark.parametrize("via", ["header", "query"])
def test_forged_tokens_are_refused_before_the_upgrade(srv, setup, via):
    h, a, b, conv = setup
    wb = h.ws(b)
    for label, token in forged(a.token, srv.secret, srv.issuer):
        if via == "header":
            resp = refused_upgrade(srv, header=f"Bearer {token}")
        else:
            resp = refused_upgrade(srv, url_token=token)
        assert resp.status_code == 401, (label, resp.status_code, resp.body)
        body = json.loads(resp.body)
        assert body["error"]["code"] == "unauthorized", (label, body)
        assert isinstance(body["error"]["message"], str)
    # No refused upgrade ever counted as a's connection: b, who shares a
    # conversation with a, saw no presence, and a is not online.
    wb.expect_no_event("presence")
    assert a.id not in wb.ack("user.online")["users"]
    h.close_all()
