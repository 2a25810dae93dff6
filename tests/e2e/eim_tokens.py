"""Makes bad tokens from a good one, for the 401 tests. The suite wrote the
server's JWT secret itself, so it can also sign tokens that are well formed
and correctly signed but expired or from another issuer."""

import base64
import hashlib
import hmac
import json

_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode(token):
    """Returns (header, claims) of a JWT, unverified."""
    h, c, _ = token.split(".")
    return json.loads(_unb64(h)), json.loads(_unb64(c))


def sign(header, claims, secret):
    alg = header.get("alg", "HS256")
    if alg not in _HASHES:
        raise ValueError(f"cannot sign {alg}")
    head = _b64(json.dumps(header, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    mac = hmac.new(secret.encode(), f"{head}.{body}".encode(), _HASHES[alg]).digest()
    return f"{head}.{body}.{_b64(mac)}"


def resigned(token, secret, **changes):
    """The token's claims with `changes` applied, signed with `secret`."""
    header, claims = decode(token)
    claims.update(changes)
    return sign(header, claims, secret)


def unsigned(token):
    """The same claims with alg "none" and no signature."""
    _, claims = decode(token)
    head = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    return f"{head}.{body}."


def tampered(token):
    """The payload changed (a claim added) while the signature is kept."""
    h, _, s = token.split(".")
    _, claims = decode(token)
    claims["admin"] = True
    return f"{h}.{_b64(json.dumps(claims).encode())}.{s}"


def bad_tokens(token, secret):
    """(label, token) pairs the server must all refuse."""
    _, claims = decode(token)
    exp = claims.get("exp", 0)
    return [
        ("garbage", "not-a-token"),
        ("wrong-secret", resigned(token, "x" * 40)),
        ("alg-none", unsigned(token)),
        ("tampered", tampered(token)),
        ("expired", resigned(token, secret, exp=int(claims.get("iat", exp)) - 3600,
                             iat=int(claims.get("iat", exp)) - 7200)),
        ("wrong-issuer", resigned(token, secret, iss="someone-else")),
    ]
