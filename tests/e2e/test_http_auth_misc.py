"""Authentication of every route, unknown routes, health and metrics."""

import pytest

from conftest import Harness
from eim_http import assert_error, assert_status
from eim_tokens import bad_tokens


@pytest.fixture(scope="module")
def routes(server):
    """Every authenticated route, aimed at things that exist, so a 401 can
    only come from the token."""
    h = Harness(server)
    a, b = h.users(2, "auth")
    conv = h.group(a, [b], "auth")["conversation_id"]
    return a, [
        ("GET", "/api/v1/users/me", None),
        ("GET", f"/api/v1/users?username={b.username}", None),
        ("POST", "/api/v1/conversations", {"type": "single", "peer": b.id}),
        ("GET", "/api/v1/conversations", None),
        ("GET", f"/api/v1/conversations/{conv}", None),
        ("POST", f"/api/v1/conversations/{conv}/members", {"user_ids": [b.id]}),
        ("GET", f"/api/v1/conversations/{conv}/messages", None),
        ("POST", f"/api/v1/conversations/{conv}/read", {"seq": 0}),
    ]


def test_every_authenticated_route_needs_a_token(im, routes):
    _, table = routes
    for method, path, body in table:
        r = im.http.request(method, path, json_body=body)
        assert_error(r, 401, "unauthorized")


def test_every_authenticated_route_refuses_bad_tokens(im, server, routes):
    a, table = routes
    for label, token in bad_tokens(a.token, server.secret):
        for method, path, body in table:
            r = im.http.request(method, path, json_body=body, token=token)
            assert r.status == 401, f"{label} token on {method} {path}: {r!r}"
            assert_error(r, 401, "unauthorized")


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "token"])
def test_malformed_authorization_header_is_401(im, header):
    r = im.http.get("/api/v1/users/me", headers={"Authorization": header})
    assert_error(r, 401, "unauthorized")


def test_the_good_token_works_on_every_route(im, routes):
    a, table = routes
    for method, path, body in table:
        r = im.http.request(method, path, json_body=body, token=a.token)
        assert 200 <= r.status < 300, f"{method} {path}: {r!r}"


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/users/me/extra", "/nope-e2e",
                                  "/api/v2/users/me"])
def test_unknown_route_is_404_json(routes, path):
    a, _ = routes
    assert_error(a.get(path), 404, "not_found")


def test_invalid_json_body_is_400_on_every_json_route(im):
    a, b = im.users(2, "json")
    conv = im.group(a, [b], "json")["conversation_id"]
    for path in ["/api/v1/conversations", f"/api/v1/conversations/{conv}/members",
                 f"/api/v1/conversations/{conv}/read"]:
        r = im.http.request("POST", path, raw="{\"broken\": ", token=a.token)
        assert_error(r, 400, "bad_request")


def test_healthz(im):
    r = im.http.get("/healthz")
    body = assert_status(r, 200)
    assert body["status"] == "ok"
    assert r.headers.get("content-type", "").startswith("application/json")


def test_metrics_exposition(im):
    im.user("metrics")  # at least one request counted
    r = im.http.get("/metrics")
    assert r.status == 200, r
    assert r.headers.get("content-type", "").startswith("text/plain")
    text = r.body.decode()
    assert "exampleim_" in text
    # Every sample line is "name{labels} value" with a numeric value.
    samples = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert samples
    for ln in samples:
        float(ln.rsplit(" ", 1)[1])
