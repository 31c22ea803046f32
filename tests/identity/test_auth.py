"""Sign-in, tokens, logout and revocation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from miniapp_stubs.client import MiniProgram, StaffConsole
from server.app import Services, make_app
from tests.factories import STAFF_PASSWORD, TEST_KEYS, Phone

Factory = Callable[..., Awaitable[StaffConsole]]


@pytest.mark.gen_test
async def test_wx_login_creates_the_user_once(phone: Phone, services: Services) -> None:
    mp = phone()
    first = await mp.login()
    assert first.status == 200
    assert first.body["user"]["role"] == "litigant"
    assert first.body["user"]["identity"] is None
    assert "session_key" not in str(first.body)
    again = await mp.login()  # same openid, new code
    assert again.status == 200
    assert again.body["user"]["id"] == first.body["user"]["id"]
    assert again.body["token"] != first.body["token"]
    stored = await services.db["users"].find_one({"openid": mp.openid})
    assert stored is not None
    assert await services.db["users"].count_documents({"openid": mp.openid}) == 1
    # the session key is kept, encrypted, on the server only
    assert isinstance(stored["session_key_enc"], bytes)
    me = await mp.me()
    assert me.status == 200 and me.body["id"] == first.body["user"]["id"]


@pytest.mark.gen_test
async def test_wx_login_refuses_used_forged_and_malformed_codes(
    phone: Phone, services: Services
) -> None:
    mp = phone()
    code = await mp.wx_login_code()
    assert (await mp.post("/api/v1/auth/wx-login", {"code": code})).status == 200
    reused = await mp.post("/api/v1/auth/wx-login", {"code": code})
    assert (reused.status, reused.error_code) == (401, "invalid_login_code")
    forged = await mp.post("/api/v1/auth/wx-login", {"code": "forged0123456789"})
    assert (forged.status, forged.error_code) == (401, "invalid_login_code")
    for body, status in [
        ({}, 422),
        ({"code": 12}, 422),
        ({"code": "a b"}, 422),
        ({"code": "abc", "extra": 1}, 422),
        ([1], 400),
    ]:
        res = await mp.post("/api/v1/auth/wx-login", body)
        assert res.status == status, (body, res.body)
        assert res.body["error"]["code"] in ("validation_failed", "malformed_json")
    assert await services.db["users"].count_documents({}) == 1


@pytest.mark.gen_test
async def test_staff_login_and_wrong_password(staff: Factory, api_url: str) -> None:
    clerk = await staff("clerk")
    assert clerk.user is not None and clerk.user["role"] == "clerk"
    assert clerk.user["court_id"] == "bj-chaoyang"
    assert "password_hash" not in str(clerk.user)
    other = StaffConsole(api_url)
    bad = await other.login(clerk.user["username"], STAFF_PASSWORD + "x")
    assert (bad.status, bad.error_code) == (401, "invalid_credentials")
    nobody = await other.login("nobody", STAFF_PASSWORD)
    assert (nobody.status, nobody.error_code) == (401, "invalid_credentials")


@pytest.mark.gen_test
async def test_bad_tokens_are_401(phone: Phone) -> None:
    mp = phone()
    await mp.login()
    assert mp.token is not None
    payload, _, sig = mp.token.partition(".")
    cases = ["", "garbage", f"{payload}.{sig[:-2]}xx", f"{payload[:-3]}abc.{sig}", "a.b.c"]
    for token in cases:
        res = await mp.get("/api/v1/me", token=token)
        assert res.status == 401, token
    res = await mp.get("/api/v1/me", headers={"Authorization": f"Basic {mp.token}"}, token="")
    assert res.status == 401


@pytest.mark.gen_test
async def test_token_expires(phone: Phone, clock) -> None:  # type: ignore[no-untyped-def]
    mp = phone()
    await mp.login()
    clock.advance(days=7, seconds=1)
    res = await mp.me()
    assert (res.status, res.error_code) == (401, "token_expired")


@pytest.mark.gen_test
async def test_logout_revokes_at_once_here_and_after_a_poll_elsewhere(
    phone: Phone,
    app,
    settings,
    db,
    clock,
    wechat,  # type: ignore[no-untyped-def]
) -> None:
    # a second process: its own application (own caches, own revocation set), same database
    other = make_app(settings, db, clock=clock, wechat=wechat, keys=TEST_KEYS)
    sock, port = bind_unused_port()
    server = HTTPServer(other)
    server.add_sockets([sock])
    try:
        mp = phone()
        await mp.login()
        remote = MiniProgram(f"http://127.0.0.1:{port}", mp.emulator_url)
        assert (await remote.get("/api/v1/me", token=mp.token)).status == 200
        keep = phone()
        await keep.login()

        assert (await mp.logout()).status == 204
        res = await mp.me()
        assert (res.status, res.error_code) == (401, "token_revoked")
        # the other process learns of it at its next poll (every 15 s, well within 60 s)
        assert (await remote.get("/api/v1/me", token=mp.token)).status == 200
        assert await other.settings["services"].auth.poll_revocations() == 1
        res = await remote.get("/api/v1/me", token=mp.token)
        assert (res.status, res.error_code) == (401, "token_revoked")
        # other sessions are untouched, and signing in again works
        assert (await remote.get("/api/v1/me", token=keep.token)).status == 200
        # a later logout is found by the next poll too (from the last revocation seen on)
        assert (await keep.logout()).status == 204
        assert await other.settings["services"].auth.poll_revocations() >= 1
        assert (await remote.get("/api/v1/me", token=keep.token)).status == 401
        assert (await mp.login()).status == 200
        assert (await mp.me()).status == 200
    finally:
        server.stop()


@pytest.mark.gen_test
async def test_logout_needs_a_session(phone: Phone) -> None:
    res = await phone().logout()
    assert (res.status, res.error_code) == (401, "unauthorized")


@pytest.mark.gen_test
async def test_login_attempts_are_rate_limited(phone: Phone, settings) -> None:  # type: ignore[no-untyped-def]
    mp = phone()
    limit = settings.security.login_attempts_per_minute
    statuses = [
        (await mp.post("/api/v1/auth/wx-login", {"code": f"bad{i}"})).status
        for i in range(limit + 1)
    ]
    assert statuses[:limit] == [401] * limit
    assert statuses[-1] == 429


@pytest.mark.gen_test
async def test_wechat_down_is_503(phone: Phone, emulator, services: Services) -> None:  # type: ignore[no-untyped-def]
    mp = phone()
    code = await mp.wx_login_code()
    await emulator.stop()
    res = await mp.post("/api/v1/auth/wx-login", {"code": code})
    assert (res.status, res.error_code) == (503, "wechat_unavailable")
    assert await services.db["users"].count_documents({}) == 0
