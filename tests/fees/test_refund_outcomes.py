"""Refunds as WeChat Pay behaves (issue 13), over HTTP against the emulator.

The rules cited are WeChat Pay's own documents:
- 申请退款 (pay.weixin.qq.com/doc/v3/merchant/4012556457): "交易时间超过一年的订单无法提交退款
  （按支付成功时间+365天计算）", "每个支付订单的部分退款次数不能超过50次", "同一笔订单多次退款的请求
  需相隔1分钟"; its error NOT_ENOUGH (余额不足).
- 退款结果通知 / 查询单笔退款: ABNORMAL "退款异常，退款到银行发现用户的卡作废或者冻结了，导致原路
  退款银行卡失败，可前往商户平台-交易中心，手动处理此笔退款" -- the money is not back with the
  merchant, so it is never refundable again; CLOSED "退款关闭" is.
- 发起异常退款 (POST /v3/refund/domestic/refunds/{refund_id}/apply-abnormal-refund): to the
  user's bank card (bank_type, bank_account, real_name) or to the merchant's bank account.
- 查询单笔退款: "建议查询退款状态在提交退款申请后1分钟发起".
"""

from __future__ import annotations

import pytest
from bson import ObjectId

from miniapp_stubs.emulator import Emulator
from server.app import Services
from server.platform.clock import FixedClock
from tests.factories import FEE_100K, PAY_MCHID, STAFF_PASSWORD, Litigant, Staff, kinds, paid_case
from tests.fees.test_refunds import settle

CARD = {
    "method": "user_bank_card",
    "bank_type": "ICBC_DEBIT",
    "bank_account": "6222020200112233445",
    "real_name": "张三",
}


@pytest.fixture(autouse=True)
def settled_by_hand(emulator: Emulator) -> None:
    emulator.pay.refund_seconds = None


async def out_refund_no(services: Services, refund_id: str) -> str:
    raw = await services.db["refunds"].find_one({"_id": ObjectId(refund_id)})
    assert raw is not None
    return str(raw["out_refund_no"])


@pytest.mark.gen_test(timeout=120)
async def test_an_abnormal_refund_never_refunds_twice(
    litigant: Litigant, staff: Staff, emulator: Emulator, services: Services, clock: FixedClock
) -> None:
    case_id, order, plaintiff, _, clerk = await paid_case(litigant, staff, emulator)
    pid = order["payment_id"]
    first = await clerk.refund(pid, {"reason": "dismissed"})
    assert first.status == 201 and first.body["amount_fen"] == FEE_100K
    await settle(emulator, services, first.body["id"], "ABNORMAL")  # callback, and its repeat

    fees = (await plaintiff.fees(case_id)).body
    assert [r["status"] for r in fees["refunds"]] == ["abnormal"]
    assert (await services.payments.load(pid)).refundable_fen == 0  # the money is not back
    clock.advance(minutes=2)
    again = await clerk.refund(pid, {"reason": "dismissed"})
    assert (again.status, again.error_code) == (422, "nothing_to_refund")
    yuan = await clerk.refund(pid, {"reason": "other", "amount_fen": 100})
    assert (yuan.status, yuan.error_code) == (409, "refund_exceeds_paid")
    assert await services.db["refunds"].count_documents({}) == 1

    # the sweep asks WeChat Pay: still ABNORMAL, nothing changes
    assert await services.refunds.sweep_processing() == 0
    # staff resolve it: judges may not, bad input is 422, another court's clerk sees nothing
    judge = await staff("judge")
    assert (await judge.resolve_refund(first.body["id"], CARD)).status == 403
    far = await staff("clerk", court_id="sh-pudong")
    res = await far.resolve_refund(first.body["id"], CARD)
    assert (res.status, res.error_code) == (404, "refund_not_found")
    for bad in (
        {"method": "user_bank_card"},
        {**CARD, "bank_account": "12ab"},
        {"method": "offline"},
        {"method": "merchant_bank_card", "bank_account": "6222020200112233445"},
        {"method": "cash"},
    ):
        res = await clerk.resolve_refund(first.body["id"], bad)
        assert res.status == 422, (bad, res.body)
    sent = await clerk.resolve_refund(first.body["id"], CARD)
    assert sent.status == 200, sent.body
    assert sent.body["status"] == "processing" and sent.body["resolution"] == "user_bank_card"
    number = await out_refund_no(services, first.body["id"])
    assert emulator.pay.refunds.get(PAY_MCHID, number).abnormal_type == "USER_BANK_CARD"
    twice = await clerk.resolve_refund(first.body["id"], CARD)
    assert (twice.status, twice.error_code) == (409, "refund_not_abnormal")

    await settle(emulator, services, first.body["id"], "SUCCESS")
    paid = (await plaintiff.payment(pid)).body
    assert paid["status"] == "refunded" and paid["refunded_fen"] == FEE_100K
    assert (await kinds(plaintiff)).count("refund_succeeded") == 1
    # WeChat Pay paid it back once: one refund, for the fee, nothing left to refund there
    assert emulator.pay.refunds.refunded(emulator.pay.order_by_no(paid_no(pid))) == FEE_100K
    raw = await services.db["refunds"].find_one({"_id": ObjectId(first.body["id"])})
    assert raw is not None and raw["resolution"]["account_tail"] == "3445"
    assert "6222020200112233445" not in str(raw)  # the card number is never stored


