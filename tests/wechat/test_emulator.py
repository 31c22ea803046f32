"""The WeChat emulator over real HTTP: raw requests and wechatpy's own client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any
from urllib.parse import urlencode

import pytest
from tornado.httpclient import AsyncHTTPClient
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from miniapp_stubs.emulator import Emulator, EmulatorState, start_emulator

APPID = "wx0123456789abcdef"
SECRET = "0123456789abcdef0123456789abcdef"
T_FILED = "tmpl-filing-submitted"
T_PAID = "tmpl-fee-paid"


class FakeClock:
    """A settable clock: no test waits or depends on the wall clock."""

    def __init__(self, now: float = 1_767_225_600.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextlib.asynccontextmanager
async def running(clock: Callable[[], float] = time.time) -> AsyncIterator[Emulator]:
    emulator = await start_emulator(APPID, SECRET, clock=clock)
    try:
        yield emulator
    finally:
        await emulator.stop()


async def call(
    emu: Emulator, method: str, path: str, body: Any = None, **query: str
) -> tuple[int, dict[str, Any]]:
    """One request; returns (HTTP status, decoded JSON)."""
    url = emu.url + path + ("?" + urlencode(query) if query else "")
    raw = body if isinstance(body, str | bytes) else json.dumps(body) if body is not None else None
    if raw is None and method == "POST":
        raw = b""
    response = await AsyncHTTPClient().fetch(url, method=method, body=raw, raise_error=False)
    assert response.headers["Content-Type"].startswith("application/json")
    return response.code, json.loads(response.body)


async def errcode(emu: Emulator, method: str, path: str, body: Any = None, **query: str) -> int:
    """The errcode of one WeChat call, which must answer HTTP 200 as WeChat does."""
    status, out = await call(emu, method, path, body, **query)
    assert status == 200, out
    return int(out["errcode"])


async def wx_login(emu: Emulator, openid: str | None = None) -> tuple[str, str]:
    _, out = await call(emu, "POST", "/_emulator/wx/login", {"openid": openid} if openid else {})
    return out["openid"], out["code"]


async def code2session(emu: Emulator, code: str, secret: str = SECRET) -> dict[str, Any]:
    query = {"appid": APPID, "secret": secret, "js_code": code}
    _, out = await call(emu, "GET", "/sns/jscode2session", grant_type="authorization_code", **query)
    return out


async def access_token(emu: Emulator) -> str:
    query = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    _, out = await call(emu, "GET", "/cgi-bin/token", **query)
    return str(out["access_token"])


def subscribe_body(openid: str, template_id: str = T_FILED, **extra: Any) -> dict[str, Any]:
    data = {"thing1": {"value": "民间借贷纠纷"}, "time2": {"value": "2026-03-02 10:00"}}
    return {"touser": openid, "template_id": template_id, "data": data, **extra}


@pytest.mark.gen_test
async def test_login_code_exchanges_once_for_openid_and_session() -> None:
    async with running() as emu:
        openid, code = await wx_login(emu)
        assert len(openid) == 28 and openid.startswith("o")
        session = await code2session(emu, code)
        assert session["openid"] == openid
        assert len(session["session_key"]) == 24 and session["unionid"].startswith("o")
        assert "errcode" not in session

        reused = await code2session(emu, code)
        assert reused["errcode"] == 40163 and reused["errmsg"].startswith("code been used, rid: ")
        assert (await code2session(emu, "no-such-code"))["errcode"] == 40029

        again, code2 = await wx_login(emu, openid)
        assert again == openid
        second = await code2session(emu, code2)
        assert second["unionid"] == session["unionid"]
        assert second["session_key"] != session["session_key"]  # rotated per wx.login


@pytest.mark.gen_test
async def test_code2session_rejects_wrong_app_and_expired_code() -> None:
    clock = FakeClock()
    async with running(clock) as emu:
        _, code = await wx_login(emu)
        assert (await code2session(emu, code, secret="wrong"))["errcode"] == 40125
        _, out = await call(
            emu,
            "GET",
            "/sns/jscode2session",
            appid="wxother",
            secret=SECRET,
            js_code=code,
            grant_type="authorization_code",
        )
        assert out["errcode"] == 40013
        clock.advance(301)
        expired = await code2session(emu, code)
        assert expired["errcode"] == 40029 and "invalid code" in expired["errmsg"]


@pytest.mark.gen_test
async def test_access_tokens_plain_stable_and_expiry() -> None:
    clock = FakeClock()
    async with running(clock) as emu:
        bad = {"grant_type": "client_credential", "appid": APPID, "secret": "nope"}
        assert await errcode(emu, "GET", "/cgi-bin/token", **bad) == 40125
        assert await errcode(emu, "POST", "/cgi-bin/stable_token", bad) == 40125
        assert await errcode(emu, "POST", "/cgi-bin/stable_token", "{not json") == 47001

        good = {**bad, "secret": SECRET}
        _, first = await call(emu, "POST", "/cgi-bin/stable_token", good)
        assert first["expires_in"] == 7200
        _, same = await call(emu, "POST", "/cgi-bin/stable_token", good)
        assert same["access_token"] == first["access_token"]
        _, fresh = await call(emu, "POST", "/cgi-bin/stable_token", {**good, "force_refresh": True})
        assert fresh["access_token"] != first["access_token"]

        send = "/cgi-bin/message/subscribe/send"
        assert await errcode(emu, "POST", send, {}, access_token=first["access_token"]) == 40001
        assert await errcode(emu, "POST", send, {}) == 41001
        clock.advance(7201)
        assert await errcode(emu, "POST", send, {}, access_token=fresh["access_token"]) == 42001


@pytest.mark.gen_test
async def test_subscribe_quota_is_consumed_then_refused() -> None:
    async with running() as emu:
        openid, _ = await wx_login(emu)
        token = await access_token(emu)
        send = "/cgi-bin/message/subscribe/send"
        assert await errcode(emu, "POST", send, subscribe_body(openid), access_token=token) == 43101

        accept = {"openid": openid, "template_ids": [T_FILED, T_FILED, T_PAID]}
        _, granted = await call(emu, "POST", "/_emulator/subscribe/accept", accept)
        assert granted["quotas"] == {T_FILED: 2, T_PAID: 1}

        body = subscribe_body(openid, page="pages/filing/detail?id=1", miniprogram_state="trial")
        _, sent = await call(emu, "POST", send, body, access_token=token)
        assert sent["errcode"] == 0 and sent["errmsg"] == "ok" and sent["msgid"] == 1
        _, quotas = await call(emu, "GET", "/_emulator/subscribe/quotas", openid=openid)
        assert quotas["quotas"] == {T_FILED: 1, T_PAID: 1}

        _, second = await call(emu, "POST", send, subscribe_body(openid), access_token=token)
        assert second["msgid"] == 2
        spent = await call(emu, "POST", send, subscribe_body(openid), access_token=token)
        assert spent[1]["errcode"] == 43101
        assert "user refuse to accept the msg" in spent[1]["errmsg"]

        _, box = await call(emu, "GET", "/_emulator/subscribe-messages", openid=openid)
        assert [m["msgid"] for m in box["messages"]] == [1, 2]
        first = box["messages"][0]
        assert first["template_id"] == T_FILED and first["page"] == "pages/filing/detail?id=1"
        assert first["data"]["thing1"] == {"value": "民间借贷纠纷"}
        assert first["miniprogram_state"] == "trial" and first["sent_at"].endswith("+00:00")


@pytest.mark.gen_test
async def test_subscribe_sends_are_counted_per_beijing_day() -> None:
    clock = FakeClock(1_767_196_740.0)  # 2025-12-31 23:59 Beijing time (15:59 UTC)
    async with running(clock) as emu:
        assert emu.state.sends_per_day == 30_000_000  # the documented count, with WeChat Pay
        emu.state.sends_per_day = 2
        openid, _ = await wx_login(emu)
        emu.state.accept_subscriptions(openid, [T_FILED] * 5)
        token = await access_token(emu)
        send = "/cgi-bin/message/subscribe/send"
        codes = [await errcode(emu, "POST", send, subscribe_body(openid), access_token=token)]
        codes.append(await errcode(emu, "POST", send, subscribe_body(openid), access_token=token))
        codes.append(await errcode(emu, "POST", send, subscribe_body(openid), access_token=token))
        assert codes == [0, 0, 45009] and emu.state.quotas_for(openid) == {T_FILED: 3}
        clock.advance(60)  # midnight in Beijing: a new day's count
        assert await errcode(emu, "POST", send, subscribe_body(openid), access_token=token) == 0


@pytest.mark.gen_test
async def test_subscribe_send_validates_before_spending_quota() -> None:
    async with running() as emu:
        openid, _ = await wx_login(emu)
        token = await access_token(emu)
        await call(
            emu,
            "POST",
            "/_emulator/subscribe/accept",
            {"openid": openid, "template_ids": [T_FILED]},
        )
        send = "/cgi-bin/message/subscribe/send"
        cases: list[tuple[Any, int]] = [
            ("{broken", 47001),
            (subscribe_body("o" + "x" * 27), 40003),
            (subscribe_body(openid, template_id=""), 40037),
            ({**subscribe_body(openid), "data": {"thing1": "flat"}}, 47003),
            ({**subscribe_body(openid), "data": {"thing1": {"value": 5}}}, 47003),
            ({**subscribe_body(openid), "data": {"thing1": {"value": "长" * 21}}}, 47003),
            ({**subscribe_body(openid), "data": {"phrase3": {"value": "已受理了吧啊"}}}, 47003),
            (subscribe_body(openid, lang="fr_FR"), 47003),
        ]
        for body, expected in cases:
            assert await errcode(emu, "POST", send, body, access_token=token) == expected, body
        _, quotas = await call(emu, "GET", "/_emulator/subscribe/quotas", openid=openid)
        assert quotas["quotas"] == {T_FILED: 1}
        assert emu.state.messages_for(openid) == []


@pytest.mark.gen_test
async def test_msg_sec_check_v2_flags_configured_words() -> None:
    async with running() as emu:
        openid, _ = await wx_login(emu)
        token = await access_token(emu)
        words = {"words": ["赌博", "Casino"]}
        assert (await call(emu, "POST", "/_emulator/content/risky-words", words))[1] == words
        assert (await call(emu, "GET", "/_emulator/content/risky-words"))[1] == words

        check = "/wxa/msg_sec_check"
        body = {"content": "法官您好，请问开庭时间？", "version": 2, "scene": 2, "openid": openid}
        _, ok = await call(emu, "POST", check, body, access_token=token)
        assert ok["errcode"] == 0 and ok["result"] == {"suggest": "pass", "label": 100}
        assert ok["trace_id"] and ok["detail"][0]["suggest"] == "pass"

        risky = {**body, "content": "欢迎来 casino 玩"}
        _, flagged = await call(emu, "POST", check, risky, access_token=token)
        assert flagged["errcode"] == 0 and flagged["result"] == {"suggest": "risky", "label": 20006}
        assert {"strategy": "keyword", "keyword": "Casino"}.items() <= flagged["detail"][1].items()

        cases: list[tuple[dict[str, Any], int]] = [
            ({**body, "content": "字" * 2501}, 45002),
            ({**body, "scene": 9}, 40129),
            ({**body, "openid": "o" + "y" * 27}, 40003),
        ]
        for bad, expected in cases:
            assert await errcode(emu, "POST", check, bad, access_token=token) == expected, bad
        assert await errcode(emu, "POST", check, body, access_token="bad") == 40001


@pytest.mark.gen_test
async def test_phone_number_code_is_single_use() -> None:
    async with running() as emu:
        openid, _ = await wx_login(emu)
        token = await access_token(emu)
        phone = {"openid": openid, "phone": "13800138000"}
        _, issued = await call(emu, "POST", "/_emulator/wx/phone-code", phone)
        path = "/wxa/business/getuserphonenumber"
        _, out = await call(emu, "POST", path, {"code": issued["code"]}, access_token=token)
        assert out["errcode"] == 0
        info = out["phone_info"]
        assert info["phoneNumber"] == info["purePhoneNumber"] == "13800138000"
        assert info["countryCode"] == "86" and info["watermark"]["appid"] == APPID
        assert (
            await errcode(emu, "POST", path, {"code": issued["code"]}, access_token=token) == 40029
        )
        stranger = {"openid": "o" + "z" * 27, "phone": "13800138000"}
        status, _ = await call(emu, "POST", "/_emulator/wx/phone-code", stranger)
        assert status == 404


@pytest.mark.gen_test
async def test_unknown_paths_and_reset() -> None:
    async with running() as emu:
        status, out = await call(emu, "GET", "/cgi-bin/no/such/api")
        assert status == 404 and out["errcode"] == -1
        status, out = await call(emu, "GET", "/wxa/msg_sec_check")
        assert status == 405 and out["errcode"] == 43002

        openid, code = await wx_login(emu)
        token = await access_token(emu)
        status, out = await call(emu, "POST", "/_emulator/reset", {"keep_tokens": True})
        assert (status, out) == (200, {"ok": True})
        assert (await code2session(emu, code))["errcode"] == 40029
        assert openid not in emu.state.users
        send = "/cgi-bin/message/subscribe/send"
        # The token survived the reset, the user did not.
        assert await errcode(emu, "POST", send, subscribe_body(openid), access_token=token) == 40003
        await call(emu, "POST", "/_emulator/reset")
        assert await errcode(emu, "POST", send, {}, access_token=token) == 40001


class EmulatedWeChatClient(WeChatClient):
    """wechatpy's client with every base URL moved to the emulator, nothing else changed."""

    def __init__(self, base_url: str, appid: str, secret: str) -> None:
        super().__init__(appid, secret)
        self.base_url = base_url
        self.API_BASE_URL = base_url + "/cgi-bin/"
        self.wxa.API_BASE_URL = base_url + "/"

    def fetch_access_token(self) -> dict[str, Any]:
        # wechatpy hard-codes https://api.weixin.qq.com/cgi-bin/token here.
        params = {"grant_type": "client_credential", "appid": self.appid, "secret": self.secret}
        result: dict[str, Any] = self._fetch_access_token(self.base_url + "/cgi-bin/token", params)
        return result


