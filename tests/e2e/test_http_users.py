"""Users over HTTP: registration rules, login, users/me, look-up by name."""

import secrets
import time

import pytest

from conftest import RUN, unique_name
from eim_http import assert_error, assert_status

PW = "correct-horse"


def name_of_length(n):
    base = f"n{RUN}{secrets.token_hex(16)}"
    return (base * 2)[:n]


@pytest.mark.parametrize("length", [3, 32])
def test_register_accepts_username_lengths_3_and_32(im, length):
    name = name_of_length(length)
    body = assert_status(im.register(name, PW), 201)
    assert body["username"] == name
    assert isinstance(body["user_id"], str) and body["user_id"]


def test_register_accepts_every_allowed_character(im):
    name = f"aZ09_.-{RUN}{secrets.token_hex(4)}"
    body = assert_status(im.register(name, PW), 201)
    assert body["username"] == name


@pytest.mark.parametrize("name", [
    "ab",                       # too short
    "x" * 33,                   # too long
    "", "has space", "at@sign", "slash/x", "col:on", "plus+", "tab\tx",
    "caf\u00e9name", "emoji\U0001F600",
])
def test_register_rejects_bad_usernames(im, name):
    # The suffix keeps valid-looking names unique, without changing what is
    # wrong with them (length cases are exact).
    if 3 <= len(name) <= 32 and len(name) < 20:
        name = f"{name}{RUN}"
    assert_error(im.register(name, PW), 400, "bad_request")


@pytest.mark.parametrize("password,ok", [
    ("a" * 7, False),
    ("a" * 8, True),
    ("a" * 128, True),
    ("a" * 129, False),
    ("\u00e9" * 4, True),          # 4 characters but 8 bytes
    ("\u00e9" * 3 + "a", False),   # 4 characters, 7 bytes
    ("\u00e9" * 64 + "a", False),  # 65 characters, 129 bytes
])
def test_register_password_length_is_8_to_128_bytes(im, password, ok):
    r = im.register(unique_name("pw"), password)
    if ok:
        assert_status(r, 201)
    else:
        assert_error(r, 400, "bad_request")


def test_register_taken_username_is_409(im):
    name = unique_name("dup")
    first = assert_status(im.register(name, PW), 201)
    assert_error(im.register(name, "another-password"), 409, "conflict")
    # The first account is untouched: its password still logs in.
    assert assert_status(im.login(name, PW), 200)["user_id"] == first["user_id"]
    assert_error(im.login(name, "another-password"), 401, "unauthorized")


@pytest.mark.parametrize("raw", [
    "{not json", "", "[]", "null", '"just a string"', "42",
    '{"username": "abcdef"}',
    '{"password": "long-enough"}',
    '{"username": 12345, "password": "long-enough"}',
    '{"username": "abcdefg", "password": 12345678}',
    '{"username": null, "password": "long-enough"}',
    '{"username": ["abc"], "password": "long-enough"}',
])
def test_register_bad_body_is_400(im, raw):
    assert_error(im.http.request("POST", "/api/v1/users", raw=raw), 400, "bad_request")


def test_login_returns_token_user_id_and_expiry(im, server):
    name = unique_name("login")
    reg = assert_status(im.register(name, PW), 201)
    before = int(time.time() * 1000)
    body = assert_status(im.login(name, PW), 200)
    after = int(time.time() * 1000)
    assert body["user_id"] == reg["user_id"]
    assert isinstance(body["token"], str) and body["token"]
    exp = body["expires_at"]
    assert isinstance(exp, int)
    # ttl is whole seconds: allow a second of rounding either way.
    assert before + server.ttl * 1000 - 1000 <= exp <= after + server.ttl * 1000 + 1000
    me = assert_status(im.http.get("/api/v1/users/me", token=body["token"]), 200)
    assert me == {"user_id": reg["user_id"], "username": name}


def test_login_unknown_user_and_wrong_password_look_the_same(im):
    name = unique_name("who")
    assert_status(im.register(name, PW), 201)
    wrong = im.login(name, "not-the-password")
    unknown = im.login(unique_name("nobody"), PW)
    assert_error(wrong, 401, "unauthorized")
    assert_error(unknown, 401, "unauthorized")
    # Nothing tells an attacker which usernames exist.
    assert wrong.json() == unknown.json()


@pytest.mark.parametrize("raw", [
    "{oops", "[]", '{"username": "abc"}', '{"username": 1, "password": "long-enough"}'])
def test_login_bad_body_is_400(im, raw):
    assert_error(im.http.request("POST", "/api/v1/login", raw=raw), 400, "bad_request")


def test_users_me(im):
    u = im.user("me")
    assert assert_status(u.get("/api/v1/users/me"), 200) == {
        "user_id": u.id, "username": u.username}


def test_user_lookup_by_username(im):
    a, b = im.users(2, "look")
    body = assert_status(a.get(f"/api/v1/users?username={b.username}"), 200)
    assert body == {"user_id": b.id, "username": b.username}
    assert_error(a.get(f"/api/v1/users?username={unique_name('ghost')}"), 404, "not_found")
