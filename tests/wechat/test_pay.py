"""The WeChat Pay adapter through wechatpayv3 against the emulator: orders, the payer's side,
callbacks verified and decrypted, refunds, bills, and every error the service must handle."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from tornado.ioloop import IOLoop

from miniapp_stubs.client import MiniProgram
from miniapp_stubs.emulator import Emulator
from miniapp_stubs.wechatpay_state import FailNext
from server.platform.clock import FixedClock
from server.platform.config import Settings
from server.wechat.errors import (
    CallbackMalformed,
    CallbackRejected,
    CallbackSignatureInvalid,
    CallbackStale,
    CallbackUndecryptable,
)
from server.wechat.pay import WeChatPayAdapter
from server.wechat.pay_config import PayCredentials, load_private, private_pem, public_pem
from server.wechat.pay_models import (
    RefundStatus,
    TradeState,
    WeChatPayBadResponse,
    WeChatPayError,
    WeChatPayUnavailable,
)
from tests.factories import START, new_key
from tests.waiting import until

OPENID = "o" + "P" * 27


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Recorder:
    """Our notify endpoint's stand-in: records every callback, answers from a script."""

    url: str = ""
    calls: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # statuses to answer, then 204


class RecordHandler(tornado.web.RequestHandler):
    def initialize(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def post(self) -> None:
        rec = self.recorder
        rec.calls.append(Received(self.request.path, dict(self.request.headers), self.request.body))
        status = rec.answers.pop(0) if rec.answers else 204
        self.set_status(status)
        if status >= 400:
            self.finish({"code": "FAIL", "message": "失败"})


@pytest.fixture
def recorder(io_loop: IOLoop) -> Iterator[Recorder]:
    rec = Recorder()
    app = tornado.web.Application([(r"/notify/.*", RecordHandler, {"recorder": rec})])
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    rec.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/notify"
    yield rec
    server.stop()


def expire(clock: FixedClock, minutes: int = 30) -> dt.datetime:
    return clock.now() + dt.timedelta(minutes=minutes)


async def order(
    pay: WeChatPayAdapter, clock: FixedClock, no: str, fen: int = 10_000, **kw: Any
) -> str:
    args: dict[str, Any] = {
        "out_trade_no": no,
        "description": "北京市朝阳区人民法院-诉讼费",
        "amount_fen": fen,
        "openid": OPENID,
        "notify_url": "http://127.0.0.1:9/notify/pay",
        "time_expire": expire(clock),
        **kw,
    }
    return await pay.create_jsapi_order(**args)


def phone(emulator: Emulator) -> MiniProgram:
    mp = MiniProgram("http://127.0.0.1:9", emulator.url)
    mp.openid = OPENID
    return mp


@pytest.mark.gen_test(timeout=20)
async def test_order_paid_by_the_phone_and_the_callback_verified(
    wechatpay: WeChatPayAdapter,
    emulator: Emulator,
    recorder: Recorder,
    clock: FixedClock,
    pay_credentials: PayCredentials,
) -> None:
    prepay_id = await order(wechatpay, clock, "FEE2026112300001", notify_url=recorder.url + "/pay")
    assert prepay_id.startswith("wx20261123100000")
    before = await wechatpay.query_order("FEE2026112300001")
    assert before.trade_state == TradeState.NOTPAY and not before.paid
    assert before.amount.total == 10_000 and before.transaction_id is None

    params = wechatpay.pay_params(prepay_id)
    assert params["package"] == f"prepay_id={prepay_id}" and params["signType"] == "RSA"
    assert params["appId"] == pay_credentials.appid
    assert params["timeStamp"] == str(int(START.timestamp()))  # our clock, not the wall's
    message = (
        f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n"
    )
    merchant = load_private(pay_credentials.private_key_pem).public_key()
    merchant.verify(
        base64.b64decode(params["paySign"]), message.encode(), padding.PKCS1v15(), hashes.SHA256()
    )

    paid = await phone(emulator).request_payment(params)
    assert paid.status == 200, paid.body
    await until(lambda: len(recorder.calls) == 2)  # the callback, then WeChat Pay's repeat
    first, repeat = recorder.calls
    assert first.body == repeat.body and first.path == "/notify/pay"
    assert first.headers["Wechatpay-Timestamp"] == str(int(START.timestamp()))
    note = wechatpay.verify_callback(first.headers, first.body)
    assert wechatpay.verify_callback(repeat.headers, repeat.body).id == note.id
    assert (note.event_type, note.resource_type, note.summary) == (
        "TRANSACTION.SUCCESS",
        "encrypt-resource",
        "支付成功",
    )
    tx = note.transaction()
    assert tx.out_trade_no == "FEE2026112300001" and tx.trade_state == TradeState.SUCCESS
    assert tx.amount.total == tx.amount.payer_total == 10_000 and tx.payer.openid == OPENID
    assert tx.success_time == START and tx.transaction_id and len(tx.transaction_id) == 28
    assert tx.mchid == wechatpay.mchid and tx.appid == wechatpay.appid

    after = await wechatpay.query_order("FEE2026112300001")
    assert after == tx and after.paid
    again = await phone(emulator).request_payment(params)
    assert again.status == 409 and again.body["code"] == "SUCCESS"


@pytest.mark.gen_test(timeout=20)
async def test_callbacks_are_retried_until_acknowledged(
    wechatpay: WeChatPayAdapter, emulator: Emulator, recorder: Recorder, clock: FixedClock
) -> None:
    recorder.answers = [500, 401]
    prepay_id = await order(wechatpay, clock, "FEE0000000RETRY", notify_url=recorder.url + "/p")
    assert (await phone(emulator).request_payment({"prepay_id": prepay_id})).status == 200
    await emulator.pay.notifier.idle()
    assert len(recorder.calls) == 4  # two refused, one acknowledged, one repeat
    [delivery] = emulator.pay.notifier.deliveries
    assert [a.status for a in delivery.attempts] == [500, 401, 204, 204]
    assert delivery.delivered and delivery.done and not delivery.dropped
    assert len({wechatpay.verify_callback(c.headers, c.body).id for c in recorder.calls}) == 1


@pytest.mark.gen_test(timeout=20)
async def test_a_dropped_callback_never_arrives_but_the_query_tells(
    wechatpay: WeChatPayAdapter, emulator: Emulator, recorder: Recorder, clock: FixedClock
) -> None:
    prepay_id = await order(wechatpay, clock, "FEE0000000LOST", notify_url=recorder.url + "/p")
    emulator.pay.notifier.dropped.add("FEE0000000LOST")
    assert (await phone(emulator).request_payment({"prepay_id": prepay_id})).status == 200
    await emulator.pay.notifier.idle()
    assert recorder.calls == []
    [delivery] = emulator.pay.notifier.deliveries
    assert delivery.dropped and not delivery.delivered and delivery.attempts == []
    assert (await wechatpay.query_order("FEE0000000LOST")).trade_state == TradeState.SUCCESS


async def _one_callback(
    wechatpay: WeChatPayAdapter, emulator: Emulator, recorder: Recorder, clock: FixedClock
) -> Received:
    prepay_id = await order(wechatpay, clock, "FEE00000VERIFY", notify_url=recorder.url + "/p")
    await phone(emulator).request_payment({"prepay_id": prepay_id})
    await until(lambda: bool(recorder.calls))
    return recorder.calls[0]


@pytest.mark.gen_test(timeout=20)
async def test_untrusted_callbacks_are_refused_each_with_its_reason(
    wechatpay: WeChatPayAdapter,
    emulator: Emulator,
    recorder: Recorder,
    clock: FixedClock,
) -> None:
    got = await _one_callback(wechatpay, emulator, recorder, clock)
    h, body = got.headers, got.body

    def refused(headers: dict[str, str], raw: bytes) -> CallbackRejected:
        with pytest.raises(CallbackRejected) as caught:
            wechatpay.verify_callback(headers, raw)
        return caught.value

    for name in ("Wechatpay-Signature", "Wechatpay-Timestamp", "Wechatpay-Nonce"):
        missing = {k: v for k, v in h.items() if k != name}
        assert isinstance(refused(missing, body), CallbackSignatureInvalid)
    forged = emulator.pay.notifier.signed_headers(body.decode())
    other = load_private(private_pem(new_key()))
    forged["Wechatpay-Signature"] = base64.b64encode(
        other.sign(
            f"{forged['Wechatpay-Timestamp']}\n{forged['Wechatpay-Nonce']}\n".encode()
            + body
            + b"\n",
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    ).decode()
    bad = refused(forged, body)
    assert isinstance(bad, CallbackSignatureInvalid) and bad.status == 401
    assert bad.answer() == {"code": "FAIL", "message": "签名验证失败"}
    tampered = body.replace(b"TRANSACTION.SUCCESS", b"TRANSACTION.SUCCESX")
    assert isinstance(refused(h, tampered), CallbackSignatureInvalid)
    assert isinstance(
        refused({**h, "Wechatpay-Serial": "PUB_KEY_ID_0000"}, body), CallbackSignatureInvalid
    )
    assert isinstance(refused({**h, "Wechatpay-Signature": "%%%"}, body), CallbackSignatureInvalid)

    # the timestamp: 5 minutes either way of our clock, and no more
    clock.advance(minutes=5)
    assert wechatpay.verify_callback(h, body).event_type == "TRANSACTION.SUCCESS"
    clock.advance(seconds=1)
    stale = refused(h, body)
    assert isinstance(stale, CallbackStale) and stale.status == 401
    clock.set(START - dt.timedelta(minutes=5, seconds=1))
    assert isinstance(refused(h, body), CallbackStale)
    clock.set(START)

    # genuinely signed by the platform, but not a notification we can read
    def signed(raw: bytes) -> tuple[dict[str, str], bytes]:
        return emulator.pay.notifier.signed_headers(raw.decode()), raw

    envelope = json.loads(body)
    broken = {
        **envelope,
        "resource": {
            **envelope["resource"],
            "ciphertext": "AAAA" + envelope["resource"]["ciphertext"][4:],
        },
    }
    undecryptable = refused(*signed(json.dumps(broken).encode()))
    assert isinstance(undecryptable, CallbackUndecryptable) and undecryptable.status == 400
    aad = {**envelope, "resource": {**envelope["resource"], "associated_data": "refund"}}
    assert isinstance(refused(*signed(json.dumps(aad).encode())), CallbackUndecryptable)
    assert isinstance(refused(*signed(b"not json")), CallbackMalformed)
    plain = {**envelope, "resource_type": "plain"}
    assert isinstance(refused(*signed(json.dumps(plain).encode())), CallbackMalformed)
    sm4 = {**envelope, "resource": {**envelope["resource"], "algorithm": "AEAD_SM4_GCM"}}
    assert isinstance(refused(*signed(json.dumps(sm4).encode())), CallbackMalformed)
    with pytest.raises(CallbackMalformed):
        wechatpay.verify_callback(h, body).refund()  # a payment is not a refund


@pytest.mark.gen_test(timeout=20)
async def test_a_different_apiv3_key_cannot_decrypt(
    wechatpay: WeChatPayAdapter,
    emulator: Emulator,
    recorder: Recorder,
    clock: FixedClock,
    settings: Settings,
    pay_credentials: PayCredentials,
) -> None:
    got = await _one_callback(wechatpay, emulator, recorder, clock)
    creds = PayCredentials(**{**pay_credentials.__dict__, "apiv3_key": "x" * 32})
    other = WeChatPayAdapter.from_settings(settings, creds, clock, api_base=emulator.url)
    with pytest.raises(CallbackUndecryptable):
        other.verify_callback(got.headers, got.body)


@pytest.mark.gen_test(timeout=20)
async def test_the_same_order_again_is_the_same_prepay_id_and_changes_are_refused(
    wechatpay: WeChatPayAdapter, emulator: Emulator, clock: FixedClock
) -> None:
    when = expire(clock, 180)
    first = await order(wechatpay, clock, "FEE000000IDEM", time_expire=when)
    assert await order(wechatpay, clock, "FEE000000IDEM", time_expire=when) == first
    for change in ({"amount_fen": 10_001}, {"openid": "o" + "Q" * 27}, {"description": "其他"}):
        with pytest.raises(WeChatPayError) as caught:
            await order(wechatpay, clock, "FEE000000IDEM", time_expire=when, **change)
        assert (caught.value.code, caught.value.status) == ("OUT_TRADE_NO_USED", 403)
    with pytest.raises(WeChatPayError) as moved:
        await order(wechatpay, clock, "FEE000000IDEM", time_expire=when + dt.timedelta(minutes=1))
    assert moved.value.code == "OUT_TRADE_NO_USED"
    clock.advance(hours=2, seconds=1)  # the prepay_id has aged: a fresh one for the same order
    renewed = await order(wechatpay, clock, "FEE000000IDEM", time_expire=when)
    assert renewed != first


@pytest.mark.gen_test(timeout=20)
async def test_query_close_and_their_errors(
    wechatpay: WeChatPayAdapter, emulator: Emulator, clock: FixedClock
) -> None:
    with pytest.raises(WeChatPayError) as missing:
        await wechatpay.query_order("FEE00000MISSING")
    assert (missing.value.code, missing.value.status) == ("ORDER_NOT_EXIST", 404)
    assert not isinstance(missing.value, WeChatPayUnavailable)
    with pytest.raises(WeChatPayError):
        await wechatpay.close_order("FEE00000MISSING")

    prepay_id = await order(wechatpay, clock, "FEE0000000CLOSE")
    await wechatpay.close_order("FEE0000000CLOSE")
    await wechatpay.close_order("FEE0000000CLOSE")  # closing again is no error
    closed = await wechatpay.query_order("FEE0000000CLOSE")
    assert (closed.trade_state, closed.trade_state_desc) == (TradeState.CLOSED, "订单已关闭")
    payment = await phone(emulator).request_payment({"prepay_id": prepay_id})
    assert payment.status == 409 and payment.body["code"] == "CLOSED"
    with pytest.raises(WeChatPayError) as reopened:
        await order(wechatpay, clock, "FEE0000000CLOSE")
    assert (reopened.value.code, reopened.value.status) == ("ORDER_CLOSED", 400)

    paid = await order(wechatpay, clock, "FEE00000000PAID")
    await phone(emulator).request_payment({"prepay_id": paid})
    with pytest.raises(WeChatPayError) as orderpaid:
        await wechatpay.close_order("FEE00000000PAID")
    assert (orderpaid.value.code, orderpaid.value.status) == ("ORDERPAID", 400)
    with pytest.raises(WeChatPayError) as again:
        await order(wechatpay, clock, "FEE00000000PAID")
    assert again.value.code == "ORDERPAID"
    with pytest.raises(ValueError):
        await wechatpay.query_order("bad|no")  # '|' would break the request signature


@pytest.mark.gen_test(timeout=20)
async def test_an_order_past_time_expire_cannot_be_paid(
    wechatpay: WeChatPayAdapter, emulator: Emulator, clock: FixedClock
) -> None:
    when = expire(clock, 10)
    prepay_id = await order(wechatpay, clock, "FEE00000EXPIRE", time_expire=when)
    clock.advance(minutes=10, seconds=1)
    payment = await phone(emulator).request_payment({"prepay_id": prepay_id})
    assert payment.status == 409 and payment.body["code"] == "ORDER_EXPIRED"
    assert (await wechatpay.query_order("FEE00000EXPIRE")).trade_state == TradeState.NOTPAY
    with pytest.raises(WeChatPayError) as late:
        await order(wechatpay, clock, "FEE00000EXPIRE", time_expire=when)
    assert late.value.code == "INVALID_REQUEST"
    await wechatpay.close_order("FEE00000EXPIRE")
    assert (await wechatpay.query_order("FEE00000EXPIRE")).trade_state == TradeState.CLOSED

    # a time_expire sooner than a minute away is moved to a minute away, as WeChat Pay does
    soon = await order(wechatpay, clock, "FEE000000SOON", time_expire=clock.now())
    clock.advance(seconds=59)
    assert (await phone(emulator).request_payment({"prepay_id": soon})).status == 200

    # the emulator's control: expire an order now
    other = await order(wechatpay, clock, "FEE00000CONTRL")
    res = await phone(emulator).post(
        f"{emulator.url}/_emulator/pay/expire", {"out_trade_no": "FEE00000CONTRL"}
    )
    assert res.status == 200
    assert (await phone(emulator).request_payment({"prepay_id": other})).status == 409


@pytest.mark.gen_test(timeout=20)
async def test_refunds_partial_over_and_repeated(
    wechatpay: WeChatPayAdapter, emulator: Emulator, recorder: Recorder, clock: FixedClock
) -> None:
    with pytest.raises(WeChatPayError) as unknown:
        await wechatpay.refund(
            out_trade_no="FEE000NOTHERE", out_refund_no="R1", refund_fen=1, total_fen=1
        )
    assert (unknown.value.code, unknown.value.status) == ("RESOURCE_NOT_EXISTS", 404)
    prepay_id = await order(wechatpay, clock, "FEE0000REFUND", fen=10_000)
    with pytest.raises(WeChatPayError) as unpaid:
        await wechatpay.refund(
            out_trade_no="FEE0000REFUND", out_refund_no="R1", refund_fen=1, total_fen=10_000
        )
    assert unpaid.value.code == "INVALID_REQUEST"
    await phone(emulator).request_payment({"prepay_id": prepay_id})

    args: dict[str, Any] = {
        "out_trade_no": "FEE0000REFUND",
        "out_refund_no": "REFUND-1",
        "refund_fen": 3_000,
        "total_fen": 10_000,
        "reason": "调解结案，减半收取",
        "notify_url": recorder.url + "/refund",
    }
    refund = await wechatpay.refund(**args)
    assert refund.status == RefundStatus.PROCESSING and refund.amount.refund == 3_000
    assert refund.success_time is None and refund.out_trade_no == "FEE0000REFUND"
    assert (await wechatpay.refund(**args)).refund_id == refund.refund_id  # a retry
    with pytest.raises(WeChatPayError) as changed:
        await wechatpay.refund(**{**args, "refund_fen": 3_001})
    assert (changed.value.code, changed.value.status) == ("INVALID_REQUEST", 400)

    await until(lambda: any(c.path == "/notify/refund" for c in recorder.calls))
    call = next(c for c in recorder.calls if c.path == "/notify/refund")
    note = wechatpay.verify_callback(call.headers, call.body)
    assert note.event_type == "REFUND.SUCCESS" and note.summary == "退款成功"
    notice = note.refund()
    assert notice.refund_id == refund.refund_id and notice.refund_status == RefundStatus.SUCCESS
    assert notice.amount.refund == 3_000 and notice.amount.total == 10_000
    assert notice.success_time == START
    done = await wechatpay.query_refund("REFUND-1")
    assert done.status == RefundStatus.SUCCESS and done.success_time == START
    assert (await wechatpay.query_order("FEE0000REFUND")).trade_state == TradeState.REFUND

    with pytest.raises(WeChatPayError) as over:
        await wechatpay.refund(**{**args, "out_refund_no": "REFUND-2", "refund_fen": 7_001})
    assert over.value.code == "INVALID_REQUEST" and "可退金额" in over.value.message
    with pytest.raises(WeChatPayError) as wrong_total:
        await wechatpay.refund(
            **{**args, "out_refund_no": "REFUND-2", "total_fen": 9_999, "refund_fen": 1}
        )
    assert wrong_total.value.code == "INVALID_REQUEST"
    clock.advance(minutes=1)  # WeChat Pay: "同一笔订单多次退款的请求需相隔1分钟" (issue 13)
    rest = await wechatpay.refund(**{**args, "out_refund_no": "REFUND-2", "refund_fen": 7_000})
    assert rest.status == RefundStatus.PROCESSING
    with pytest.raises(WeChatPayError) as nothing_left:
        await wechatpay.refund(**{**args, "out_refund_no": "REFUND-3", "refund_fen": 1})
    assert nothing_left.value.message == "订单已全额退款"
    with pytest.raises(WeChatPayError) as no_refund:
        await wechatpay.query_refund("REFUND-9")
    assert (no_refund.value.code, no_refund.value.status) == ("RESOURCE_NOT_EXISTS", 404)


@pytest.mark.gen_test(timeout=20)
async def test_a_closed_refund_gives_its_amount_back(
    wechatpay: WeChatPayAdapter, emulator: Emulator, recorder: Recorder, clock: FixedClock
) -> None:
    emulator.pay.refund_seconds = None  # refunds stay PROCESSING until settled by hand
    prepay_id = await order(wechatpay, clock, "FEE0000CLOSEDR", fen=500)
    await phone(emulator).request_payment({"prepay_id": prepay_id})
    args: dict[str, Any] = {"out_trade_no": "FEE0000CLOSEDR", "refund_fen": 500, "total_fen": 500}
    await wechatpay.refund(out_refund_no="RC-1", notify_url=recorder.url + "/refund", **args)
    mp = phone(emulator)
    res = await mp.post(
        f"{emulator.url}/_emulator/pay/refunds/settle",
        {"out_refund_no": "RC-1", "status": "CLOSED"},
    )
    assert res.status == 200 and res.body["status"] == "CLOSED"
    again = await mp.post(f"{emulator.url}/_emulator/pay/refunds/settle", {"out_refund_no": "RC-1"})
    assert again.status == 409
    await until(lambda: bool(recorder.calls))
    note = wechatpay.verify_callback(recorder.calls[0].headers, recorder.calls[0].body)
    assert note.event_type == "REFUND.CLOSED" and note.refund().refund_status == RefundStatus.CLOSED
    assert (await wechatpay.query_refund("RC-1")).status == RefundStatus.CLOSED
    assert (await wechatpay.query_order("FEE0000CLOSEDR")).trade_state == TradeState.SUCCESS
    clock.advance(minutes=1)  # WeChat Pay: "同一笔订单多次退款的请求需相隔1分钟" (issue 13)
    second = await wechatpay.refund(out_refund_no="RC-2", **args)
    assert second.status == RefundStatus.PROCESSING


@pytest.mark.gen_test(timeout=30)
async def test_trade_bill_of_a_day(
    wechatpay: WeChatPayAdapter, emulator: Emulator, clock: FixedClock
) -> None:
    today = dt.date(2026, 11, 23)
    for no, fen in (("FEE000000BILL1", 5_000), ("FEE000000BILL2", 12_345)):
        prepay_id = await order(wechatpay, clock, no, fen=fen, attach="case-1")
        await phone(emulator).request_payment({"prepay_id": prepay_id})
        clock.advance(minutes=1)
    await order(wechatpay, clock, "FEE00000UNPAID")
    await wechatpay.refund(
        out_trade_no="FEE000000BILL2", out_refund_no="RB-1", refund_fen=345, total_fen=12_345
    )
    await until(lambda: emulator.pay.refunds.refunds[(wechatpay.mchid, "RB-1")].status == "SUCCESS")

    with pytest.raises(WeChatPayError) as early:
        await wechatpay.trade_bill(today)
    assert (early.value.code, early.value.status) == ("STATEMENT_CREATING", 400)
    clock.set(dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC))  # 10:00 the next day in Beijing
    bill = await wechatpay.trade_bill(today)
    assert [(r.trade_state, r.out_trade_no) for r in bill.rows] == [
        ("SUCCESS", "FEE000000BILL1"),
        ("SUCCESS", "FEE000000BILL2"),
        ("REFUND", "FEE000000BILL2"),
    ]
    first, second, refund = bill.rows
    assert first.total_fen == first.settlement_fen == 5_000 and first.openid == OPENID
    assert first.trade_time == START and first.attach == "case-1" and first.refund_id is None
    assert first.transaction_id == (await wechatpay.query_order("FEE000000BILL1")).transaction_id
    assert second.trade_time == START + dt.timedelta(minutes=1)
    assert (refund.out_refund_no, refund.refund_fen, refund.refund_status) == (
        "RB-1",
        345,
        "SUCCESS",
    )
    assert bill.summary is not None
    assert (bill.summary.count, bill.summary.settlement_fen, bill.summary.refund_fen) == (
        3,
        17_345,
        345,
    )
    payments = await wechatpay.trade_bill(today, "SUCCESS")
    assert [r.out_trade_no for r in payments.rows] == ["FEE000000BILL1", "FEE000000BILL2"]
    refunds = await wechatpay.trade_bill(today, "REFUND")
    assert [r.out_refund_no for r in refunds.rows] == ["RB-1"]
    empty = await wechatpay.trade_bill(dt.date(2026, 11, 20))
    assert empty.rows == [] and empty.summary is None


@pytest.mark.gen_test(timeout=20)
async def test_badly_signed_requests_are_refused(
    emulator: Emulator,
    settings: Settings,
    clock: FixedClock,
    pay_credentials: PayCredentials,
) -> None:
    wrong_key = PayCredentials(
        **{**pay_credentials.__dict__, "private_key_pem": private_pem(new_key())}
    )
    wrong_serial = PayCredentials(**{**pay_credentials.__dict__, "serial_no": "ABCDEF0123456789"})
    stranger = PayCredentials(**{**pay_credentials.__dict__, "mchid": "1900000999"})
    for creds, code, status in (
        (wrong_key, "SIGN_ERROR", 401),
        (wrong_serial, "SIGN_ERROR", 401),
        (stranger, "MCH_NOT_EXISTS", 400),
    ):
        adapter = WeChatPayAdapter.from_settings(settings, creds, clock, api_base=emulator.url)
        with pytest.raises(WeChatPayError) as caught:
            await order(adapter, clock, "FEE0000SIGNERR")
        assert (caught.value.code, caught.value.status) == (code, status)
        await adapter.aclose()
    assert emulator.pay.orders == {}


@pytest.mark.gen_test(timeout=20)
async def test_outages_and_untrusted_answers_are_unavailable(
    wechatpay: WeChatPayAdapter,
    emulator: Emulator,
    settings: Settings,
    clock: FixedClock,
    pay_credentials: PayCredentials,
) -> None:
    res = await phone(emulator).post(f"{emulator.url}/_emulator/pay/fail-next", {"count": 1})
    assert res.status == 200 and res.body == {"pending": 1}
    with pytest.raises(WeChatPayUnavailable) as down:
        await order(wechatpay, clock, "FEE000000RETRY")
    assert (down.value.code, down.value.status) == ("SYSTEM_ERROR", 500)
    when = expire(clock)
    first = await order(wechatpay, clock, "FEE000000RETRY", time_expire=when)
    emulator.pay.failures.append(FailNext(429, "FREQUENCY_LIMITED", "频率超限"))
    with pytest.raises(WeChatPayUnavailable) as busy:
        await wechatpay.query_order("FEE000000RETRY")
    assert (busy.value.code, busy.value.status) == ("FREQUENCY_LIMITED", 429)
    assert await order(wechatpay, clock, "FEE000000RETRY", time_expire=when) == first

    closed = WeChatPayAdapter.from_settings(
        settings, pay_credentials, clock, api_base="http://127.0.0.1:9"
    )
    with pytest.raises(WeChatPayUnavailable) as unreachable:
        await closed.query_order("FEE000000RETRY")
    assert (unreachable.value.code, unreachable.value.status) == ("NETWORK_ERROR", None)

    # an answer not signed by the platform key we trust is never believed
    impostor = PayCredentials(
        **{**pay_credentials.__dict__, "platform_public_key_pem": public_pem(new_key())}
    )
    fooled = WeChatPayAdapter.from_settings(settings, impostor, clock, api_base=emulator.url)
    with pytest.raises(WeChatPayBadResponse) as untrusted:
        await fooled.query_order("FEE000000RETRY")
    assert untrusted.value.code == "INVALID_RESPONSE"
    for adapter in (closed, fooled):
        await adapter.aclose()
