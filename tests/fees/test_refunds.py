"""Refunds (never more than paid, even racing; the law's amounts computed) and the daily
reconciliation against WeChat Pay's bill."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import os
from typing import Any

import pytest
from bson import ObjectId

from miniapp_stubs.emulator import Emulator
from server import cli
from server.app import Services
from server.platform.clock import FixedClock
from tests.factories import (
    FEE_100K,
    PAY_APIV3_KEY,
    PAY_MCHID,
    PAY_SERIAL,
    STAFF_PASSWORD,
    Litigant,
    PayKeys,
    Staff,
    accepted_case,
    id_number,
    kinds,
    notice_of,
    paid_but_lost,
    paid_case,
    submitted,
)


@pytest.fixture(autouse=True)
def settled_by_hand(emulator: Emulator) -> None:
    """Refunds stay PROCESSING until a test settles them: no callback may arrive while a test
    is ending (an app stopped inside a transaction would leave SecantusDB's lock held)."""
    emulator.pay.refund_seconds = None


async def settle(
    emulator: Emulator, services: Services, refund_id: str, status: str = "SUCCESS"
) -> None:
    """WeChat Pay finishes the refund and posts its callback."""
    raw = await services.db["refunds"].find_one({"_id": ObjectId(refund_id)})
    assert raw is not None
    emulator.pay.settle_refund(raw["out_refund_no"], status)
    await emulator.pay.notifier.idle()


@pytest.mark.gen_test(timeout=120)
async def test_a_partial_refund_then_the_rest(
    litigant: Litigant, staff: Staff, emulator: Emulator, services: Services, clock: FixedClock
) -> None:
    case_id, order, plaintiff, _, clerk = await paid_case(litigant, staff, emulator)
    pid = order["payment_id"]
    first = await clerk.refund(
        pid,
        {"reason": "other", "amount_fen": 50_000, "note": "多缴"},
        idempotency_key="refund-first",
    )
    assert first.status == 201, first.body
    assert first.body["status"] == "processing" and first.body["amount_fen"] == 50_000
    again = await clerk.refund(
        pid,
        {"reason": "other", "amount_fen": 50_000, "note": "多缴"},
        idempotency_key="refund-first",
    )
    assert again.body == first.body
    assert await services.db["refunds"].count_documents({}) == 1

    await settle(emulator, services, first.body["id"])
    fees = (await plaintiff.fees(case_id)).body
    assert [r["status"] for r in fees["refunds"]] == ["succeeded"]
    assert fees["payments"][0]["status"] == "partially_refunded"
    assert fees["payments"][0]["refunded_fen"] == 50_000
    assert (await kinds(plaintiff)).count("refund_succeeded") == 1

    too_much = await clerk.refund(pid, {"reason": "other", "amount_fen": FEE_100K})
    assert (too_much.status, too_much.error_code) == (409, "refund_exceeds_paid")
    assert too_much.body["error"]["details"]["refundable_fen"] == FEE_100K - 50_000

    clock.advance(minutes=1)  # WeChat Pay: one refund of an order a minute (issue 13)
    # two refunds race for what is left: one gets it
    rest = {"reason": "other", "amount_fen": FEE_100K - 50_000}
    answers = await asyncio.gather(clerk.refund(pid, rest), clerk.refund(pid, rest))
    assert sorted(a.status for a in answers) == [201, 409]
    (won,) = [a for a in answers if a.status == 201]
    await settle(emulator, services, won.body["id"])
    clock.advance(minutes=1)  # WeChat Pay: one refund of an order a minute (issue 13)
    paid = (await plaintiff.payment(pid)).body
    assert paid["status"] == "refunded" and paid["refunded_fen"] == FEE_100K
    assert (await clerk.refund(pid, {"reason": "dismissed"})).status == 409


@pytest.mark.gen_test(timeout=120)
async def test_the_law_computes_the_refund(
    litigant: Litigant, staff: Staff, emulator: Emulator, clock: FixedClock
) -> None:
    _, order, _, _, clerk = await paid_case(litigant, staff, emulator)
    pid = order["payment_id"]
    # claim reduced from 100,000 to 50,000 yuan: 2,300 - (50 + 2.5% of 40,000 = 1,050)
    reduced = await clerk.refund(pid, {"reason": "reduced_claim", "new_amount_fen": 5_000_000})
    assert reduced.status == 201 and reduced.body["amount_fen"] == 125_000, reduced.body
    clock.advance(minutes=1)  # WeChat Pay: one refund of an order a minute (issue 13)
    # then withdrawn: half of the 1,050 the court still holds goes back
    halved = await clerk.refund(pid, {"reason": "withdrawal"})
    assert halved.status == 201 and halved.body["amount_fen"] == 52_500, halved.body
    clock.advance(minutes=1)  # WeChat Pay: one refund of an order a minute (issue 13)
    # dismissed: the rest
    rest = await clerk.refund(pid, {"reason": "dismissed"})
    assert rest.status == 201 and rest.body["amount_fen"] == 52_500, rest.body
    bad = [
        ({"reason": "withdrawal", "amount_fen": 100}, 422),  # not typed by hand
        ({"reason": "other"}, 422),
        ({"reason": "reduced_claim"}, 422),
        ({"reason": "reduced_claim", "new_amount_fen": 20_000_000}, 422),  # more, not less
        ({"reason": "other", "amount_fen": -1}, 422),
        ({"reason": "other", "amount_fen": 1.5}, 422),
        ({"reason": "gift"}, 422),
    ]
    for body, status in bad:
        res = await clerk.refund(pid, body)
        assert res.status == status, (body, res.body)


@pytest.mark.gen_test(timeout=120)
async def test_who_may_refund(
    litigant: Litigant, staff: Staff, emulator: Emulator, services: Services
) -> None:
    _, order, plaintiff, _, _ = await paid_case(litigant, staff, emulator)
    far = await staff("clerk", court_id="sh-pudong")
    res = await far.refund(order["payment_id"], {"reason": "dismissed"})
    assert (res.status, res.error_code) == (404, "payment_not_found")
    res = await plaintiff.post(
        f"/api/v1/payments/{order['payment_id']}/refunds", {"reason": "dismissed"}
    )
    assert res.status == 403
    assert await services.db["refunds"].count_documents({}) == 0

    # an unpaid order cannot be refunded
    case2, plaintiff2, _, clerk2 = await accepted_other(litigant, staff)
    notice = await notice_of(plaintiff2, case2)
    pending = await plaintiff2.pay_notice(notice["id"])
    res = await clerk2.refund(pending.body["payment_id"], {"reason": "dismissed"})
    assert (res.status, res.error_code) == (409, "payment_not_paid")


async def accepted_other(litigant: Litigant, staff: Staff) -> Any:
    """A second case, filed by someone else (the factories' identities are fixed)."""
    mp = await litigant(identity=False)
    assert (await mp.verify_identity("王五", id_number("19800808", "110105", "456"))).status == 200
    clerk = await staff("clerk")
    person = {
        "type": "person",
        "name": "王五",
        "id_number": id_number("19800808", "110105", "456"),
        "phone": "13700137000",
        "address": "北京市朝阳区建国路2号",
    }
    filing = await submitted(mp, plaintiffs=[person])
    res = await clerk.accept_filing(filing["id"])
    assert res.status == 200, res.body
    return res.body["case_id"], mp, None, clerk


@pytest.mark.gen_test(timeout=120)
async def test_a_refund_wechat_pay_closes_can_be_made_again(
    litigant: Litigant, staff: Staff, emulator: Emulator, services: Services, clock: FixedClock
) -> None:
    _, order, _, _, clerk = await paid_case(litigant, staff, emulator)
    pid = order["payment_id"]
    first = await clerk.refund(pid, {"reason": "dismissed"})
    assert first.status == 201 and first.body["amount_fen"] == FEE_100K
    await settle(emulator, services, first.body["id"], "CLOSED")
    assert (await services.payments.load(pid)).refundable_fen == FEE_100K
    clock.advance(minutes=1)  # WeChat Pay: one refund of an order a minute (issue 13)
    again = await clerk.refund(pid, {"reason": "dismissed"})
    assert again.status == 201, again.body


@pytest.mark.gen_test(timeout=120)
async def test_reconciliation_mends_a_lost_callback_and_reports_the_rest(
    litigant: Litigant, staff: Staff, emulator: Emulator, services: Services, clock: FixedClock
) -> None:
    case_id, plaintiff, _, _ = await accepted_case(litigant, staff)
    notice = await notice_of(plaintiff, case_id)
    order = await plaintiff.pay_notice(notice["id"])
    emulator.pay.notifier.dropped.add(f"MC{order.body['payment_id']}")  # the callback is lost
    assert (await plaintiff.request_payment(order.body["pay_params"])).status == 200
    await emulator.pay.notifier.idle()
    # and a payment we believe in that WeChat Pay never saw
    ghost = await accepted_other(litigant, staff)
    ghost_notice = await notice_of(ghost[1], ghost[0])
    ghost_order = await ghost[1].pay_notice(ghost_notice["id"])
    await services.db["payments"].update_one(
        {"out_trade_no": f"MC{ghost_order.body['payment_id']}"},
        {"$set": {"status": "paid", "paid_at": clock.now()}, "$unset": {"open_for": ""}},
    )

    admin = await staff("admin", court_id=None)
    court_admin = await staff("admin")
    day = {"date": "2026-11-23"}
    early = await admin.post("/api/v1/admin/reconcile", day)  # before 10:00 the next day
    assert (early.status, early.error_code) == (422, "bill_unavailable")
    clock.set(dt.datetime(2026, 11, 24, 3, 0, tzinfo=dt.UTC))  # 11:00 Beijing
    await admin.login(admin.user["username"], STAFF_PASSWORD)  # type: ignore[index]
    await court_admin.login(court_admin.user["username"], STAFF_PASSWORD)  # type: ignore[index]
    refused = await court_admin.post("/api/v1/admin/reconcile", day)
    assert (refused.status, refused.error_code) == (403, "system_admin_only")

    dry = await admin.post("/api/v1/admin/reconcile", {**day, "mend": False})
    assert dry.status == 200, dry.body
    assert [f["action"] for f in dry.body["only_wechat"]] == ["report"]
    assert (await services.payments.load(order.body["payment_id"])).status == "pending"

    report = (await admin.post("/api/v1/admin/reconcile", day)).body
    assert report["wechat_paid"] == 1 and report["ours_paid"] == 1
    (mended,) = report["only_wechat"]
    assert mended["out_trade_no"] == f"MC{order.body['payment_id']}"
    assert mended["action"] == "mended" and mended["amount_fen"] == FEE_100K
    (ghost_finding,) = report["only_ours"]
    assert ghost_finding["out_trade_no"] == f"MC{ghost_order.body['payment_id']}"
    assert ghost_finding["theirs"] == "NOTPAY" and ghost_finding["action"] == "report"
    assert (await services.payments.load(order.body["payment_id"])).status == "paid"
    await plaintiff.login()
    assert (await notice_of(plaintiff, case_id))["status"] == "paid"

    again = (await admin.post("/api/v1/admin/reconcile", day)).body  # mending twice: once
    assert again["only_wechat"] == [] and len(again["only_ours"]) == 1
    assert (await kinds(plaintiff)).count("payment_paid") == 1


def test_the_command_needs_the_real_services(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [k for k in os.environ if k.startswith("MICROCOURT_")]:
        monkeypatch.delenv(name)
    assert cli.main(["reconcile", "--date", "2026-11-23"]) == 2
    assert "POST /api/v1/admin/reconcile" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["reconcile", "--date", "23/11/2026"])


@pytest.mark.gen_test(timeout=120)
async def test_the_command_reconciles_a_day(
    litigant: Litigant,
    staff: Staff,
    emulator: Emulator,
    services: Services,
    clock: FixedClock,
    mongo_uri: str,
    pay_keys: PayKeys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, _, order = await paid_but_lost(litigant, staff, emulator)
    clock.set(dt.datetime(2026, 11, 24, 3, 0, tzinfo=dt.UTC))  # the bill is ready at 10:00

    env = {
        "MONGODB__URI": mongo_uri,
        "MONGODB__DATABASE": services.db.name,
        "SECURITY__TOKEN_SECRET": "t" * 40,
        "SECURITY__DATA_KEY": base64.b64encode(b"k" * 32).decode(),
        "SECURITY__HASH_KEY": "h" * 40,
        "WECHATPAY__MCHID": PAY_MCHID,
        "WECHATPAY__APPID": services.settings.wechatpay.appid,
        "WECHATPAY__API_BASE": emulator.url,
        "WECHATPAY__NOTIFY_BASE_URL": "https://court.example.cn",
        "WECHATPAY__MERCHANT_SERIAL_NO": PAY_SERIAL,
        "WECHATPAY__MERCHANT_PRIVATE_KEY": pay_keys.merchant,
        "WECHATPAY__APIV3_KEY": PAY_APIV3_KEY,
        "WECHATPAY__PLATFORM_PUBLIC_KEY": emulator.platform_public_key_pem,
        "WECHATPAY__PLATFORM_PUBLIC_KEY_ID": emulator.platform_public_key_id,
    }
    for name, value in env.items():
        monkeypatch.setenv(f"MICROCOURT_{name}", value)
    argv = ["reconcile", "--date", "2026-11-23"]
    assert await asyncio.to_thread(cli.main, [*argv, "--dry-run"]) == 1
    assert (await services.payments.load(order.body["payment_id"])).status == "pending"
    assert await asyncio.to_thread(cli.main, argv) == 1  # found, and mended
    assert (await services.payments.load(order.body["payment_id"])).status == "paid"
    assert await asyncio.to_thread(cli.main, argv) == 0  # nothing left
