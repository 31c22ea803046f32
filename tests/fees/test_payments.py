"""Paying fee notices through WeChat Pay (the emulator), callbacks, queries and expiry."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from miniapp_stubs.emulator import Emulator
from server.app import Services
from server.platform.clock import FixedClock
from tests.factories import (
    FEE_100K,
    Litigant,
    Staff,
    accepted_case,
    kinds,
    notice_of,
    paid_but_lost,
)


async def post_callback(url: str, body: str, headers: dict[str, str]) -> tuple[int, Any]:
    try:
        res = await AsyncHTTPClient().fetch(
            url, method="POST", body=body, headers={"Content-Type": "application/json", **headers}
        )
    except HTTPClientError as e:
        assert e.response is not None
        return e.code, json.loads(e.response.body or b"null")
    return res.code, None


@pytest.mark.gen_test(timeout=90)
async def test_a_fee_paid_once_however_often_wechat_pay_calls_back(
    litigant: Litigant, staff: Staff, emulator: Emulator, services: Services
) -> None:
    case_id, plaintiff, _, clerk = await accepted_case(litigant, staff)
    notice = await notice_of(plaintiff, case_id)

    order = await plaintiff.pay_notice(notice["id"], idempotency_key="pay-once-1")
    assert order.status == 201, order.body
    params = order.body["pay_params"]
    assert params["appId"] == services.settings.wechatpay.appid
    assert params["package"].startswith("prepay_id=") and params["signType"] == "RSA"
    assert order.body["amount_fen"] == FEE_100K and order.body["status"] == "pending"
    replay = await plaintiff.pay_notice(notice["id"], idempotency_key="pay-once-1")
    assert replay.body == order.body and replay.headers.get("Idempotent-Replayed") == "true"
    again = await plaintiff.pay_notice(notice["id"], idempotency_key="pay-once-2")  # a new tap
    assert again.status == 200 and again.body["payment_id"] == order.body["payment_id"]
    assert await services.db["payments"].count_documents({}) == 1

    assert (await plaintiff.request_payment(params)).status == 200
    await emulator.pay.notifier.idle()
    deliveries = [
        d for d in emulator.pay.notifier.deliveries if d.event_type == "TRANSACTION.SUCCESS"
    ]
    statuses = [a.status for d in deliveries for a in d.attempts]
    assert len(statuses) >= 2 and set(statuses) == {204}  # WeChat Pay repeats; we ack each

    # the same signed callback, many times at once: credited exactly once
    body = deliveries[0].body
    url = deliveries[0].url
    headers = emulator.pay.notifier.signed_headers(body)
    answers = await asyncio.gather(*(post_callback(url, body, headers) for _ in range(8)))
    assert {a[0] for a in answers} == {204}

    paid = (await plaintiff.payment(order.body["payment_id"])).body
    assert paid["status"] == "paid" and paid["paid_at"] and paid["pay_params"] is None
    fees = (await plaintiff.fees(case_id)).body
    assert fees["notices"][0]["status"] == "paid"
    assert fees["notices"][0]["paid_fen"] == FEE_100K
    assert [p["payment_id"] for p in fees["payments"]] == [order.body["payment_id"]]
    case = (await plaintiff.case(case_id)).body
    assert case["fees"]["status"] == "paid" and case["fees"]["paid_fen"] == FEE_100K
    assert [e["kind"] for e in case["timeline"]].count("缴费") == 1
    assert (await kinds(plaintiff)).count("payment_paid") == 1
    assert (await kinds(clerk)).count("payment_paid") == 1

    again = await plaintiff.pay_notice(notice["id"])
    assert (again.status, again.error_code) == (409, "fee_notice_paid")


@pytest.mark.gen_test(timeout=90)
async def test_forged_stale_and_tampered_callbacks_change_nothing(
    litigant: Litigant, staff: Staff, emulator: Emulator, services: Services, clock: FixedClock
) -> None:
    case_id, plaintiff, _, _ = await accepted_case(litigant, staff)
    notice = await notice_of(plaintiff, case_id)
    order = await plaintiff.pay_notice(notice["id"])
    out_trade_no = f"MC{order.body['payment_id']}"
    emulator.pay.notifier.dropped.add(out_trade_no)  # keep the real callback from us
    assert (await plaintiff.request_payment(order.body["pay_params"])).status == 200
    await emulator.pay.notifier.idle()
    (delivery,) = [d for d in emulator.pay.notifier.deliveries if d.out_trade_no == out_trade_no]
    body, url = delivery.body, delivery.url
    notifier = emulator.pay.notifier

    forged = {**notifier.signed_headers(body), "Wechatpay-Signature": "Zm9yZ2Vk"}
    envelope = json.loads(body)
    envelope["resource"]["ciphertext"] = "A" + envelope["resource"]["ciphertext"][1:]
    tampered = json.dumps(envelope, ensure_ascii=False)
    assert tampered != body
    stale = notifier.signed_headers(body, timestamp=clock.now().timestamp() - 301)
    future = notifier.signed_headers(body, timestamp=clock.now().timestamp() + 301)
    cases = [
        (forged, body, 401),
        ({}, body, 401),
        (notifier.signed_headers(body), tampered, 401),  # the signature covers the body
        (notifier.signed_headers(tampered), tampered, 400),  # signed, but undecryptable
        (stale, body, 401),
        (future, body, 401),
        (notifier.signed_headers("{}"), "{}", 400),
    ]
    for headers, text, status in cases:
        code, answer = await post_callback(url, text, headers)
        assert code == status and answer["code"] == "FAIL", (headers, code, answer)
    assert (await services.payments.load(order.body["payment_id"])).status == "pending"
    assert (await notice_of(plaintiff, case_id))["paid_fen"] == 0

    # a genuine one, within five minutes: accepted
    clock.advance(minutes=4)
    assert (await post_callback(url, body, notifier.signed_headers(body)))[0] == 204
    assert (await notice_of(plaintiff, case_id))["status"] == "paid"


@pytest.mark.gen_test(timeout=90)
async def test_a_lost_callback_is_found_by_asking_wechat_pay(
    litigant: Litigant, staff: Staff, emulator: Emulator
) -> None:
    case_id, plaintiff, order = await paid_but_lost(litigant, staff, emulator)
    assert (await notice_of(plaintiff, case_id))["status"] == "pending"
    res = await plaintiff.payment(order.body["payment_id"])  # the result page polls
    assert res.status == 200 and res.body["status"] == "paid"
    assert (await notice_of(plaintiff, case_id))["status"] == "paid"


@pytest.mark.gen_test(timeout=90)
async def test_unpaid_orders_close_after_their_time_limit(
    litigant: Litigant, staff: Staff, services: Services, clock: FixedClock
) -> None:
    case_id, plaintiff, _, _ = await accepted_case(litigant, staff)
    notice = await notice_of(plaintiff, case_id)
    first = await plaintiff.pay_notice(notice["id"])
    assert first.status == 201
    clock.advance(minutes=29)
    assert await services.payments.sweep_expired() == 0
    clock.advance(minutes=2)
    assert await services.payments.sweep_expired() == 1
    closed = await plaintiff.payment(first.body["payment_id"])
    assert closed.body["status"] == "closed" and closed.body["pay_params"] is None
    assert (await plaintiff.request_payment(first.body["pay_params"])).status == 409
    second = await plaintiff.pay_notice(notice["id"])  # a fresh order for the same notice
    assert second.status == 201 and second.body["payment_id"] != first.body["payment_id"]


@pytest.mark.gen_test(timeout=90)
async def test_who_may_pay_and_what(
    litigant: Litigant, staff: Staff, services: Services, emulator: Emulator
) -> None:
    case_id, plaintiff, defendant, clerk = await accepted_case(litigant, staff)
    notice = await notice_of(plaintiff, case_id)
    stranger = await litigant()
    for who in (defendant, stranger):  # not theirs to pay: nothing reveals it exists
        res = await who.pay_notice(notice["id"])
        assert (res.status, res.error_code) == (404, "fee_notice_not_found")
    for body in ({}, {"fee_notice_id": "nope"}, {"fee_notice_id": notice["id"], "x": 1}):
        res = await plaintiff.post("/api/v1/payments", body)
        assert res.status == 422, res.body
    missing = await plaintiff.pay_notice("0" * 24)
    assert missing.status == 404

    order = await plaintiff.pay_notice(notice["id"])
    for who in (defendant, stranger, await staff("clerk", court_id="sh-pudong")):
        res = await who.payment(order.body["payment_id"])
        assert (res.status, res.error_code) == (404, "payment_not_found")
    seen = await clerk.payment(order.body["payment_id"])
    assert seen.status == 200 and seen.body["pay_params"] is None  # staff never get them
    assert await services.db["payments"].count_documents({}) == 1


@pytest.mark.gen_test(timeout=90)
async def test_wechat_pay_down_leaves_no_open_order(
    litigant: Litigant, staff: Staff, emulator: Emulator, services: Services
) -> None:
    case_id, plaintiff, _, _ = await accepted_case(litigant, staff)
    notice = await notice_of(plaintiff, case_id)
    await plaintiff.post(f"{emulator.url}/_emulator/pay/fail-next", {"count": 1}, token="")
    down = await plaintiff.pay_notice(notice["id"])
    assert (down.status, down.error_code) == (503, "wechatpay_unavailable")
    assert await services.db["payments"].count_documents({"status": "pending"}) == 0
    ok = await plaintiff.pay_notice(notice["id"])
    assert ok.status == 201, ok.body


@pytest.mark.gen_test(timeout=90)
async def test_concurrent_taps_open_one_order(
    litigant: Litigant, staff: Staff, services: Services
) -> None:
    case_id, plaintiff, _, _ = await accepted_case(litigant, staff)
    notice = await notice_of(plaintiff, case_id)
    answers = await asyncio.gather(*(plaintiff.pay_notice(notice["id"]) for _ in range(5)))
    assert {a.status for a in answers} <= {200, 201}
    assert len({a.body["payment_id"] for a in answers}) == 1
    assert await services.db["payments"].count_documents({}) == 1
