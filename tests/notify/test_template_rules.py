"""Subscribe messages as WeChat's templates really are (subscribeMessage.send).

Documented rules exercised here: a template's keywords are fixed when it is chosen in the
console, and data with another keyword, or without one of them, answers 47003 (argument
invalid); ``page`` must be a page of the released app, else 41030 (invalid page); each keyword
type has its own limits (thing <= 20 characters, character_string <= 32 letters, digits and
symbols ...); a long-term subscription (长期订阅, open to 政务民生 mini-programs) is accepted
once and then sends without a one-time quota.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from miniapp_stubs.emulator import Emulator
from server.app import Services
from server.notify.inbox import NotificationService
from server.notify.outbox import OutboxWorker
from server.notify.store import SubscriptionStore
from server.platform.clock import FixedClock
from server.platform.config import Settings, load_settings
from server.platform.db import Database
from tests.factories import Litigant, uid

DECIDED = "dev-tmpl-filing-decided"


async def decided(services: Services, user_id: str, page: str = "pages/filing/detail?id=1") -> None:
    await services.notifications.notify(
        [user_id],
        "filing_accepted",
        "立案成功",
        "请留意缴费通知",
        template="filing_decided",
        page=page,
    )


async def items(db: Database, user_id: str) -> list[dict[str, Any]]:
    return await db["outbox"].find({"user_id": user_id}).sort("_id", 1).to_list()


async def quota(db: Database, user_id: str) -> int:
    doc = await db["subscriptions"].find_one({"_id": f"{user_id}:{DECIDED}"})
    return int(doc["quota"]) if doc else 0


def send_body(openid: str, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"touser": openid, "template_id": DECIDED, "data": data, **extra}


def test_emulator_holds_each_template_to_its_keywords(emulator: Emulator) -> None:
    state = emulator.state
    openid, _ = state.login()
    state.accept_subscriptions(openid, [DECIDED, DECIDED])
    good = {
        "thing1": {"value": "立案成功"},
        "thing2": {"value": "请缴费"},
        "time3": {"value": "2026-11-23 10:00"},
    }
    extra = {**good, "thing9": {"value": "多余"}}
    missing = {k: v for k, v in good.items() if k != "time3"}
    for data, text in [(extra, "data.thing9"), (missing, "data.time3")]:
        with pytest.raises(Exception) as raised:
            state.send_subscribe_message(send_body(openid, data))
        assert getattr(raised.value, "errcode", None) == 47003 and text in str(raised.value)
    state.register_templates({}, pages=["pages/filing/detail"])
    with pytest.raises(Exception) as raised:
        state.send_subscribe_message(send_body(openid, good, page="pages/nowhere"))
    assert getattr(raised.value, "errcode", None) == 41030
    sent = state.send_subscribe_message(send_body(openid, good, page="pages/filing/detail?id=1"))
    assert sent["errcode"] == 0
    assert state.quotas_for(openid)[DECIDED] == 1  # nothing taken by the refused ones


@pytest.mark.gen_test
async def test_a_refused_template_or_page_fails_once_recorded_and_logged(
    litigant: Litigant,
    services: Services,
    db: Database,
    emulator: Emulator,
    settings: Settings,
    clock: FixedClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mp = await litigant()
    await mp.accept_subscriptions([DECIDED])
    # the console's template has other keywords than config maps
    emulator.state.register_templates({DECIDED: {"keywords": ["thing1", "date2"]}})
    await decided(services, uid(mp))
    worker = OutboxWorker(db, settings.notifications, services.wechat, clock)
    with caplog.at_level(logging.WARNING, logger="microcourt.outbox"):
        assert await worker.run_once() == 1
    [item] = await items(db, uid(mp))
    assert (item["status"], item["attempts"]) == ("failed", 1)
    assert item["last_error"].startswith("47003")
    assert any("47003" in r.getMessage() for r in caplog.records)
    assert await quota(db, uid(mp)) == 1  # not delivered: the grant is still good
    clock.advance(days=1)
    assert await worker.run_once() == 0  # never retried

    emulator.state.register_templates(
        {DECIDED: {"keywords": ["thing1", "thing2", "time3"]}}, pages=["pages/case/detail"]
    )
    await decided(services, uid(mp))
    assert await worker.run_once() == 1
    item = (await items(db, uid(mp)))[-1]
    assert (item["status"], item["attempts"]) == ("failed", 1)
    assert item["last_error"].startswith("41030")


@pytest.mark.gen_test
async def test_a_case_number_goes_whole_in_a_thing_and_never_mangled(
    litigant: Litigant, db: Database, settings: Settings, clock: FixedClock
) -> None:
    mp = await litigant()
    case_no = "（2026）京0105民初1234号"
    templates = {
        "as_thing": {
            "template_id": "t-thing",
            "fields": {"thing1": "title", "thing2": "data.case_no"},
        },
        "as_string": {
            "template_id": "t-string",
            "fields": {"thing1": "title", "character_string2": "data.case_no"},
        },
    }
    service = NotificationService(db, load_settings(notifications={"templates": templates}), clock)
    await SubscriptionStore(db).grant(uid(mp), ["t-thing", "t-string"], clock.now())
    for name in templates:
        await service.notify(
            [uid(mp)],
            "case_update",
            "开庭通知",
            "请按时到庭",
            template=name,
            data={"case_no": case_no},
        )
    assert await db["inbox"].count_documents({"user_id": uid(mp)}) == 2  # both in the inbox
    [item] = await items(db, uid(mp))  # only the thing keeps it whole; no mangled push
    assert item["template_id"] == "t-thing"
    assert item["data"]["thing2"] == {"value": case_no}


@pytest.mark.gen_test
async def test_a_long_term_template_sends_without_using_up_the_acceptance(
    litigant: Litigant,
    services: Services,
    db: Database,
    emulator: Emulator,
    settings: Settings,
    clock: FixedClock,
) -> None:
    mp = await litigant()
    emulator.state.register_templates(
        {DECIDED: {"keywords": ["thing1", "thing2", "time3"], "long_term": True}}
    )
    await mp.accept_subscriptions([DECIDED])  # accepted once
    templates = dict(settings.notifications.templates)
    templates["filing_decided"] = templates["filing_decided"].model_copy(update={"long_term": True})
    config = settings.notifications.model_copy(update={"templates": templates})
    worker = OutboxWorker(db, config, services.wechat, clock)
    for _ in range(3):
        await decided(services, uid(mp))
    assert await worker.run_once() == 3
    assert [i["status"] for i in await items(db, uid(mp))] == ["sent"] * 3
    assert len(await mp.subscribe_messages()) == 3
    assert await quota(db, uid(mp)) == 1
    assert emulator.state.quotas_for(mp.openid or "")[DECIDED] == 1

    # a one-time template, by contrast, sends once per acceptance
    worker.long_term = frozenset()  # as built from a config without the flag
    emulator.state.register_templates({DECIDED: {"keywords": ["thing1", "thing2", "time3"]}})
    await decided(services, uid(mp))
    await decided(services, uid(mp))
    assert await worker.run_once() == 2
    assert [i["status"] for i in (await items(db, uid(mp)))[3:]] == ["sent", "skipped_no_quota"]
