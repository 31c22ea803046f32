"""Tencent Cloud SMS through the official SDK against the emulator: signatures, templates,
per-number limits, and the outbox trying a rate-limited SMS again later."""

from __future__ import annotations

import pytest

from miniapp_stubs.emulator import Emulator
from server.app import Services
from server.notify.sms import EMULATOR_SECRET_ID, SmsAdapter, SmsError
from server.platform.clock import FixedClock
from server.platform.config import Settings
from tests.waiting import until

PHONE = "13611112222"


@pytest.fixture
def adapter(settings: Settings, emulator: Emulator, clock: FixedClock) -> SmsAdapter:
    emulator.sms.clock = lambda: clock.now().timestamp()
    return SmsAdapter.from_settings(settings.sms, emulator.url)


async def refused(adapter: SmsAdapter, *args: object) -> str:
    with pytest.raises(SmsError) as found:
        await adapter.send(*args)  # type: ignore[arg-type]
    return found.value.code


@pytest.mark.gen_test(timeout=60)
async def test_templates_limits_and_signatures(
    adapter: SmsAdapter, emulator: Emulator, clock: FixedClock, settings: Settings
) -> None:
    sent = await adapter.send(PHONE, "2100001", ["GD2026京0105-000001", "tok"], "ref-1")
    assert sent.serial_no and sent.fee == 1
    (sms,) = emulator.sms.messages_for(PHONE)
    assert sms["content"] == (
        "【微法院】您反映的问题（工单号GD2026京0105-000001）已答复，查看答复："
        "https://wfy.example.gov.cn/w/tok"
    )
    assert sms["session_context"] == "ref-1"
    same = await refused(adapter, PHONE, "2100001", ["GD2026京0105-000001", "tok"], "ref-2")
    assert same == "LimitExceeded.PhoneNumberThirtySecondLimit"
    clock.advance(seconds=31)
    assert (await adapter.send(PHONE, "2100001", ["GD2026京0105-000001", "tok"], "r")).serial_no
    for i in range(3):  # five an hour
        await adapter.send(PHONE, "2100002", [f"GD{i}", "tok"], "r")
    hourly = await refused(adapter, PHONE, "2100002", ["GD9", "tok"], "r")
    assert hourly == "LimitExceeded.PhoneNumberOneHourLimit"
    clock.advance(hours=1, minutes=1)
    for i in range(5):  # ten a day (Beijing day)
        await adapter.send(PHONE, "2100002", [f"GE{i}", "tok"], "r")
    clock.advance(hours=1, minutes=1)
    daily = await refused(adapter, PHONE, "2100002", ["GF", "tok"], "r")
    assert daily == "LimitExceeded.PhoneNumberDailyLimit"
    assert SmsError(daily, "").transient and SmsError(hourly, "").transient

    other = "13611113333"
    assert await refused(adapter, other, "999", ["a", "b"], "r") == (
        "FailedOperation.TemplateIncorrectOrUnapproved"
    )
    assert await refused(adapter, other, "2100001", ["only one"], "r") == (
        "InvalidParameterValue.TemplateParameterFormatError"
    )
    assert await refused(adapter, "1361111", "2100001", ["a", "b"], "r") == (
        "InvalidParameterValue.IncorrectPhoneNumber"
    )
    forged = SmsAdapter(
        settings.sms, EMULATOR_SECRET_ID, "not-the-key", *emulator.url.split("://")[::-1]
    )
    assert await refused(forged, other, "2100001", ["a", "b"], "r") == (
        "AuthFailure.SignatureFailure"
    )
    assert not SmsError("AuthFailure.SignatureFailure", "").transient
    assert [m["phone"] for m in emulator.sms.messages_for(None)].count(other) == 0


@pytest.mark.gen_test(timeout=60)
async def test_the_outbox_sends_sms_and_tries_a_rate_limited_one_again_later(
    services: Services, emulator: Emulator, clock: FixedClock, adapter: SmsAdapter
) -> None:
    params = ["GD2026京0105-000007", "tok"]
    await adapter.send(PHONE, "2100001", params, "already")  # the same content just now
    item_id = await services.sms.queue(PHONE, "workorder_replied", params, {"x": 1}, None)
    assert await services.outbox.run_once() == 1
    item = await services.db["outbox"].find_one({"_id": item_id})
    assert item is not None and item["status"] == "pending", item
    assert "PhoneNumberThirtySecondLimit" in item["last_error"]
    assert item["next_attempt_at"] > clock.now()  # backoff
    assert await services.outbox.run_once() == 0  # not due yet
    clock.advance(seconds=31)
    assert await services.outbox.run_once() == 1

    async def sent() -> bool:
        found = await services.db["outbox"].find_one({"_id": item_id})
        return bool(found and found["status"] == "sent" and found["serial_no"])

    assert await until(sent)
    assert len(emulator.sms.messages_for(PHONE)) == 2