async def blocking(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


@pytest.mark.gen_test(timeout=20)
async def test_wechatpy_client_works_unchanged() -> None:
    clock = FakeClock()
    async with running(clock) as emu:
        client = EmulatedWeChatClient(emu.url, APPID, SECRET)
        openid, code = await wx_login(emu)
        session = await blocking(client.wxa.code_to_session, code)
        assert session["openid"] == openid
        with pytest.raises(WeChatClientException) as reused:
            await blocking(client.wxa.code_to_session, code)
        assert reused.value.errcode == 40163

        emu.state.accept_subscriptions(openid, [T_FILED])
        data = subscribe_body(openid)["data"]
        sent = await blocking(client.wxa.send_subscribe_message, openid, T_FILED, data, "pages/x")
        assert sent["msgid"] == 1 and emu.state.quotas_for(openid) == {T_FILED: 0}
        with pytest.raises(WeChatClientException) as refused:
            await blocking(client.wxa.send_subscribe_message, openid, T_FILED, data)
        assert refused.value.errcode == 43101

        with pytest.raises(WeChatClientException) as risky:
            await blocking(client.wxa.check_text_security, "特3456书yuuo莞6543李zxcz蒜7782法fgnv级")
        assert risky.value.errcode == 87014  # msgSecCheck v1, which wechatpy 1.8 speaks
        assert (await blocking(client.wxa.check_text_security, "你好"))["errcode"] == 0

        _, issued = await call(
            emu, "POST", "/_emulator/wx/phone-code", {"openid": openid, "phone": "13900000000"}
        )
        get_phone = partial(
            client.post,
            "wxa/business/getuserphonenumber",
            data={"code": issued["code"]},
            api_base_url=emu.url + "/",
        )
        assert (await blocking(get_phone))["phone_info"]["purePhoneNumber"] == "13900000000"


@pytest.mark.gen_test(timeout=20)
async def test_wechatpy_refetches_an_expired_token() -> None:
    clock = FakeClock()
    async with running(clock) as emu:
        client = EmulatedWeChatClient(emu.url, APPID, SECRET)
        openid, _ = await wx_login(emu)
        emu.state.accept_subscriptions(openid, [T_FILED, T_FILED])
        data = subscribe_body(openid)["data"]
        await blocking(client.wxa.send_subscribe_message, openid, T_FILED, data)
        first_token = client.access_token
        clock.advance(7300)  # wechatpy's own clock still thinks the token is fresh
        await blocking(client.wxa.send_subscribe_message, openid, T_FILED, data)
        assert client.access_token != first_token
        assert [m["msgid"] for m in emu.state.messages_for(openid)] == [1, 2]


def test_state_is_per_instance() -> None:
    one, two = EmulatorState(APPID, SECRET), EmulatorState(APPID, SECRET)
    openid, _ = one.login()
    assert openid in one.users and openid not in two.users
