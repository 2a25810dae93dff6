"""A small HTTP client for the REST API (stdlib http.client, one connection
per request so that a test never depends on keep-alive behaviour)."""

import http.client
import json

TIMEOUT = 15


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            raise AssertionError(f"HTTP {self.status}: body is not JSON: {self.body[:300]!r}")

    def __repr__(self):
        return f"<HTTP {self.status} {self.body[:300]!r}>"


class Http:
    """target is anything with .host and .port (a Server): read at each
    request, so a client outlives a restart of the server on a new port."""

    def __init__(self, target):
        self.target = target

    def request(self, method, path, json_body=None, raw=None, token=None, headers=None):
        """Sends one request. json_body is serialised as JSON; raw is sent as
        it is (bytes or str) with a JSON content type unless headers say
        otherwise; token adds "Authorization: Bearer <token>"."""
        hdrs = {}
        body = None
        if json_body is not None:
            body = json.dumps(json_body).encode()
        elif raw is not None:
            body = raw.encode() if isinstance(raw, str) else raw
        if body is not None:
            hdrs["Content-Type"] = "application/json"
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        hdrs.update(headers or {})
        conn = http.client.HTTPConnection(self.target.host, self.target.port, timeout=TIMEOUT)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            data = r.read()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, json_body=body, **kw)


def assert_error(resp, status, code):
    """Asserts resp is an HTTP error with the protocol's JSON error body."""
    assert resp.status == status, f"expected {status} {code}, got {resp!r}"
    body = resp.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    assert body["error"].get("code") == code, body
    assert isinstance(body["error"].get("message"), str), body
    return body["error"]


def assert_status(resp, status):
    """Asserts the status and returns the JSON body."""
    assert resp.status == status, f"expected {status}, got {resp!r}"
    return resp.json()