def paid_no(payment_id: str) -> str:
    return f"MC{payment_id}"


@pytest.mark.gen_test(timeout=120)
async def test_an_abnormal_refund_settled_offline_is_recorded(
    litigant: Litigant, staff: Staff, emulator: Emulator, services: Services
) -> None:
    _, order, plaintiff, _, clerk = await paid_case(litigant, staff, emulator)
    pid = order["payment_id"]
    first = await clerk.refund(pid, {"reason": "other", "amount_fen": 10_000})
    await settle(emulator, services, first.body["id"], "ABNORMAL")
    admin = await staff("admin")
    done = await admin.resolve_refund(
        first.body["id"], {"method": "offline", "note": "已于窗口以现金退还，收据号0012"}
    )
    assert done.status == 200, done.body
    assert done.body["status"] == "succeeded" and done.body["resolution"] == "offline"
    paid = (await plaintiff.payment(pid)).body
    assert paid["status"] == "partially_refunded" and paid["refunded_fen"] == 10_000
    assert (await services.payments.load(pid)).refundable_fen == FEE_100K - 10_000
    again = await admin.resolve_refund(first.body["id"], {"method": "offline", "note": "再次"})
    assert (again.status, again.error_code) == (409, "refund_not_abnormal")
    audit = await services.db["audit"].count_documents({"action": "refund.resolve"})
    assert audit == 1


@pytest.mark.gen_test(timeout=120)
async def test_a_closed_refund_gives_the_amount_back_once(
    litigant: Litigant, staff: Staff, emulator: Emulator, services: Services, clock: FixedClock
) -> None:
    _, order, _, _, clerk = await paid_case(litigant, staff, emulator)
    pid = order["payment_id"]
    first = await clerk.refund(pid, {"reason": "other", "amount_fen": 30_000})
    await settle(emulator, services, first.body["id"], "CLOSED")  # delivered twice
    clock.advance(minutes=2)
    assert await services.refunds.sweep_processing() == 0  # and found closed by query
    assert (await services.payments.load(pid)).refundable_fen == FEE_100K


