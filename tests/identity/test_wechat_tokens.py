"""Sign-in without an access token, and access-token errors handled as WeChat documents them.

code2Session (GET /sns/jscode2session) takes appid, secret, js_code and grant_type: no
access_token. APIs that take one answer 40001 (invalid or not the latest) or 42001 (expired)
when it is refused: fetch it again and retry once. 40164 (the caller's IP is not in the
mini-program's whitelist) and 45009 (the API's daily quota is spent) need an operator.
"""

from __future__ import annotations

import logging

import pytest

from miniapp_stubs.client import MiniProgram
from miniapp_stubs.emulator import Emulator
from tests.factories import Phone, id_number


def faults(emulator: Emulator, api: str, *errcodes: int) -> None:
    emulator.state.add_faults(api, list(errcodes))


async def pending(phone: Phone, seq: str) -> tuple[MiniProgram, str]:
    mp = phone()
    assert (await mp.login()).status == 200
    number = id_number(seq=seq)
    res = await mp.put("/api/v1/me/identity", {"name": "钱九", "id_number": number})
    assert res.status == 202
    return mp, number


@pytest.mark.gen_test
async def test_sign_in_needs_no_access_token(phone: Phone, emulator: Emulator) -> None:
    faults(emulator, "token", 40164, 40164, 40164)  # no token can be had at all
    mp = phone()
    res = await mp.login()
    assert res.status == 200 and res.body["token"]
    assert emulator.state.current_tokens == {}  # none was asked for
    assert emulator.state.faults["token"] == [40164, 40164, 40164]


@pytest.mark.gen_test
async def test_daily_quota_on_sign_in_is_503_with_an_operator_line(
    phone: Phone, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    faults(emulator, "jscode2session", 45009)
    with caplog.at_level(logging.ERROR, logger="microcourt.wechat"):
        res = await phone().login()
    assert (res.status, res.error_code) == (503, "wechat_unavailable")
    assert any("45009" in r.getMessage() and "quota" in r.getMessage() for r in caplog.records)


@pytest.mark.gen_test
async def test_a_refused_token_is_fetched_again_once(phone: Phone, emulator: Emulator) -> None:
    mp, number = await pending(phone, "801")
    result = await mp.face_verify("钱九", number)
    faults(emulator, "face_getinfo", 40001)
    res = await mp.confirm_identity(result)
    assert res.status == 200, res.body  # refreshed, retried, confirmed
    assert emulator.state.faults["face_getinfo"] == []


@pytest.mark.gen_test
async def test_a_token_refused_twice_is_503(phone: Phone, emulator: Emulator) -> None:
    mp, number = await pending(phone, "802")
    result = await mp.face_verify("钱九", number)
    faults(emulator, "face_getinfo", 42001, 40001, 40001)
    res = await mp.confirm_identity(result)
    assert (res.status, res.error_code) == (503, "wechat_unavailable")
    assert emulator.state.faults["face_getinfo"] == [40001]  # one retry, not a loop
    # not consumed: the same result confirms once WeChat answers again
    emulator.state.faults.clear()
    assert (await mp.confirm_identity(result)).status == 200


@pytest.mark.gen_test
async def test_ip_not_whitelisted_is_503_with_an_operator_line(
    phone: Phone, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    mp, number = await pending(phone, "803")
    result = await mp.face_verify("钱九", number)
    faults(emulator, "token", 40164)
    with caplog.at_level(logging.ERROR, logger="microcourt.wechat"):
        res = await mp.confirm_identity(result)
    assert (res.status, res.error_code) == (503, "wechat_unavailable")
    lines = [r.getMessage() for r in caplog.records]
    assert any("40164" in line and "whitelist" in line for line in lines), lines