@pytest.mark.gen_test(timeout=120)
async def test_wechat_pay_refund_limits_answered_in_chinese(
    litigant: Litigant, staff: Staff, emulator: Emulator, services: Services, clock: FixedClock
) -> None:
    _, order, _, _, clerk = await paid_case(litigant, staff, emulator)
    pid = order["payment_id"]
    small = {"reason": "other", "amount_fen": 100}
    assert (await clerk.refund(pid, small)).status == 201
    # "同一笔订单多次退款的请求需相隔1分钟"
    soon = await clerk.refund(pid, small)
    assert (soon.status, soon.error_code) == (429, "refund_too_frequent")
    assert "1分钟" in soon.body["error"]["message"]
    assert soon.body["error"]["details"]["retry_after"] == 60

    # NOT_ENOUGH: the merchant's balance cannot pay it; the amount stays refundable
    clock.advance(minutes=1)
    res = await clerk.post(f"{emulator.url}/_emulator/pay/balance", {"fen": 50})
    assert res.status == 200
    poor = await clerk.refund(pid, small)
    assert (poor.status, poor.error_code) == (409, "refund_balance_insufficient")
    assert "余额不足" in poor.body["error"]["message"]
    assert (await services.payments.load(pid)).refundable_fen == FEE_100K - 100
    await clerk.post(f"{emulator.url}/_emulator/pay/balance", {"fen": None})

    # "每个支付订单的部分退款次数不能超过50次" (the count WeChat Pay keeps, set here directly)
    clock.advance(minutes=1)
    await services.db["payments"].update_one({"_id": ObjectId(pid)}, {"$set": {"refund_count": 50}})
    many = await clerk.refund(pid, small)
    assert (many.status, many.error_code) == (409, "refund_count_exceeded")
    await services.db["payments"].update_one({"_id": ObjectId(pid)}, {"$set": {"refund_count": 2}})

    # "交易时间超过一年的订单无法提交退款（按支付成功时间+365天计算）"
    clock.advance(days=366)
    await clerk.login(clerk.user["username"], STAFF_PASSWORD)  # type: ignore[index]
    late = await clerk.refund(pid, small)
    assert (late.status, late.error_code) == (409, "refund_window_closed")
    assert "365天" in late.body["error"]["message"]


@pytest.mark.gen_test(timeout=120)
async def test_the_sweep_settles_refunds_whose_callback_was_lost(
    litigant: Litigant, staff: Staff, emulator: Emulator, services: Services, clock: FixedClock
) -> None:
    _, order, _, _, clerk = await paid_case(litigant, staff, emulator)
    pid = order["payment_id"]
    emulator.pay.notifier.dropped.add(paid_no(pid))  # every callback of it lost
    first = await clerk.refund(pid, {"reason": "other", "amount_fen": 20_000})
    emulator.pay.settle_refund(await out_refund_no(services, first.body["id"]))
    await emulator.pay.notifier.idle()
    assert await services.refunds.sweep_processing() == 0  # too early: asked a minute later
    clock.advance(minutes=1)
    assert await services.refunds.sweep_processing() == 1
    assert await services.refunds.sweep_processing() == 0  # settled once
    payment = await services.payments.load(pid)
    assert payment.refunded_fen == 20_000 and payment.status == "partially_refunded"

    # a refund WeChat Pay never received (it failed while we asked) is asked again, same number
    await clerk.post(f"{emulator.url}/_emulator/pay/fail-next", {"count": 1})
    lost = await clerk.refund(pid, {"reason": "other", "amount_fen": 5_000})
    assert (lost.status, lost.error_code) == (503, "wechatpay_unavailable")
    raw = await services.db["refunds"].find_one({"status": "processing"})
    assert raw is not None and raw["amount_fen"] == 5_000
    with pytest.raises(KeyError):
        emulator.pay.refunds.refunds[(PAY_MCHID, raw["out_refund_no"])]
    clock.advance(minutes=1)
    assert await services.refunds.sweep_processing() == 0  # asked again: PROCESSING there
    assert emulator.pay.refunds.get(PAY_MCHID, raw["out_refund_no"]).status == "PROCESSING"


@pytest.mark.gen_test(timeout=60)
async def test_reconciliation_does_not_ask_for_bills_older_than_three_months(
    staff: Staff, emulator: Emulator
) -> None:
    """申请交易账单: "此接口仅可下载三个月内的账单" -- we do not ask WeChat Pay for older ones."""
    admin = await staff("admin", court_id=None)
    pending = await admin.post(f"{emulator.url}/_emulator/pay/fail-next", {"count": 1})
    assert pending.body == {"pending": 1}
    old = await admin.post("/api/v1/admin/reconcile", {"date": "2026-08-22"})  # today 11-23
    assert (old.status, old.error_code) == (422, "bill_too_old")
    assert "三个月" in old.body["error"]["message"]
    assert len(emulator.pay.failures) == 1  # WeChat Pay was not asked
